/**
 * A burst's plain frames leave as one view of plain-encode.ts's slab (lib/wire/outbox.ts
 * `pushSlabFrame`, round eleven): no view per frame and no copy to join them. The view is written
 * without a copy, so its bytes must never be written again while the socket still holds them.
 * Here: a run is one view of the slab (the positive control that the path is taken), and on a real
 * socket many bursts under backpressure, with a slow reader, another channel encoding into the
 * same slab between them, frames left to cbor-x, a frame refused for its size and slab changes,
 * all arrive byte for byte as framing each message on its own gives, in order.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { decodeEnvelope, encodeEnvelope, placePlainEnvelope, type Envelope } from '../lib/wire/envelope.js';
import { FrameDecoder } from '../lib/wire/frame-decoder.js';
import { FramedChannel } from '../lib/wire/framed-channel.js';
import { Outbox } from '../lib/wire/outbox.js';
import { plainNext, plainSlab } from '../lib/wire/plain-encode.js';
import { acceptedPair, prng } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'bulkhead-burst-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const tick = () => new Promise((resolve) => setImmediate(resolve));

t.test('frames placed one after the other are taken as one view of the slab, uncopied', (t) => {
  const outbox = new Outbox();
  const expected: Buffer[] = [];
  let slab = plainSlab;
  for (let i = 0; i < 20; i++) {
    const e: Envelope = { kind: 'call', id: i + 1, method: 'm', params: { i }, meta: {} };
    const length = placePlainEnvelope(e);
    t.ok(length > 0, 'a plain call is placed');
    if (i === 0) slab = plainSlab;
    outbox.pushSlabFrame(plainSlab, plainNext - length, plainNext);
    expected.push(encodeEnvelope(e));
  }
  t.equal(outbox.count, 20);
  const taken = outbox.take();
  t.equal(taken.length, 1, 'one buffer for the run');
  t.equal(taken[0]!.buffer, slab.buffer, 'a view of the slab, not a copy');
  t.ok(taken[0]!.equals(Buffer.concat(expected)), 'the frames, byte for byte');
  // A frame placed elsewhere in between (another channel's) splits the run; bytes queued as they are close it.
  const a = placePlainEnvelope({ kind: 'reply', id: 1, result: 1 });
  outbox.pushSlabFrame(plainSlab, plainNext - a, plainNext);
  placePlainEnvelope({ kind: 'reply', id: 2, result: 2 });
  const b = placePlainEnvelope({ kind: 'reply', id: 3, result: 3 });
  outbox.pushSlabFrame(plainSlab, plainNext - b, plainNext);
  outbox.pushRaw(Buffer.from([0, 0, 0, 1, 0xf6]));
  const c = placePlainEnvelope({ kind: 'reply', id: 4, result: 4 });
  outbox.pushSlabFrame(plainSlab, plainNext - c, plainNext);
  const joined = outbox.take();
  t.equal(joined.length, 1);
  const want = Buffer.concat([encodeEnvelope({ kind: 'reply', id: 1, result: 1 }), encodeEnvelope({ kind: 'reply', id: 3, result: 3 }), Buffer.from([0, 0, 0, 1, 0xf6]), encodeEnvelope({ kind: 'reply', id: 4, result: 4 })]);
  t.ok(joined[0]!.equals(want), 'runs and raw bytes in the order queued');
  t.end();
});

t.test('many bursts under backpressure to a slow reader: every frame intact and in order', async (t) => {
  const maxFrameBytes = 8 * 1024;
  const slow = await acceptedPair(t, join(dir, 'slow.sock'));
  const other = await acceptedPair(t, join(dir, 'other.sock'));
  const channel = new FramedChannel(slow.peer, { maxFrameBytes });
  channel.attach({ envelope: () => undefined, closed: () => undefined });
  // Another channel encodes into the same slab between this one's frames (the broker's other helpers).
  const side = new FramedChannel(other.peer, { maxFrameBytes });
  side.attach({ envelope: () => undefined, closed: () => undefined });
  let sideBytes = 0;
  other.client.on('data', (chunk: Buffer) => { sideBytes += chunk.length; });

  const random = prng(19);
  const sent: Envelope[] = [];
  let refused = 0;
  let sawDrainWait = false;
  let id = 0;
  const slabs = new Set<Buffer>();
  const message = (): Envelope => {
    const n = ++id;
    const r = random();
    const s = 'abcdefghij'.repeat(Math.floor(random() * 300)).slice(0, Math.floor(random() * 3000));
    if (r < 0.03) return { kind: 'call', id: n, method: 'bytes', params: { b: Buffer.from(s) }, meta: {} }; // left to cbor-x
    if (r < 0.05) return { kind: 'event', callId: n, name: 'é', payload: [n, s] }; // non-ASCII: cbor-x
    if (r < 0.4) return { kind: 'call', id: n, method: 'm', params: { n, s }, meta: {} };
    if (r < 0.7) return { kind: 'reply', id: n, result: { n, s, list: [n, -n, n / 7] } };
    if (r < 0.85) return { kind: 'item', id: n, value: s };
    return { kind: 'event', callId: n, name: 'tick', payload: { n, s } };
  };

  const received: Buffer[] = [];
  let receivedBytes = 0;
  slow.client.pause();
  // The slow reader: at most one read of what the socket buffered per few bursts.
  const readSome = () => {
    const chunk = slow.client.read() as Buffer | null;
    if (chunk !== null) received.push(chunk);
    if (chunk !== null) receivedBytes += chunk.length;
  };
  for (let burst = 0; burst < 300; burst++) {
    for (let i = 0; i < 64; i++) {
      const e = message();
      if (random() < 0.004) {
        // Past the frame limit: refused, nothing queued, the burst goes on.
        const big: Envelope = { kind: 'reply', id: ++id, result: 'x'.repeat(maxFrameBytes + 10) };
        t.throws(() => channel.send(big, true), { code: 'ERR_FRAME_TOO_LARGE' });
        refused++;
      }
      sent.push(e);
      channel.send(e, true);
      slabs.add(plainSlab);
      if (random() < 0.3) side.send({ kind: 'reply', id: burst * 64 + i, result: { side: i } }, true);
    }
    await tick();
    if (slow.peer.writableNeedDrain) sawDrainWait = true;
    if (burst % 3 === 0) readSome();
  }
  t.ok(sawDrainWait, 'the stream filled up: bursts waited for drain');
  t.ok(channel.writableLength > 1024 * 1024, 'more than 1 MiB waited for the slow reader');
  t.ok(slabs.size > 20, `the encoder moved to new slabs while frames waited (${slabs.size})`);
  t.ok(refused > 0, 'frames over the limit were refused on the way');
  // Bytes still held by the socket and the channel are checked only now, after every later encode.
  const frames = sent.map((e) => encodeEnvelope(e));
  const wire = Buffer.concat(frames);
  const all = new Promise<void>((resolve) => {
    slow.client.on('data', (chunk: Buffer) => {
      received.push(chunk);
      receivedBytes += chunk.length;
      if (receivedBytes >= wire.length) resolve();
    });
  });
  slow.client.resume(); // (a read() now would also emit 'data': no readSome here)
  await all;
  const got = Buffer.concat(received);
  t.equal(got.length, wire.length, 'as many bytes as the frames have');
  let firstBad = -1;
  for (let i = 0; i < wire.length && firstBad < 0; i++) if (got[i] !== wire[i]) firstBad = i;
  t.equal(firstBad, -1, 'byte for byte the frames, in order');
  if (firstBad >= 0) {
    let at = 0;
    let frame = 0;
    while (at + frames[frame]!.length <= firstBad) at += frames[frame++]!.length;
    t.comment(`lengths ${got.length} ${wire.length}; got ${got.subarray(firstBad - 8, firstBad + 24).toString('hex')} want ${wire.subarray(firstBad - 8, firstBad + 24).toString('hex')}; frame ${JSON.stringify(sent[frame]).slice(0, 80)}`);
    t.comment(`first difference at byte ${firstBad}: frame ${frame} (${sent[frame]!.kind}), offset ${firstBad - at} of ${frames[frame]!.length}`);
  }
  const decoder = new FrameDecoder(maxFrameBytes);
  const bodies = decoder.push(got);
  t.equal(bodies.length, sent.length, 'every frame arrived once');
  t.same(decodeEnvelope(bodies.at(-1)!), sent.at(-1), 'the last one decodes to what was sent');
  t.equal(decoder.pendingBytes, 0, 'nothing left over');
  t.ok(sideBytes > 0, 'the other channel sent too');
});
