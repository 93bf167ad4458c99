/**
 * A peer that stops reading must not keep the encoders' shared buffers alive (round twelve, audit12). A small frame
 * placed in plain-encode.ts's 64 KiB slab is queued as a view of it (outbox.ts), and cbor-x's bodies are views of its
 * buffer: while a write waits for a peer that does not read, each such view keeps its whole buffer. With other
 * traffic moving the encoder on between the stalled peer's frames (the broker's other helpers and clients), one
 * slab per frame stayed alive: 134 MiB on Node 24 (68 MiB on 20) for 12,000 small frames whose backlog counted
 * ~0.5 MB, far past what `maxBufferedBytes` says a peer may leave unread. Here: such a stall on a real socket, the
 * positive controls (the stream is full and waits for drain; the slab changed under the waiting frames), and the
 * memory the stall keeps, measured after a full GC, within a few MiB.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import t from 'tap';
import { FramedChannel, untrustedPeerBacklog } from '../lib/wire/framed-channel.js';
import { plainSlab } from '../lib/wire/plain-encode.js';
import { acceptedPair } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'bulkhead-pins-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const tick = () => new Promise((resolve) => setImmediate(resolve));

/** ArrayBuffer bytes alive after a full collection. */
function liveArrayBuffers(): number {
  gc();
  gc();
  return process.memoryUsage().arrayBuffers;
}

t.test('a stalled reader with traffic between its frames keeps no slab per frame alive', async (t) => {
  const maxFrameBytes = 16 * MiB;
  const stalled = await acceptedPair(t, join(dir, 'stalled.sock'));
  const other = await acceptedPair(t, join(dir, 'other.sock'));
  const channel = new FramedChannel(stalled.peer, { maxFrameBytes, maxBufferedBytes: untrustedPeerBacklog(maxFrameBytes) });
  let closed: unknown;
  channel.attach({ envelope: () => undefined, closed: (error) => { closed = error ?? 'closed'; } });
  const side = new FramedChannel(other.peer, { maxFrameBytes });
  side.attach({ envelope: () => undefined, closed: () => undefined });
  other.client.on('data', () => undefined);
  stalled.client.pause();

  const before = liveArrayBuffers();
  const backlogBefore = channel.writableLength;
  // Counted, not kept: a set of them would keep every slab alive itself.
  let slabs = 0;
  let slab: Buffer | undefined;
  let waitedForDrain = 0;
  const FRAMES = 6000;
  for (let i = 0; i < FRAMES && closed === undefined; i++) {
    // One small frame per turn, alone in its write (two would be joined, i.e. copied): what a client that sends calls
    // to an unknown method and never reads gets (an error, a whole frame in the slab: encodeEnvelopeChunks), or a
    // small reply (placed in the slab: round eleven's path) ...
    if (i % 2 === 0) channel.send({ kind: 'error', id: i + 1, error: { code: 'ERR_UNKNOWN_METHOD', message: 'no such method' } });
    else channel.send({ kind: 'reply', id: i + 1, result: { n: i } }, true);
    if (plainSlab !== slab) slabs++;
    slab = plainSlab;
    // ... while the rest of the process encodes ~60 KB for a peer that reads: the slab moves on about once a turn.
    for (let k = 0; k < 60; k++) side.send({ kind: 'reply', id: k, result: { s: 'y'.repeat(1000) } }, true);
    await tick();
    if (stalled.peer.writableNeedDrain) waitedForDrain++;
  }
  const kept = liveArrayBuffers() - before;
  const backlog = channel.writableLength - backlogBefore;
  t.equal(closed, undefined, 'the stalled peer was not cut off: its backlog stayed under maxBufferedBytes');
  // Positive controls: the frames waited (the socket and the stream were full), and the slab changed under them.
  t.ok(waitedForDrain > FRAMES / 4, `the stream waited for drain (${waitedForDrain} of ${FRAMES} turns)`);
  t.ok(backlog > 100_000, `the frames waited in the channel (${backlog} bytes counted)`);
  slab = undefined;
  t.ok(slabs > FRAMES / 2, `the encoder took a new slab under the waiting frames (${slabs} slabs)`);
  t.ok(kept < backlog + 8 * MiB, `kept alive by the stall: ${(kept / MiB).toFixed(1)} MiB for a ${(backlog / MiB).toFixed(2)} MiB backlog (one slab per frame: ${(slabs * 64 / 1024).toFixed(0)} MiB)`);
  // That the copies carry the same bytes, in order, under backpressure: test/wire-burst-views.test.ts.
});
