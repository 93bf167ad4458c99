/**
 * A channel on a real socket reads into its own buffers (Node's onread, switched on by
 * lib/wire/socket-reads.ts): small frames from one reused read buffer, the rest of a large
 * frame straight into its body. What the handler got must never change afterwards (a view
 * into the reused buffer would), whatever sizes the frames have and however writes split them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import t, { type Test } from 'tap';
import type { BulkheadError } from '../lib/errors.js';
import { decodeEnvelope, encodeEnvelope, type Envelope } from '../lib/wire/envelope.js';
import { FrameDecoder } from '../lib/wire/frame-decoder.js';
import { FramedChannel } from '../lib/wire/framed-channel.js';
import { readFramesIntoOwnBuffers, readIntoOwnBuffers } from '../lib/wire/socket-reads.js';
import { acceptedPair, prng } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'bulkhead-reads-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** A byte string of `n` bytes whose content depends on `seed`, so a clobbered one shows. */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

t.test('frames of every size arrive intact and stay intact, however the writes split them', async (t) => {
  // Three channels at once: they share one read buffer.
  await Promise.all([1, 2, 3].map((seed) => t.test(`socket ${seed}`, (t) => intact(t, seed))));
});

async function intact(t: Test, seed: number): Promise<void> {
  const { client, peer } = await acceptedPair(t, join(dir, `a${seed}.sock`));
  const channel = new FramedChannel(peer, { maxFrameBytes: 4 * 1024 * 1024 });
  const received: Envelope[] = [];
  let closedWith: BulkheadError | undefined;
  const sizes = [0, 1, 10, 100, 4095, 4096, 20_000, 65_535, 65_536, 65_537, 200_000, 1024 * 1024, 3];
  const sent: Envelope[] = [];
  for (let round = 0; round < 3; round++) {
    for (const [i, n] of sizes.entries()) sent.push({ kind: 'reply', id: round * 100 + i + 1, result: { i, data: bytes(n, seed * 13 + round * 7 + i), text: `frame ${i}` } });
  }
  const all = new Promise<void>((resolve) => channel.attach({
    envelope: (e) => {
      received.push(e);
      if (received.length === sent.length) resolve();
    },
    closed: (error) => (closedWith = error),
  }));
  t.equal(channel.readsIntoOwnBuffers, true, 'a socket reads into the channel\'s own buffers');
  // The frames as one byte stream, written in pieces of random sizes (1 byte to 300 KiB).
  const wire = Buffer.concat(sent.map((e) => encodeEnvelope(e)));
  const random = prng(19 + seed);
  for (let at = 0; at < wire.length;) {
    const n = Math.min(wire.length - at, 1 + Math.floor(random() * random() * 300_000));
    const piece = wire.subarray(at, at + n);
    at += n;
    if (!client.write(piece)) await new Promise((resolve) => client.once('drain', resolve));
  }
  await all;
  t.equal(closedWith, undefined);
  t.equal(received.length, sent.length);
  // Checked only now, after every later read: a body that was a view into the reused read buffer would have changed.
  t.same(received, sent, 'every envelope equals what was sent, after all the reads');
}

t.test('a frame error on the own-buffer path still closes with the coded error', async (t) => {
  const { client, peer } = await acceptedPair(t, join(dir, 'b.sock'));
  const channel = new FramedChannel(peer, { maxFrameBytes: 1024 });
  const closed = new Promise<BulkheadError | undefined>((resolve) => channel.attach({ envelope: () => t.fail('no envelope expected'), closed: resolve }));
  t.equal(channel.readsIntoOwnBuffers, true);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(1025);
  client.write(header);
  t.equal((await closed)?.code, 'ERR_FRAME_TOO_LARGE');
});

t.test('bytes a handshake left in the stream come first', async (t) => {
  const { client, peer } = await acceptedPair(t, join(dir, 'c.sock'));
  const first: Envelope = { kind: 'goodbye', reason: 'left over' };
  const second: Envelope = { kind: 'reply', id: 2, result: bytes(100_000, 3) };
  // The handshake read the first frame and half of the second, then put them back.
  const wire = Buffer.concat([encodeEnvelope(first), encodeEnvelope(second)]);
  const cut = encodeEnvelope(first).length + 50_000;
  client.write(wire.subarray(0, cut));
  const leftover = await new Promise<Buffer>((resolve) => peer.once('data', resolve));
  peer.pause();
  peer.unshift(leftover);
  const channel = new FramedChannel(peer);
  const received: Envelope[] = [];
  const both = new Promise<void>((resolve) => channel.attach({ envelope: (e) => { received.push(e); if (received.length === 2) resolve(); }, closed: () => undefined }));
  t.equal(channel.readsIntoOwnBuffers, true);
  client.write(wire.subarray(cut));
  await both;
  t.same(received, [first, second]);
});

t.test('a stream that is not a socket is read with data events, as before', async (t) => {
  const stream = new Duplex({ read() {}, write(_c, _e, cb) { cb(); } });
  const channel = new FramedChannel(stream);
  const got = new Promise<Envelope>((resolve) => channel.attach({ envelope: resolve, closed: () => undefined }));
  t.equal(channel.readsIntoOwnBuffers, false);
  stream.push(encodeEnvelope({ kind: 'end', id: 5 }));
  t.same(await got, { kind: 'end', id: 5 });
});

t.test('FrameDecoder: bodies inside a chunk are views of it; bodyRemainder/filled take the rest of a body', async (t) => {
  const decoder = new FrameDecoder(1024 * 1024);
  const frame = encodeEnvelope({ kind: 'reply', id: 1, result: 'x' });
  const chunk = Buffer.concat([frame, frame]);
  const [a, b] = decoder.push(chunk);
  t.equal(a!.buffer, chunk.buffer, 'a view, not a copy');
  t.same(decodeEnvelope(a!), { kind: 'reply', id: 1, result: 'x' });
  t.same(decodeEnvelope(b!), { kind: 'reply', id: 1, result: 'x' });
  const big = encodeEnvelope({ kind: 'reply', id: 2, result: bytes(100_000, 1) });
  t.same(decoder.push(big.subarray(0, 1000)), []);
  t.equal(decoder.bodyRemainder(200_000), undefined, 'less left than asked for');
  const rest = decoder.bodyRemainder(16 * 1024)!;
  // 996 body bytes of ~100 KB arrived: they are in a stage of a 16th of the body; its own buffer comes once that is full.
  t.equal(rest.length, Math.ceil((big.length - 4) / 16) - 996, 'the rest of a stage, not yet of a buffer of the body\'s size');
  t.equal(decoder.filled(0), undefined);
  big.copy(rest, 0, 1000, 1000 + rest.length);
  t.equal(decoder.filled(rest.length), undefined, 'not complete yet');
  const own = decoder.bodyRemainder(16 * 1024)!;
  t.equal(own.length, big.length - 1000 - rest.length, 'then the rest of the body\'s own buffer');
  big.copy(own, 0, 1000 + rest.length, 50_000);
  t.equal(decoder.filled(50_000 - 1000 - rest.length), undefined, 'not complete yet');
  const tail = decoder.bodyRemainder(1)!;
  big.copy(tail, 0, 50_000);
  const body = decoder.filled(big.length - 50_000);
  t.ok(body !== undefined && body.equals(big.subarray(4)), 'the whole body');
  t.equal(decoder.pendingBytes, 0);
  t.throws(() => decoder.filled(1), 'no body to fill');
});

t.test('after a large frame the next header is read small, so large bodies are read by the kernel, not copied', async (t) => {
  const { client, peer } = await acceptedPair(t, join(dir, 'probe.sock'));
  const decoder = new FrameDecoder(1024 * 1024);
  const frames = 20;
  const size = 100 * 1024;
  let copied = 0;
  let direct = 0;
  let bodies = 0;
  const done = new Promise<void>((resolve, reject) => {
    const got = (body: Buffer) => {
      if (body.length !== size || body[0] !== bodies % 251) reject(new Error(`frame ${bodies} arrived wrong`));
      if (++bodies === frames) resolve();
    };
    t.ok(readFramesIntoOwnBuffers(peer, decoder, {
      chunk: (bytes) => {
        copied += bytes.length;
        for (const body of decoder.push(bytes)) got(body);
      },
      body: (body) => {
        direct += body.length;
        got(body);
      },
      failed: reject,
    }), 'the socket reads into our buffers');
  });
  peer.resume();
  for (let i = 0; i < frames; i++) {
    const frame = Buffer.alloc(4 + size, i % 251);
    frame.writeUInt32BE(size, 0);
    if (!client.write(frame)) await new Promise((resolve) => client.once('drain', resolve));
  }
  await done;
  const total = frames * (4 + size);
  // Without the small header read, each frame's first 64 KiB (two thirds of it) lands in the shared buffer and is copied.
  t.ok(copied < total / 3, `${copied} of ${total} bytes copied out of the shared read buffers`);
  t.ok(direct >= (frames - 1) * size, 'the bodies after the first were filled by the kernel');
});

// next() giving the buffer the handle already reads into is told to Node as "keep it" (no C++
// look-up of its memory per read); giving another one switches. Either way each read must land
// in the buffer next() gave last, and be reported with it.
t.test('each read lands in the buffer next() gave last, whether it changed or stayed the same', async (t) => {
  const { client, peer } = await acceptedPair(t, join(dir, 'gen.sock'));
  const a = Buffer.alloc(1024);
  const b = Buffer.alloc(1024);
  const plan = [a, a, a, b, b, a, b, b, a, a];
  let calls = 0;
  const next = (): Buffer => plan[Math.min(calls++, plan.length - 1)]!;
  const reads: Array<{ buffer: Buffer; text: string }> = [];
  let wake: (() => void) | undefined;
  t.ok(readIntoOwnBuffers(peer, next, (n, buffer) => {
    // The text is taken now: the next reads overwrite the buffer.
    reads.push({ buffer, text: buffer.toString('latin1', 0, n) });
    wake?.();
  }), 'the socket reads into our buffers');
  peer.resume();
  for (let i = 0; i < plan.length - 1; i++) {
    const got = new Promise<void>((resolve) => (wake = resolve));
    client.write(`read ${i}`);
    await got;
    t.equal(reads[i]!.buffer, plan[i], `read ${i} reported with buffer ${plan[i] === a ? 'a' : 'b'}`);
    t.equal(reads[i]!.text, `read ${i}`, `and its bytes are in it`);
  }
  t.equal(reads.length, plan.length - 1, 'one report per read');
});
