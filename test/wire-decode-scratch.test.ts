/**
 * Small frame bodies without a byte string are decoded from one reused buffer
 * (lib/wire/decode-scratch.ts). What must hold: no decoded value aliases that
 * buffer (byte strings, which cbor-x returns as views, are decoded in place),
 * and its older bytes never leak into a shorter or truncated frame. In memory,
 * then from a hostile peer over a real Unix socket.
 */
import t from 'tap';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BulkheadError } from '../lib/errors.js';
import { decodeItem, encodeItem } from '../lib/wire/codec.js';
import { DECODE_SCRATCH_BYTES } from '../lib/wire/decode-scratch.js';
import type { Envelope } from '../lib/wire/envelope.js';
import { encodeFrame } from '../lib/wire/frame-decoder.js';
import { FramedChannel } from '../lib/wire/framed-channel.js';
import { expectCode } from './helpers.js';

/** A fresh copy of `body`, as the channel hands each frame over. */
const fresh = (body: Uint8Array): Buffer => Buffer.from(body);

t.test('in memory: values decoded one after another stay what they were', (t) => {
  const first = decodeItem(fresh(encodeItem({ name: 'first', n: 1, tags: ['a', 'bb'] })));
  const second = decodeItem(fresh(encodeItem({ name: 'SECOND', n: 2, tags: ['ccc', 'dddd', 'e'] })));
  t.same(first, { name: 'first', n: 1, tags: ['a', 'bb'] });
  t.same(second, { name: 'SECOND', n: 2, tags: ['ccc', 'dddd', 'e'] });
  // Byte strings are views of their source: decoded from a reused buffer, the next frame would rewrite them.
  const x = decodeItem(fresh(encodeItem({ data: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]) }))) as { data: Uint8Array };
  decodeItem(fresh(encodeItem({ data: Buffer.from([9, 9, 9, 9, 9, 9, 9, 9]) })));
  decodeItem(fresh(encodeItem({ other: 'x'.repeat(40) })));
  t.same([...x.data], [1, 2, 3, 4, 5, 6, 7, 8], 'a byte string keeps its bytes after later frames are decoded');
  const big = decodeItem(fresh(encodeItem({ n: 2n ** 100n })));
  decodeItem(fresh(encodeItem({ n: 3n ** 60n })));
  t.same(big, { n: 2n ** 100n }, 'a bignum (a byte string under a tag) too');
  t.end();
});

t.test('in memory: a shorter or truncated frame after a long one never reads the long one\'s bytes', (t) => {
  const long = encodeItem({ text: 'y'.repeat(200), list: [1, 2, 3, 4, 5] });
  t.same(decodeItem(fresh(long)), { text: 'y'.repeat(200), list: [1, 2, 3, 4, 5] }, 'positive control: the long frame decodes');
  for (const cut of [1, 2, 10, 100, long.length - 1]) {
    expectCode(t, () => decodeItem(fresh(long.subarray(0, cut))), 'ERR_BAD_FRAME', `its first ${cut} bytes alone`);
  }
  // A map that claims more entries than its bytes hold, in a body shorter than the scratch's old content.
  expectCode(t, () => decodeItem(fresh(Buffer.from([0xa3, 0x61, 0x61, 0x01]))), 'ERR_BAD_FRAME', 'a map of 3 entries with 1 present');
  t.same(decodeItem(fresh(encodeItem({ a: 1 }))), { a: 1 }, 'and a short valid frame after them decodes to itself');
  t.end();
});

t.test('in memory: bodies at, and past, the scratch size', (t) => {
  for (const size of [DECODE_SCRATCH_BYTES - 20, DECODE_SCRATCH_BYTES + 20, 4 * DECODE_SCRATCH_BYTES]) {
    const value = { text: 'z'.repeat(size) };
    t.same(decodeItem(fresh(encodeItem(value))), value, `a ${size}-character text`);
  }
  const exact = { text: 'q'.repeat(DECODE_SCRATCH_BYTES - 11) }; // 3-byte map head, 5-byte key, 3-byte text head
  const body = encodeItem(exact);
  t.equal(body.length, DECODE_SCRATCH_BYTES, 'a body exactly the size of the scratch');
  t.same(decodeItem(fresh(body)), exact);
  t.end();
});

/** Serves one FramedChannel on a Unix socket, writes `bytes` from a raw peer, and returns what it delivered and how it closed. */
async function fromPeer(t: Pick<typeof tap, 'teardown'>, bytes: Buffer): Promise<{ received: Envelope[]; closedWith: BulkheadError | undefined }> {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-scratch-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 's.sock');
  const received: Envelope[] = [];
  let done!: (err: BulkheadError | undefined) => void;
  const closed = new Promise<BulkheadError | undefined>((resolve) => (done = resolve));
  const server = net.createServer((socket) => {
    new FramedChannel(socket).attach({ envelope: (e) => received.push(e), closed: (err) => done(err) });
  });
  t.teardown(() => server.close());
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const peer = net.connect(path);
  t.teardown(() => peer.destroy());
  peer.on('error', () => {});
  peer.on('data', () => {}); // the error frame the channel sends before closing
  peer.end(bytes);
  return { received, closedWith: await closed };
}
type Envelopeish = { params: { data?: Uint8Array; text?: string } };
const tap = t;

t.test('over a socket: byte strings of earlier calls survive later frames; a truncated body after a long one is ERR_BAD_FRAME', async (t) => {
  const call = (id: number, params: unknown) => encodeFrame(encodeItem([1, id, 'echo', params, null]));
  const long = call(3, { text: 'w'.repeat(300) });
  const truncated = long.subarray(4, 4 + 120); // the long call's first 120 body bytes, framed on their own
  const out = await fromPeer(t, Buffer.concat([
    call(1, { data: Buffer.from('abcdefgh') }),
    call(2, { data: Buffer.from('ZZZZZZZZ') }),
    long,
    encodeFrame(truncated),
  ]));
  t.equal(out.received.length, 3, 'the three whole calls were delivered');
  t.equal(Buffer.from((out.received[0] as unknown as Envelopeish).params.data!).toString(), 'abcdefgh', 'the first call\'s bytes are its own after the others arrived');
  t.equal(Buffer.from((out.received[1] as unknown as Envelopeish).params.data!).toString(), 'ZZZZZZZZ');
  t.equal((out.received[2] as unknown as Envelopeish).params.text, 'w'.repeat(300));
  t.equal(out.closedWith?.code, 'ERR_BAD_FRAME', 'the truncated body closed the connection with ERR_BAD_FRAME');
});
