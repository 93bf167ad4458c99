/**
 * The send path on real sockets (lib/wire/outbox.ts): bodies are queued as cbor-x gave them and
 * their 4-byte length prefixes written straight into the buffer a burst is joined into, big
 * buffers go out uncopied with writev. What reaches the peer must be byte for byte what framing
 * each message on its own gives, in order, also when the peer stops reading, the kernel takes
 * frames in parts and the backlog is compacted while it waits for 'drain'.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import t from 'tap';
import { encodeItem } from '../lib/wire/codec.js';
import { decodeEnvelope, encodeEnvelope, type Envelope } from '../lib/wire/envelope.js';
import { encodeFrame, FrameDecoder } from '../lib/wire/frame-decoder.js';
import { FramedChannel } from '../lib/wire/framed-channel.js';
import { LARGE_BYTES_THRESHOLD } from '../lib/wire/large-bytes.js';
import { acceptedPair, prng } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'bulkhead-send-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** `n` bytes whose content depends on `seed`. */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 29 + seed) & 0xff;
  return b;
}

/** Resolves with the first `length` bytes the socket receives. */
function receive(socket: Socket, length: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  return new Promise((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= length) resolve(Buffer.concat(chunks));
    });
    socket.once('error', reject);
  });
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

t.test('the bytes on the wire are exactly the frames, for every way of sending', async (t) => {
  const { client, peer } = await acceptedPair(t, join(dir, 'exact.sock'));
  const channel = new FramedChannel(peer, { maxFrameBytes: 4 * 1024 * 1024 });
  channel.attach({ envelope: () => undefined, closed: () => undefined });
  const expected: Buffer[] = [];
  const send = (e: Envelope, noLargeBytes = false) => {
    expected.push(encodeEnvelope(e));
    channel.send(e, noLargeBytes);
  };
  const raw = (body: Buffer) => {
    expected.push(encodeFrame(body));
    channel.sendRaw(body);
  };
  // One frame alone in a tick, then bursts of small frames (joined), past the eager-flush count.
  send({ kind: 'reply', id: 1, result: { ok: true } });
  await tick();
  for (let i = 0; i < 150; i++) send({ kind: 'call', id: 10 + i, method: 'm', params: { i, s: 'x'.repeat(i) }, meta: {} });
  raw(encodeItem({ t: 'go' }));
  await tick();
  // Big pieces between small ones: the large-bytes path at and above its threshold, a forwarded
  // body of 200 KiB, a body just under the threshold sent with the "no large bytes" hint (cbor-x's
  // own output, ≥ 64 KiB: written uncopied behind its prefix), and a frame encoded by the caller.
  send({ kind: 'reply', id: 2, result: { data: bytes(LARGE_BYTES_THRESHOLD, 1) } });
  send({ kind: 'event', callId: 2, name: 'e', payload: [bytes(10, 2), bytes(1024 * 1024, 3), 'tail'] });
  raw(encodeItem({ a: bytes(200 * 1024, 4) }));
  send({ kind: 'reply', id: 3, result: { data: bytes(LARGE_BYTES_THRESHOLD - 1, 5) } }, true);
  const frame = encodeEnvelope({ kind: 'cancel', id: 3, reason: 'cancelled' });
  expected.push(frame);
  channel.sendFrame(frame);
  send({ kind: 'goodbye', reason: 'done' });
  const wire = Buffer.concat(expected);
  const got = await receive(client, wire.length);
  t.equal(got.length, wire.length, 'as many bytes as the frames have');
  t.ok(got.equals(wire), 'byte for byte the frames, in order');
});

t.test('a peer that stops reading: partial writes, a compacted backlog, then every frame intact and in order', async (t) => {
  const { client, peer } = await acceptedPair(t, join(dir, 'slow.sock'));
  const channel = new FramedChannel(peer, { maxFrameBytes: 4 * 1024 * 1024 });
  channel.attach({ envelope: () => undefined, closed: () => undefined });
  client.pause();
  const sent: Envelope[] = [];
  const random = prng(4);
  let sawDrainWait = false;
  let id = 0;
  // Send until the stream has been over its mark for a while: the kernel's buffer is full and
  // frames wait in the channel (compacted past 512 entries), some of them cut by a partial write.
  for (let burst = 0; burst < 40; burst++) {
    for (let i = 0; i < 100; i++) {
      const size = random() < 0.02 ? 70_000 + Math.floor(random() * 200_000) : Math.floor(random() * 300);
      const e: Envelope = { kind: 'reply', id: ++id, result: { data: bytes(size, id), n: id } };
      sent.push(e);
      channel.send(e);
    }
    await tick();
    if (peer.writableNeedDrain) sawDrainWait = true;
  }
  t.ok(sawDrainWait, 'the stream filled up: frames waited for drain');
  t.ok(channel.writableLength > 1024 * 1024, 'a backlog of more than 1 MiB waits in the channel and the stream');
  const bodies: Buffer[] = [];
  const decoder = new FrameDecoder(4 * 1024 * 1024);
  const all = new Promise<void>((resolve) => {
    client.on('data', (chunk: Buffer) => {
      bodies.push(...decoder.push(chunk));
      if (bodies.length >= sent.length) resolve();
    });
  });
  client.resume();
  await all;
  t.equal(bodies.length, sent.length, 'every frame arrived once');
  let same = 0;
  for (let i = 0; i < sent.length; i++) if (Buffer.from(bodies[i]!).equals(encodeEnvelope(sent[i]!).subarray(4))) same++;
  t.equal(same, sent.length, 'each frame byte for byte, in order');
  t.same(decodeEnvelope(bodies.at(-1)!), sent.at(-1), 'the last one decodes to what was sent');
  t.equal(decoder.pendingBytes, 0, 'nothing left over');
});
