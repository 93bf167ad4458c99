/**
 * Automatic release of received bodies (lib/wire/body-pool.ts, releaseIfUnviewed): a frame body of
 * 16 KiB or more that was decoded into values holding no view of it (no byte string), and that its
 * channel's handler did not keep, goes back to the pool when the handler returns. What must hold:
 * - the decoded values never change, however many later frames reuse that memory;
 * - a body a handler keeps (`keptBody`, as forwarding does) or passes on (`sendRaw`) is never reused
 *   under it: its bytes stay those of its own frame, and are sent intact;
 * - a body decoded with byte strings (views of it) is left alone;
 * - the positive control: an unkept body without views really is given back (its memory is detached,
 *   the pool grows), so the checks above are not passing because nothing was ever released.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { pooledBodyBytes } from '../lib/wire/body-pool.js';
import { encodeEnvelope, type Envelope } from '../lib/wire/envelope.js';
import { FrameDecoder } from '../lib/wire/frame-decoder.js';
import { FramedChannel } from '../lib/wire/framed-channel.js';
import { keptBody } from '../lib/wire/socket-reads.js';
import { acceptedPair } from './helpers.js';


const dir = mkdtempSync(join(tmpdir(), 'bulkhead-autorel-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** Larger than one 64 KiB read: the body is a buffer of its own, from the pool. */
const TEXT_BYTES = 100_000;

/** Text whose content depends on `seed`, so a clobbered one shows. */
function text(seed: number): string {
  return String.fromCharCode(...Array.from({ length: 64 }, (_, i) => 97 + ((i * 7 + seed) % 26))).repeat(TEXT_BYTES / 64);
}

/** A reply of plain text only (no byte string): decoded into fresh strings. */
function textFrame(seed: number): Buffer {
  return encodeEnvelope({ kind: 'reply', id: 7, result: { text: text(seed), seed } });
}

/** The body of `textFrame(seed)` (without its length prefix). */
function textBody(seed: number): Buffer {
  return textFrame(seed).subarray(4);
}

interface Got { text: string; seed: number; body: Buffer }

/** A channel on a real socket whose handler records each reply with its body; `keep` decides what the handler keeps. */
async function receiving(t: Test, name: string, count: number, keep: (body: Buffer) => Buffer) {
  const { client, peer } = await acceptedPair(t, join(dir, name));
  const channel = new FramedChannel(peer, { maxFrameBytes: 4 * 1024 * 1024 });
  const got: Got[] = [];
  const all = new Promise<Got[]>((resolve) => channel.attach({
    envelope: (e, body) => {
      const result = (e as Extract<Envelope, { kind: 'reply' }>).result as { text: string; seed: number };
      got.push({ ...result, body: keep(body) });
      if (got.length === count) resolve(got);
    },
    closed: () => undefined,
  }));
  t.equal(channel.readsIntoOwnBuffers, true, 'the socket case: bodies of their own');
  return { client, all };
}

async function send(client: Socket, frames: Buffer[]): Promise<void> {
  for (const f of frames) {
    if (!client.write(f)) await new Promise((resolve) => client.once('drain', resolve));
  }
}

const SEEDS = Array.from({ length: 40 }, (_, i) => i + 1);

t.test('positive control: a body decoded into fresh values and kept by nobody goes back to the pool', async (t) => {
  const before = pooledBodyBytes();
  // The handler holds the body without keptBody, which handlers must not do: this shows the release.
  const { client, all } = await receiving(t, 'control.sock', 1, (body) => body);
  await send(client, [textFrame(1)]);
  const [m] = await all;
  t.equal(m!.text, text(1), 'the decoded value is intact');
  t.equal(m!.body.length, 0, 'the body was released: its memory is detached from the view');
  t.ok(pooledBodyBytes() > before, 'and waits in the pool for the next frame of that size');
});

t.test('decoded values never change while later frames reuse the memory', async (t) => {
  const { client, all } = await receiving(t, 'values.sock', SEEDS.length, (body) => body);
  await send(client, SEEDS.map(textFrame));
  const got = await all;
  t.same(got.map((m) => m.seed), SEEDS);
  t.equal(got.filter((m) => m.text !== text(m.seed)).length, 0, 'every text reads as sent');
  t.equal(got.filter((m) => m.body.length !== 0).length, 0, 'every body went back to the pool');
});

t.test('a body the handler keeps (keptBody, as a forward does) is never reused under it', async (t) => {
  const { client, all } = await receiving(t, 'kept.sock', SEEDS.length, (body) => keptBody(body));
  await send(client, SEEDS.map(textFrame));
  const got = await all;
  const changed = got.filter((m) => Buffer.compare(m.body, textBody(m.seed)) !== 0);
  t.equal(changed.length, 0, 'every kept body still holds its own frame');
  t.equal(got.filter((m) => m.text !== text(m.seed)).length, 0);
});

t.test('a body passed on with sendRaw arrives intact at the other end', async (t) => {
  const { client: out, peer: outPeer } = await acceptedPair(t, join(dir, 'out.sock'));
  const forward = new FramedChannel(outPeer, { maxFrameBytes: 4 * 1024 * 1024 });
  forward.attach({ envelope: () => undefined, closed: () => undefined });
  const { client, all } = await receiving(t, 'fwd.sock', SEEDS.length, (body) => {
    forward.sendRaw(body);
    return body;
  });
  // What the far end of the forward receives: whole bodies, in order.
  const decoder = new FrameDecoder(4 * 1024 * 1024);
  const arrived: Buffer[] = [];
  const forwarded = new Promise<void>((resolve) => out.on('data', (chunk: Buffer) => {
    for (const body of decoder.push(chunk)) arrived.push(Buffer.from(body));
    if (arrived.length === SEEDS.length) resolve();
  }));
  await send(client, SEEDS.map(textFrame));
  const got = await all;
  await forwarded;
  t.equal(got.filter((m) => m.body.length === 0).length, 0, 'no forwarded body was released');
  t.equal(arrived.filter((b, i) => Buffer.compare(b, textBody(SEEDS[i]!)) !== 0).length, 0, 'every forwarded frame arrived byte for byte');
});

t.test('a body decoded with byte strings is left alone: its views stay intact', async (t) => {
  const bytesFrame = (seed: number) => encodeEnvelope({ kind: 'reply', id: 7, result: { text: text(seed), data: Buffer.from(text(seed + 1)), seed } });
  const { client, peer } = await acceptedPair(t, join(dir, 'views.sock'));
  const channel = new FramedChannel(peer, { maxFrameBytes: 4 * 1024 * 1024 });
  const got: Array<{ data: Uint8Array; seed: number }> = [];
  const all = new Promise<void>((resolve) => channel.attach({
    envelope: (e) => {
      got.push((e as Extract<Envelope, { kind: 'reply' }>).result as { data: Uint8Array; seed: number });
      if (got.length === SEEDS.length) resolve();
    },
    closed: () => undefined,
  }));
  await send(client, SEEDS.map(bytesFrame));
  await all;
  t.equal(got.filter((m) => Buffer.compare(Buffer.from(m.data), Buffer.from(text(m.seed + 1))) !== 0).length, 0, 'every byte string reads as sent');
});
