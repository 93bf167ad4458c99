/**
 * A frame's body buffer follows the bytes the peer really sent (lib/wire/frame-decoder.ts, round fourteen): a
 * header that declares a large body and a few bytes of it make the reader allocate at most 64 KiB (a stage), not the
 * declared size; the body's own buffer comes once a 16th of it arrived. Tried by real hostile peers on real sockets
 * against a separate reader process whose ArrayBuffer memory is measured, with positive controls: the hostile bytes
 * reached every reader, and peers that do send a 16th of their bodies make the same measure see whole bodies.
 */
import { createHash } from 'node:crypto';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { encodeEnvelope } from '../lib/wire/envelope.js';
import { FRAME_HEADER_BYTES, FrameDecoder, STAGE_FLOOR_BYTES, STAGE_GROWTH } from '../lib/wire/frame-decoder.js';

/** The bound, written out here rather than taken from the decoder: max(64 KiB, 16 × arrived), plus a 16th of that. */
const bound = (arrived: number): number => Math.max(STAGE_FLOOR_BYTES, STAGE_GROWTH * arrived) * (1 + 1 / STAGE_GROWTH);
import { FIXTURES, prng } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'bulkhead-staged-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 1024 * 1024;

function header(length: number): Buffer {
  const h = Buffer.alloc(FRAME_HEADER_BYTES);
  h.writeUInt32BE(length, 0);
  return h;
}

/** Runs `fn` while recording the size of every Buffer allocation of at least 1 KiB. */
function recordAllocations<T>(sizes: number[], fn: () => T): T {
  const { allocUnsafe, allocUnsafeSlow } = Buffer;
  Buffer.allocUnsafe = (size: number) => {
    if (size >= 1024) sizes.push(size);
    return allocUnsafe(size);
  };
  Buffer.allocUnsafeSlow = (size: number) => {
    if (size >= 1024) sizes.push(size);
    return allocUnsafeSlow(size);
  };
  try {
    return fn();
  } finally {
    Buffer.allocUnsafe = allocUnsafe;
    Buffer.allocUnsafeSlow = allocUnsafeSlow;
  }
}

t.test('the decoder allocates at most max(68 KiB, 17 × the bytes that arrived), whatever the reads, and bodies arrive intact', async (t) => {
  const random = prng(14);
  const sizes = [STAGE_FLOOR_BYTES, STAGE_FLOOR_BYTES + 1, 100_000, MiB, MiB + 7, 5 * MiB + 3, 16 * MiB];
  for (const size of sizes) {
    for (let trial = 0; trial < 3; trial++) {
      const decoder = new FrameDecoder();
      const body = Buffer.allocUnsafe(size);
      for (let i = 0; i + 4 <= size; i += 4096) body.writeUInt32BE(i, i); // positions, so a misplaced byte shows
      const wire = Buffer.concat([header(size), body]);
      let at = 0;
      let got: Buffer | undefined;
      const allocated: number[] = [];
      let violations = 0;
      let ownAt = -1;
      while (at < wire.length) {
        const before = allocated.length;
        // As socket-reads.ts reads: straight into the body's (or stage's) rest when the decoder offers it, else a chunk.
        const rest = decoder.bodyRemainder(16 * 1024);
        const want = 1 + Math.floor(random() * random() * 300_000);
        recordAllocations(allocated, () => {
          if (rest !== undefined) {
            const n = Math.min(want, rest.length, wire.length - at);
            wire.copy(rest, 0, at, at + n);
            at += n;
            got = decoder.filled(n) ?? got;
          } else {
            const n = Math.min(trial === 2 && at < 64 ? 1 : want, wire.length - at);
            got = decoder.push(wire.subarray(at, at + n))[0] ?? got;
            at += n;
          }
        });
        const arrived = Math.max(0, at - FRAME_HEADER_BYTES);
        for (const s of allocated.slice(before)) {
          if (s > bound(arrived)) violations++;
          if (s === size && ownAt < 0) ownAt = arrived;
        }
      }
      t.equal(violations, 0, `${size} bytes, trial ${trial}: no allocation beyond max(68 KiB, 17 × arrived) (${allocated.join(', ')})`);
      t.ok(got !== undefined && got.equals(body), `${size} bytes, trial ${trial}: the body arrived intact`);
      if (size > STAGE_FLOOR_BYTES) {
        // -1: it arrived in one piece, a view of it (no buffer of its own).
        t.ok(ownAt === -1 || ownAt >= size / STAGE_GROWTH, `its own buffer only once a 16th had arrived (${ownAt} of ${size})`);
        const staged = allocated.filter((s) => s !== size).reduce((a, s) => a + s, 0);
        t.ok(staged <= size / (STAGE_GROWTH - 1) + 64, `stages ${staged} bytes: the extra copy is at most a 15th of the body`);
      } else {
        t.ok(allocated.length <= 1 && allocated.every((s) => s === size), 'a body up to 64 KiB: its own buffer at once (or none), no stage');
      }
    }
  }
});

t.test('a header and one byte: a 64 KiB stage, not the declared 16 MiB; a 16th of the body: the body\'s own buffer', async (t) => {
  const decoder = new FrameDecoder();
  const size = 16 * MiB;
  const allocated: number[] = [];
  recordAllocations(allocated, () => decoder.push(header(size)));
  t.same(allocated, [], 'a bare header allocates nothing');
  // Stages a frame before filled may be reused (lib/wire/body-stages.ts): what is allocated is at most the stage.
  recordAllocations(allocated, () => decoder.push(Buffer.of(1)));
  t.ok(allocated.every((s) => s <= STAGE_FLOOR_BYTES), `the first byte: nothing over 64 KiB allocated (${allocated.join(', ')})`);
  t.equal(decoder.bodyRemainder(16 * 1024)?.length, STAGE_FLOOR_BYTES - 1, 'it is in a 64 KiB stage, whose rest the kernel may read into');
  const part = Buffer.alloc(size / STAGE_GROWTH - 2, 2);
  recordAllocations(allocated, () => decoder.push(part));
  t.ok(allocated.every((s) => s <= MiB), `a 16th but one byte: nothing over 1 MiB allocated (${allocated.join(', ')})`);
  t.equal(decoder.bodyRemainder(1)?.length, 1, 'they are in a 1 MiB stage');
  recordAllocations(allocated, () => decoder.push(Buffer.of(3)));
  t.equal(allocated.at(-1), size, 'a 16th: the body\'s own buffer');
  const rest = decoder.bodyRemainder(1)!;
  t.equal(rest.length, size - size / STAGE_GROWTH, 'its rest is all the body\'s rest');
  rest.fill(4);
  const body = decoder.filled(rest.length)!;
  t.equal(body.length, size);
  t.same([body[0], body[1], body[size / STAGE_GROWTH - 2], body[size / STAGE_GROWTH - 1], body[size / STAGE_GROWTH], body[size - 1]], [1, 2, 2, 3, 4, 4], 'the staged bytes were carried over in place');
});

t.test('stages kept for reuse never mix two channels\' bodies: two decoders interleaved, frame after frame', async (t) => {
  const random = prng(7);
  const decoders = [new FrameDecoder(), new FrameDecoder()];
  const size = 16 * MiB - 100;
  let intact = 0;
  for (let frame = 0; frame < 3; frame++) {
    const wires = decoders.map((_, d) => {
      const body = Buffer.allocUnsafe(size);
      for (let i = 0; i + 4 <= size; i += 4) body.writeUInt32LE((i * 40503 + d * 7 + frame) >>> 0, i);
      return { body, wire: Buffer.concat([header(size), body]), at: 0, got: undefined as Buffer | undefined };
    });
    // Alternate between the two: each stage of one fills while the other's is in use, and comes back between them.
    while (wires.some((w) => w.got === undefined)) {
      for (const [d, w] of wires.entries()) {
        if (w.got !== undefined) continue;
        const n = Math.min(w.wire.length - w.at, 1 + Math.floor(random() * 400_000));
        w.got = decoders[d]!.push(w.wire.subarray(w.at, w.at + n))[0];
        w.at += n;
      }
    }
    for (const w of wires) if (w.got!.equals(w.body)) intact++;
  }
  t.equal(intact, 6, 'all six bodies intact');
});

/** The reader process: test/fixtures/frame-reader-target.js. */
interface Target {
  child: ChildProcess;
  ask(request: Record<string, unknown>): Promise<Measure>;
}

interface Measure {
  arrayBuffers: number;
  channels: number;
  pending: number[];
  envelopes: Array<{ kind: string; bytes?: number; sha?: string }>;
}

async function startTarget(t: Test, socketPath: string): Promise<Target> {
  const child = fork(join(FIXTURES, 'frame-reader-target.js'), [socketPath], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  let waiting: ((m: Measure) => void) | undefined;
  const listening = new Promise<void>((resolve) => {
    child.on('message', (m: Measure | { listening: true }) => {
      if ('listening' in m) return resolve();
      const w = waiting;
      waiting = undefined;
      w?.(m);
    });
  });
  await listening;
  return {
    child,
    ask: (request) => new Promise<Measure>((resolve) => {
      waiting = resolve;
      child.send(request);
    }),
  };
}

async function connect(t: Test, path: string): Promise<Socket> {
  const socket = createConnection(path);
  socket.on('error', () => {});
  t.teardown(() => socket.destroy());
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  return socket;
}

t.test('many hostile peers that announce 16 MiB and send one byte: the reader process holds a 64 KiB stage for each, not 16 MiB', async (t) => {
  const path = join(dir, 'hostile.sock');
  const target = await startTarget(t, path);
  const before = await target.ask({ op: 'measure' });
  const peers = 200;
  const sockets: Socket[] = [];
  for (let i = 0; i < peers; i++) sockets.push(await connect(t, path));
  // Half of them first send one whole 60 KiB message, so their next read is a sized read (≤ 80 KiB, socket-reads.ts).
  const warm = encodeEnvelope({ kind: 'reply', id: 1, result: { data: Buffer.alloc(60 * 1024, 9) } });
  for (const s of sockets.slice(0, peers / 2)) s.write(warm);
  const idle = await target.ask({ op: 'wait', channels: peers, pendingAtLeast: 0, envelopes: peers / 2 });
  t.equal(idle.envelopes.length, peers / 2, 'the warm messages were read');
  for (const s of sockets) s.write(Buffer.concat([header(16 * MiB), Buffer.of(0x83)]));
  const attacked = await target.ask({ op: 'wait', channels: peers, pendingAtLeast: 1 });
  // Positive control: every hostile byte reached its reader, which holds it as the start of a 16 MiB body.
  t.same(attacked.pending, new Array<number>(peers).fill(1), 'each reader holds the one body byte its peer sent');
  const perPeer = (attacked.arrayBuffers - before.arrayBuffers) / peers;
  // Before round fourteen: 16,777,216 bytes per peer (audit14 measured 16,777,200).
  t.ok(perPeer <= STAGE_FLOOR_BYTES + 4096, `ArrayBuffer memory per hostile peer: ${Math.round(perPeer)} bytes (bound ${STAGE_FLOOR_BYTES + 4096})`);

  // Positive control of the measure: peers that send a 16th of their 16 MiB bodies are given the whole body each.
  const honest: Socket[] = [];
  for (let i = 0; i < 4; i++) honest.push(await connect(t, path));
  for (const s of honest) s.write(Buffer.concat([header(16 * MiB), Buffer.alloc(MiB, 5)]));
  const grown = await target.ask({ op: 'wait', channels: peers + honest.length, pendingAtLeast: 1, pendingTotal: peers + honest.length * MiB });
  t.same(grown.pending.slice(peers), new Array<number>(honest.length).fill(MiB), 'each of them holds the MiB it sent');
  const perHonest = (grown.arrayBuffers - attacked.arrayBuffers) / honest.length;
  t.ok(perHonest >= 16 * MiB - STAGE_FLOOR_BYTES, `the same measure sees a whole 16 MiB body for each of them (${Math.round(perHonest)} bytes)`);
});

t.test('16 MiB, 1 MiB and 100 KB messages written in random pieces arrive whole through the stages', async (t) => {
  const path = join(dir, 'intact.sock');
  const target = await startTarget(t, path);
  const socket = await connect(t, path);
  const random = prng(1414);
  const sent: Array<{ kind: string; bytes: number; sha: string }> = [];
  const wires: Buffer[] = [];
  for (const [i, n] of [16 * MiB - 64, MiB, 100_000, 16 * MiB - 64, 70_000].entries()) {
    const data = Buffer.allocUnsafe(n);
    for (let j = 0; j < n; j += 4) data.writeUInt32LE((j * 2654435761 + i) >>> 0, j);
    sent.push({ kind: 'reply', bytes: n, sha: createHash('sha256').update(data).digest('hex') });
    wires.push(encodeEnvelope({ kind: 'reply', id: i + 1, result: { data } }));
  }
  const wire = Buffer.concat(wires);
  for (let at = 0; at < wire.length;) {
    const n = Math.min(wire.length - at, 1 + Math.floor(random() * random() * 600_000));
    if (!socket.write(wire.subarray(at, at + n))) await new Promise((resolve) => socket.once('drain', resolve));
    at += n;
  }
  const done = await target.ask({ op: 'wait', channels: 1, pendingAtLeast: 0, envelopes: sent.length });
  t.same(done.envelopes, sent, 'every message, byte for byte');
  t.same(done.pending, [0]);
});
