/**
 * Sized reads (lib/wire/socket-reads.ts): after a frame of 16–80 KiB a socket channel reads the next one into
 * fresh memory sized for it, and a frame that arrives there whole (or in parts, collected in place by
 * FrameDecoder.push's `own`) is handed over as a view of that memory, not copied. What must hold, whatever the
 * peer's frames and however the kernel splits them:
 * - the path is taken: a 64 KiB frame's body and its byte string are views of memory of the frame's size + 5;
 * - what a handler got (byte strings included, never copied by the handler) never changes, checked only after
 *   many later reads; a positive control shows the check sees a view that was overwritten (a body of the
 *   shared read buffer kept without keptBody);
 * - releaseBytes takes such memory back only while it holds one message: memory that holds two is refused,
 *   and the other message stays intact.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import t, { type Test } from 'tap';
import { releaseBytes } from '../lib/index.js';
import { encodeEnvelope, type Envelope } from '../lib/wire/envelope.js';
import { FramedChannel } from '../lib/wire/framed-channel.js';
import { inSharedReadBuffer } from '../lib/wire/socket-reads.js';
import { acceptedPair } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'bulkhead-sized-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** `n` bytes whose content depends on `seed`, so a clobbered one shows. */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

interface Message { data: Uint8Array; seed: number }

/** The reply carrying `size` bytes of `seed`, as a whole frame. */
const frame = (size: number, seed: number): Buffer => encodeEnvelope({ kind: 'reply', id: seed, result: { data: bytes(size, seed), seed } });

/** What the handler got: the message (kept as decoded, no copy) and the body it came in. */
interface Got { m: Message; body: Buffer }

/** A channel on a real socket that keeps every message; `arrived(n)` resolves once `n` have come, `taken(n)` once it read `n` bytes. */
async function receiver(t: Test, name: string, keep?: (body: Buffer) => void): Promise<{ client: Socket; got: Got[]; arrived(n: number): Promise<void>; taken(n: number): Promise<void> }> {
  const { client, peer } = await acceptedPair(t, join(dir, name));
  const channel = new FramedChannel(peer);
  const got: Got[] = [];
  let waiter: { n: number; resolve: () => void } | undefined;
  channel.attach({
    envelope: (e: Envelope, body: Buffer) => {
      got.push({ m: (e as Extract<Envelope, { kind: 'reply' }>).result as Message, body });
      keep?.(body);
      if (waiter !== undefined && got.length >= waiter.n) waiter.resolve();
    },
    closed: () => undefined,
  });
  t.equal(channel.readsIntoOwnBuffers, true, 'the channel reads into its own buffers');
  const arrived = (n: number): Promise<void> => (got.length >= n ? Promise.resolve() : new Promise((resolve) => (waiter = { n, resolve })));
  // A read into a body's rest reports nothing until the body is complete: look at the socket's count each turn.
  const taken = async (n: number): Promise<void> => {
    while (peer.bytesRead < n) await new Promise((resolve) => setImmediate(resolve));
  };
  return { client, got, arrived, taken };
}

/** True when `body` is a view of memory sized for exactly it: a sized read that held this frame alone. */
const sizedFor = (body: Uint8Array): boolean => body.buffer.byteLength === body.length + 5 && body.byteOffset <= 4;

t.test('a 64 KiB frame arriving whole is a view of memory read for it: no copy', async (t) => {
  const { client, got, arrived } = await receiver(t, 'whole.sock');
  for (let seed = 1; seed <= 40; seed++) {
    client.write(frame(65536, seed));
    await arrived(seed);
  }
  const sized = got.slice(1).filter((g) => sizedFor(g.body) && g.m.data.buffer === g.body.buffer);
  t.ok(sized.length >= 30, `frames after the first read sized, their byte string a view of that memory (${sized.length} of 39)`);
  t.equal(got.filter((g) => inSharedReadBuffer(g.body)).length, 0, 'none lies in the shared read buffer');
  t.same(got.map((g) => Buffer.compare(Buffer.from(g.m.data), bytes(65536, g.m.seed))), got.map(() => 0), 'every message intact');
});

/** One step of the hostile writer: what it writes, and how. */
type Step = { sizes: number[]; parts: number };

t.test('what a handler got never changes, however frames of every size are split and packed', async (t) => {
  let kept: Buffer[] = [];
  const { client, got, arrived, taken } = await receiver(t, 'mix.sock', (body) => kept.push(body));
  // Each step after a 64 KiB frame, so the next read is sized: whole, in parts (collected in place), larger or
  // smaller than expected, several in one write (a read holds more than one body), small frames, a burst.
  const steps: Step[] = [];
  for (let i = 0; i < 60; i++) {
    steps.push({ sizes: [65536], parts: 1 });
    steps.push([{ sizes: [65536], parts: 3 }, { sizes: [65536 + 300], parts: 1 }, { sizes: [20000, 30000], parts: 1 }, { sizes: [100, 2000, 300], parts: 2 }, { sizes: [65536, 65536, 65536], parts: 1 }, { sizes: [40000], parts: 2 }][i % 6]!);
  }
  let seed = 0;
  let expected = 0;
  let written = 0;
  const parted: number[] = [];
  for (const step of steps) {
    const wire = Buffer.concat(step.sizes.map((size) => frame(size, ++seed)));
    expected += step.sizes.length;
    if (step.parts > 1) parted.push(seed);
    const cut = Math.ceil(wire.length / step.parts);
    for (let at = 0; at < wire.length; at += cut) {
      // The reader takes this part before the next is written: the frame arrives over several reads.
      const part = wire.subarray(at, at + cut);
      client.write(part);
      written += part.length;
      await taken(written);
    }
    await arrived(expected);
  }
  t.equal(got.length, expected, 'every frame arrived');
  const changed = got.filter((g) => Buffer.compare(Buffer.from(g.m.data), bytes(g.m.data.length, g.m.seed)) !== 0);
  t.equal(changed.length, 0, 'no byte string a handler got changed after many later reads');
  t.ok(got.filter((g) => g.m.data.length === 65536 && sizedFor(g.body)).length >= 60, 'the sized path was taken');
  const inPlace = got.filter((g) => parted.includes(g.m.seed) && g.m.data.length === 65536 && sizedFor(g.body));
  t.ok(inPlace.length >= 5, `frames written in parts were collected in their sized memory (${inPlace.length})`);
  t.ok(got.some((g) => !inSharedReadBuffer(g.body) && g.body.buffer.byteLength > g.body.length + 5 && g.body.length >= 100), 'some read held more than one body');
  // Positive control: the bodies of small frames that lay in the shared read buffer, kept without keptBody, were
  // overwritten by later reads; the same comparison sees it.
  const shared = got.map((g, i) => ({ g, raw: kept[i]! })).filter(({ raw }) => inSharedReadBuffer(raw));
  t.ok(shared.length > 0, 'small frames were read into the shared buffer');
  const overwritten = shared.filter(({ g, raw }) => Buffer.compare(raw, frame(g.m.data.length, g.m.seed).subarray(4)) !== 0);
  t.ok(overwritten.length > 0, `the check sees views that later reads overwrote (${overwritten.length} of ${shared.length})`);
  kept = [];
});

t.test('releaseBytes takes sized memory back only while it holds one message', async (t) => {
  const { client, got, arrived } = await receiver(t, 'release.sock');
  client.write(frame(65536, 1));
  await arrived(1);
  client.write(frame(65536, 2));
  await arrived(2);
  const lone = got[1]!;
  t.ok(sizedFor(lone.body), 'a lone 64 KiB frame in sized memory');
  t.equal(releaseBytes(lone.m.data), true, 'is given back');
  t.equal(lone.m.data.length, 0, 'and reads as empty');
  // Two 30 KB frames in one write: the sized read (made for 64 KiB) holds both.
  client.write(Buffer.concat([frame(30000, 3), frame(30000, 4)]));
  await arrived(4);
  const [a, b] = [got[2]!, got[3]!];
  t.equal(a.body.buffer, b.body.buffer, 'both bodies lie in one memory');
  t.equal(releaseBytes(a.m.data), false, 'which is refused');
  t.same([Buffer.compare(Buffer.from(a.m.data), bytes(30000, 3)), Buffer.compare(Buffer.from(b.m.data), bytes(30000, 4))], [0, 0], 'and both messages stay intact');
});
