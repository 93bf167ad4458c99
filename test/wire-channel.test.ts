/**
 * FramedChannel against a hostile peer over a real Unix socket: a bad frame
 * closes that one connection with a coded error (sent to the peer as an
 * error envelope with id 0), never the process.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tap from 'tap';

const t = tap;
import type { BulkheadError } from '../lib/errors.js';
import { encodeItem } from '../lib/wire/codec.js';
import { decodeEnvelope, encodeEnvelope, type Envelope } from '../lib/wire/envelope.js';
import { FramedChannel } from '../lib/wire/framed-channel.js';
import { FrameDecoder, encodeFrame } from '../lib/wire/frame-decoder.js';

interface Outcome {
  /** What the channel's handler saw. */
  received: Envelope[];
  closedWith: BulkheadError | undefined;
  /** What the raw peer read back before the socket ended. */
  peerGot: Envelope[];
}

/**
 * Serves one FramedChannel on a fresh Unix socket, connects a raw socket that
 * writes `steps[0]`, then `steps[i]` once the channel has delivered i
 * envelopes, and resolves once both the channel reported its close and the
 * raw peer saw the socket end.
 */
async function exchange(t: Pick<typeof tap, 'teardown'>, steps: Buffer[], maxFrameBytes?: number): Promise<Outcome> {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-wire-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 's.sock');
  const received: Envelope[] = [];
  let channelClosed!: (err: BulkheadError | undefined) => void;
  const closed = new Promise<BulkheadError | undefined>((resolve) => (channelClosed = resolve));
  const server = net.createServer((socket) => {
    const channel = new FramedChannel(socket, maxFrameBytes === undefined ? {} : { maxFrameBytes });
    channel.attach({
      envelope: (e) => {
        received.push(e);
        const next = steps[received.length];
        if (next !== undefined) peer.write(next);
      },
      closed: (err) => channelClosed(err),
    });
  });
  t.teardown(() => server.close());
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const peer = net.connect(path);
  t.teardown(() => peer.destroy());
  const decoder = new FrameDecoder();
  const peerGot: Envelope[] = [];
  peer.on('data', (chunk: Buffer) => {
    for (const frame of decoder.push(chunk)) peerGot.push(decodeEnvelope(frame));
  });
  const peerDone = new Promise<void>((resolve) => peer.on('close', () => resolve()));
  peer.on('error', () => {}); // a reset after the error frame is a normal end here
  peer.write(steps[0]!);
  const closedWith = await closed;
  await peerDone;
  return { received, closedWith, peerGot };
}

const goodCall = encodeEnvelope({ kind: 'call', id: 1, method: 'echo', params: { text: 'hi' }, meta: null });

t.test('a map in the kind slot with a "toString" key closes the connection with ERR_BAD_FRAME', async (t) => {
  const out = await exchange(t, [Buffer.concat([goodCall, encodeFrame(encodeItem([{ toString: 1 }]))])]);
  t.equal(out.received.length, 1, 'the good call before it was delivered');
  t.equal(out.closedWith?.code, 'ERR_BAD_FRAME');
  t.equal(out.peerGot.length, 1);
  t.equal(out.peerGot[0]?.kind, 'error');
  t.equal((out.peerGot[0] as { id: number }).id, 0);
  t.equal((out.peerGot[0] as { error: { code: string } }).error.code, 'ERR_BAD_FRAME');
});

t.test('a Date tag closes the connection with ERR_BAD_FRAME', async (t) => {
  const out = await exchange(t, [encodeFrame(Buffer.from('c11a514b67b0', 'hex'))]);
  t.equal(out.received.length, 0);
  t.equal(out.closedWith?.code, 'ERR_BAD_FRAME');
  t.equal(out.peerGot.length, 1);
  t.equal(out.peerGot[0]?.kind, 'error');
  t.equal((out.peerGot[0] as { id: number }).id, 0);
  t.equal((out.peerGot[0] as { error: { code: string } }).error.code, 'ERR_BAD_FRAME');
});

t.test('an oversize header: error id 0 ERR_FRAME_TOO_LARGE, then the connection closes', async (t) => {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(1025, 0);
  // One write: the call that precedes the bad header in the same read is still delivered.
  const out = await exchange(t, [Buffer.concat([goodCall, header])], 1024);
  t.equal(out.received.length, 1);
  t.equal(out.closedWith?.code, 'ERR_FRAME_TOO_LARGE');
  t.equal(out.peerGot.length, 1);
  const e = out.peerGot[0] as { kind: string; id: number; error: { code: string; data?: unknown } };
  t.equal(e.kind, 'error');
  t.equal(e.id, 0);
  t.equal(e.error.code, 'ERR_FRAME_TOO_LARGE');
  t.same(e.error.data, { declared: 1025, limit: 1024 });
});

t.test('a stalled peer: small frames are joined while they wait, a large byte string is neither copied nor reordered', async (t) => {
  const written: Buffer[] = [];
  let release: (() => void) | undefined;
  // A peer that takes the first write and then stalls until released.
  const stream = new Duplex({
    highWaterMark: 1024,
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      written.push(chunk);
      if (written.length === 1) release = () => callback();
      else callback();
    },
  });
  const channel = new FramedChannel(stream);
  channel.attach({ envelope: () => {}, closed: () => {} });
  const big = Buffer.alloc(256 * 1024, 1);
  channel.send({ kind: 'event', callId: 0, name: 'first', payload: 0 });
  await new Promise((resolve) => setImmediate(resolve));
  t.ok(release !== undefined, 'the first write is pending: the peer stalls');
  for (let i = 0; i < 300; i++) channel.send({ kind: 'event', callId: 0, name: 'tick', payload: i });
  channel.send({ kind: 'item', id: 7, value: big });
  for (let i = 300; i < 600; i++) channel.send({ kind: 'event', callId: 0, name: 'tick', payload: i });
  await new Promise((resolve) => setImmediate(resolve));
  // Written from the caller's Buffer: a change made before the bytes leave is what the peer reads.
  big.fill(9);
  release!();
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  const decoder = new FrameDecoder();
  const got = written.flatMap((chunk) => decoder.push(chunk)).map((frame) => decodeEnvelope(frame));
  t.equal(got.length, 602, 'every frame arrived');
  const ticks = got.filter((e) => e.kind === 'event' && e.name === 'tick').map((e) => (e as { payload: number }).payload);
  t.same(ticks, Array.from({ length: 600 }, (_, i) => i), 'small frames in order');
  const at = got.findIndex((e) => e.kind === 'item');
  t.equal(at, 301, 'the item between the two runs');
  const value = (got[at] as { value: Uint8Array }).value;
  t.equal(value.length, big.length);
  t.ok(value.every((b) => b === 9), 'the item\'s bytes are the caller\'s Buffer as it is at write time: never copied while waiting');
  t.ok(written.length < 40, `600 small frames left in a few joined writes: ${written.length} writes`);
});
