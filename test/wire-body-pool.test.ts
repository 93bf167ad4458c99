/**
 * releaseBytes (lib/wire/body-pool.ts): a caller may give a received byte string's memory back,
 * and a later frame of the same size reuses it. What must hold, whatever a peer sends:
 * - a byte string that was not released never changes, however many frames reuse memory after it;
 * - a released one (and every other view of its message) reads as empty, never as a later frame;
 * - only memory bulkhead allocated for a received body is taken; the pool stays bounded.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { releaseBytes } from '../lib/index.js';
import { POOLED_BODY_MIN_BYTES, pooledBodyBytes } from '../lib/wire/body-pool.js';
import { decodeEnvelope, encodeEnvelope, encodeEnvelopeChunks, type Envelope } from '../lib/wire/envelope.js';
import { FrameDecoder } from '../lib/wire/frame-decoder.js';
import { FramedChannel } from '../lib/wire/framed-channel.js';
import { acceptedPair } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'bulkhead-pool-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** A byte string of `n` bytes whose content depends on `seed`, so a clobbered one shows. */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

interface Message { data: Uint8Array; tail: Uint8Array; seed: number }

/** The reply with `seed`'s bytes as a whole frame (length prefix included). */
function frame(size: number, seed: number): Buffer {
  return encodeEnvelope({ kind: 'reply', id: 7, result: { data: bytes(size, seed), tail: bytes(16, seed), seed } });
}

/** Feeds frames to a decoder in reads of `readBytes` (a body inside one read is a view of it: the socket case is tested below). */
function receive(decoder: FrameDecoder, wire: Buffer, readBytes: number): Message[] {
  const out: Message[] = [];
  for (let at = 0; at < wire.length; at += readBytes) {
    for (const body of decoder.push(Buffer.from(wire.subarray(at, at + readBytes)))) out.push((decodeEnvelope(body) as Extract<Envelope, { kind: 'reply' }>).result as Message);
  }
  return out;
}

for (const [what, size, readBytes] of [
  ['a body spread over reads', 100_000, 64 * 1024],
] as const) {
  t.test(`${what}: released memory is reused, and no view ever shows a later frame`, (t) => {
    const decoder = new FrameDecoder();
    const start = pooledBodyBytes();
    const [first] = receive(decoder, frame(size, 1), readBytes);
    t.same(Buffer.from(first!.data), bytes(size, 1));
    t.equal(releaseBytes(first!.data), true, 'a received body of ≥ 16 KiB is taken back');
    t.equal(first!.data.length, 0, 'the released byte string reads as empty');
    t.equal(first!.tail.length, 0, 'and so does every other view of the same message');
    t.equal(releaseBytes(first!.data), false, 'a second release changes nothing');
    const bodyBytes = frame(size, 1).length - 4;
    const waiting = pooledBodyBytes();
    t.ok(waiting > start, 'its memory waits in the pool');

    // The next frames of the same size take that memory; one of them is kept, the others released.
    const later = receive(decoder, Buffer.concat([2, 3, 4, 5].map((seed) => frame(size, seed))), readBytes);
    t.equal(pooledBodyBytes(), waiting - bodyBytes, 'the next frame of that size reused the memory');
    const kept = later[0]!;
    for (const m of later.slice(1)) t.equal(releaseBytes(m.data), true);
    // More frames reuse what was released after the kept one: it must still hold its own bytes.
    const more = receive(decoder, Buffer.concat([6, 7, 8, 9, 10, 11].map((seed) => frame(size, seed))), readBytes);
    for (const m of more) {
      t.same(Buffer.from(m.data), bytes(size, m.seed), `frame ${m.seed} arrived intact`);
      releaseBytes(m.data);
    }
    t.same(Buffer.from(kept.data), bytes(size, 2), 'a byte string that was not released is never overwritten');
    t.same(Buffer.from(kept.tail), bytes(16, 2));
    t.equal(first!.data.length, 0, 'the first, released byte string never shows a later frame');
    t.end();
  });
}

t.test('only memory bulkhead allocated for a received body is taken', (t) => {
  t.equal(releaseBytes(bytes(100_000, 1)), false, 'a buffer of the caller\'s own');
  t.equal(releaseBytes(new Uint8Array(0)), false, 'an empty one');
  t.equal(releaseBytes('not bytes' as unknown as Uint8Array), false, 'not bytes at all');
  const decoder = new FrameDecoder();
  const [small] = receive(decoder, frame(POOLED_BODY_MIN_BYTES - 200, 1), 64 * 1024);
  t.equal(releaseBytes(small!.data), false, 'a message under 16 KiB');
  t.equal(small!.data.length, POOLED_BODY_MIN_BYTES - 200, 'and it is left alone');
  // A stream that is not a socket hands whole chunks; a body inside one is a view of the chunk, not ours.
  const [view] = new FrameDecoder().push(frame(50_000, 3)).map((b) => (decodeEnvelope(b) as Extract<Envelope, { kind: 'reply' }>).result as Message);
  t.equal(releaseBytes(view!.data), false, 'a body that is a view of someone else\'s chunk');
  t.same(Buffer.from(view!.data), bytes(50_000, 3));
  t.end();
});

t.test('a received byte string passed on by reference can no longer be released', (t) => {
  const decoder = new FrameDecoder();
  const [got] = receive(decoder, frame(100_000, 4), 64 * 1024);
  // ≥ 64 KiB goes out from its own memory (large-bytes.ts): a queued write must keep its bytes.
  const chunks = encodeEnvelopeChunks({ kind: 'reply', id: 9, result: { data: got!.data } }).chunks;
  t.ok(chunks.some((c) => c.buffer === got!.data.buffer), 'the payload is queued by reference');
  t.equal(releaseBytes(got!.data), false, 'so it is not taken back');
  t.same(Buffer.from(got!.data), bytes(100_000, 4), 'and keeps its bytes');
  const split = new FrameDecoder();
  const wire = frame(100_000, 5);
  split.push(wire.subarray(0, 1000));
  const [forwarded] = split.push(wire.subarray(1000)); // a body of the pool's, as a broker forwards it
  const channel = new FramedChannel(new PassThrough());
  channel.sendRaw(forwarded!);
  const view = (decodeEnvelope(forwarded!) as Extract<Envelope, { kind: 'reply' }>).result as Message;
  t.equal(releaseBytes(view.data), false, 'nor is a forwarded body');
  t.end();
});

t.test('the pool stays bounded', (t) => {
  const decoder = new FrameDecoder();
  const sizes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((i) => 1024 * 1024 + i);
  const got = receive(decoder, Buffer.concat(sizes.map((s, i) => frame(s, i))), 64 * 1024);
  for (const m of got) t.equal(releaseBytes(m.data), true);
  t.ok(pooledBodyBytes() <= 4 * (1024 * 1024 + 200), `at most four memories kept (${pooledBodyBytes()} bytes)`);
  t.end();
});

t.test('over a real socket, messages of 16-64 KiB that arrive inside one read can be released', async (t) => {
  const { client, peer } = await acceptedPair(t, join(dir, 'small.sock'));
  const channel = new FramedChannel(peer);
  const got: Message[] = [];
  const sizes = [20_000, 40_000, 300_000];
  const all = new Promise<void>((resolve) => channel.attach({
    envelope: (e) => {
      got.push((e as Extract<Envelope, { kind: 'reply' }>).result as Message);
      if (got.length === sizes.length) resolve();
    },
    closed: () => undefined,
  }));
  t.equal(channel.readsIntoOwnBuffers, true);
  for (const [i, size] of sizes.entries()) client.write(frame(size, i + 1));
  await all;
  t.same(got.map((m) => [m.data.length, Buffer.compare(Buffer.from(m.data), bytes(m.data.length, m.seed)) === 0]), sizes.map((s) => [s, true]), 'every message arrived intact');
  t.same(got.map((m) => [m.data.length, releaseBytes(m.data)]), sizes.map((s) => [s, true]), 'and each one can be given back');
  t.same(got.map((m) => m.tail.length), [0, 0, 0], 'every view of a released message reads as empty');
});

t.test('a hostile peer on a real socket: retained results never change, released ones read as empty', async (t) => {
  const { client, peer } = await acceptedPair(t, join(dir, 'a.sock'));
  const channel = new FramedChannel(peer, { maxFrameBytes: 4 * 1024 * 1024 });
  // Same-size frames, back to back, so each one is a candidate for the memory released before it.
  const seeds = Array.from({ length: 60 }, (_, i) => i + 1);
  const sizes = [65_536, 100_000, 1024 * 1024];
  const kept: Message[] = [];
  const released: Message[] = [];
  let count = 0;
  const total = seeds.length * sizes.length;
  const all = new Promise<void>((resolve) => channel.attach({
    envelope: (e) => {
      const m = (e as Extract<Envelope, { kind: 'reply' }>).result as Message;
      if (m.seed % 3 === 0) kept.push(m);
      else {
        t.equal(releaseBytes(m.data), true);
        released.push(m);
      }
      if (++count === total) resolve();
    },
    closed: () => undefined,
  }));
  t.equal(channel.readsIntoOwnBuffers, true);
  for (const size of sizes) {
    for (const seed of seeds) {
      if (!client.write(frame(size, seed))) await new Promise((resolve) => client.once('drain', resolve));
    }
  }
  await all;
  const bySize = new Map<number, number>();
  for (const m of kept) {
    const size = m.data.length;
    bySize.set(size, (bySize.get(size) ?? 0) + 1);
    if (Buffer.compare(Buffer.from(m.data), bytes(size, m.seed)) !== 0 || Buffer.compare(Buffer.from(m.tail), bytes(16, m.seed)) !== 0) t.fail(`kept frame ${m.seed} of ${size} bytes changed`);
  }
  t.same([...bySize.keys()].sort((a, b) => a - b), sizes, 'kept results of every size');
  t.equal(kept.length, total / 3, 'every kept result checked');
  t.equal(released.filter((m) => m.data.length !== 0 || m.tail.length !== 0).length, 0, 'every released result reads as empty');
});
