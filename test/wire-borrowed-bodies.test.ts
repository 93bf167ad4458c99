/**
 * A channel reading a socket decodes small frames where they lie in the read buffer every channel
 * shares (lib/wire/socket-reads.ts, framed-channel.ts): the body a handler gets is a view that the
 * next read overwrites. What must hold: decoded values never change afterwards (byte strings are
 * decoded from a copy), a body forwarded with sendRaw leaves byte for byte as it arrived however
 * long it waits in the outbox, and `keptBody` gives a body that stays. Each check is made only after
 * many later reads, and a positive control shows that the bodies handed over really are overwritten.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { BulkheadError } from '../lib/errors.js';
import { decodeEnvelope, encodeEnvelope, type Envelope } from '../lib/wire/envelope.js';
import { FramedChannel } from '../lib/wire/framed-channel.js';
import { inSharedReadBuffer, keptBody } from '../lib/wire/socket-reads.js';
import { acceptedPair } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'bulkhead-borrowed-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** Frame `i`: small, its content depends on `i`; every third carries a byte string, every fifth a bignum. */
function frame(i: number): Envelope {
  const result: Record<string, unknown> = { i, text: `frame ${i} `.repeat(1 + (i % 7)), tags: [String(i), 'x'.repeat(i % 13)] };
  if (i % 3 === 0) result['data'] = Buffer.alloc(1 + (i % 50), i & 0xff);
  if (i % 5 === 0) result['big'] = 2n ** 70n + BigInt(i);
  return { kind: 'reply', id: i + 1, result };
}

/** Counts envelopes and lets a writer wait until the reader has taken `n`. */
class Arrivals {
  count = 0;
  private waiter: { n: number; resolve: () => void } | undefined;
  arrived(): void {
    this.count++;
    if (this.waiter !== undefined && this.count >= this.waiter.n) this.waiter.resolve();
  }
  reached(n: number): Promise<void> {
    if (this.count >= n) return Promise.resolve();
    return new Promise((resolve) => (this.waiter = { n, resolve }));
  }
}

/** Writes `frames` one write each, after the reader took the one before: later frames land where earlier ones lay. */
async function writeOneByOne(client: import('node:net').Socket, frames: Envelope[], arrivals: Arrivals): Promise<void> {
  for (const [i, e] of frames.entries()) {
    client.write(encodeEnvelope(e));
    await arrivals.reached(i + 1);
  }
}

t.test('a hostile peer\'s frames: decoded values, kept bodies and forwarded bodies all stay as they arrived', async (t) => {
  const { client, peer } = await acceptedPair(t, join(dir, 'in.sock'));
  // The forwarding target: its reader is stalled behind a large frame, so forwarded bodies wait in its outbox.
  const out = await acceptedPair(t, join(dir, 'out.sock'));
  const target = new FramedChannel(out.peer, { maxFrameBytes: 16 * 1024 * 1024 });
  target.attach({ envelope: () => undefined, closed: () => undefined });
  out.client.pause();
  target.sendRaw(encodeEnvelope({ kind: 'reply', id: 1, result: Buffer.alloc(8 * 1024 * 1024, 1) }).subarray(4));
  await new Promise((resolve) => setImmediate(resolve));

  const channel = new FramedChannel(peer);
  const frames = Array.from({ length: 300 }, (_, i) => frame(i));
  const decoded: Envelope[] = [];
  const kept: Buffer[] = [];
  const raw: Buffer[] = [];
  let borrowed = 0;
  let closedWith: BulkheadError | undefined;
  const arrivals = new Arrivals();
  channel.attach({
    envelope: (e, body) => {
      decoded.push(e);
      arrivals.arrived();
      if (inSharedReadBuffer(body)) borrowed++;
      raw.push(body);
      kept.push(keptBody(body));
      target.sendRaw(body);
    },
    closed: (error) => (closedWith = error),
  });
  t.equal(channel.readsIntoOwnBuffers, true, 'the socket reads into the shared buffer');
  await writeOneByOne(client, frames, arrivals);
  t.equal(closedWith, undefined);
  t.ok(borrowed > frames.length / 2, `${borrowed} of ${frames.length} bodies were handed over as views of the shared read buffer`);

  // Checked only now, after every later read.
  t.same(decoded, frames, 'every decoded envelope equals what was sent (byte strings and bignums included)');
  const wire = frames.map((e) => encodeEnvelope(e).subarray(4));
  t.ok(kept.every((body, i) => body.equals(wire[i]!)), 'keptBody of each body still holds its frame');
  // Positive control: the views handed over did change (else this test could not see a missing copy).
  const changed = raw.filter((body, i) => !body.equals(wire[i]!)).length;
  t.ok(changed > 0, `${changed} of the bodies handed over were overwritten by later reads`);

  // Now let the target's reader go: the forwarded frames must be the frames that arrived.
  const forwarded: Envelope[] = [];
  const first = new Promise<void>((resolve, reject) => {
    const reader = new FramedChannel(out.client, { maxFrameBytes: 16 * 1024 * 1024 });
    reader.attach({
      envelope: (e) => {
        forwarded.push(e);
        if (forwarded.length === frames.length + 1) resolve();
      },
      closed: (error) => reject(error ?? new Error('closed early')),
    });
  });
  out.client.resume();
  await first;
  t.same(forwarded.slice(1), frames, 'every forwarded frame left byte for byte as it arrived');
});

t.test('a frame larger than a read has a body of its own: not borrowed, kept as it is', async (t) => {
  const { client, peer } = await acceptedPair(t, join(dir, 'spread.sock'));
  const channel = new FramedChannel(peer);
  // Larger than the 64 KiB read buffer, so it arrives over several reads into a body the decoder allocated.
  const e: Envelope = { kind: 'reply', id: 7, result: { data: Buffer.alloc(100_000, 7), text: 'spread' } };
  const got = new Promise<[Envelope, Buffer]>((resolve) => channel.attach({ envelope: (x, body) => resolve([x, body]), closed: () => undefined }));
  client.write(encodeEnvelope(e));
  const [x, body] = await got;
  t.same(x, e);
  t.equal(inSharedReadBuffer(body), false, 'not a view of the shared read buffer');
  t.equal(keptBody(body), body, 'keptBody returns it uncopied');
  t.same(decodeEnvelope(body), e);
});

t.test('garbage after borrowed frames still closes the channel with ERR_BAD_FRAME', async (t) => {
  const { client, peer } = await acceptedPair(t, join(dir, 'bad.sock'));
  const channel = new FramedChannel(peer);
  const seen: Envelope[] = [];
  const closed = new Promise<BulkheadError | undefined>((resolve) => channel.attach({ envelope: (e) => seen.push(e), closed: resolve }));
  // Two good frames, then a frame whose body is a CBOR tag 1 (a date): outside the data model.
  client.write(Buffer.concat([encodeEnvelope(frame(3)), encodeEnvelope(frame(4)), Buffer.from([0, 0, 0, 2, 0xc1, 0x00])]));
  t.equal((await closed)?.code, 'ERR_BAD_FRAME');
  t.same(seen, [frame(3), frame(4)]);
});
