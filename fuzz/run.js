#!/usr/bin/env node
// Long fuzz runs of the wire layer (issue 7): `npm run build && node fuzz/run.js --cases 1000000`.
//
// Cases come from test/fixtures/hardening/fuzz-gen.js (seeded: random, valid-but-hostile,
// mutated, adversarial, multi-frame streams). Each case's bytes are cut into random
// chunks and fed to a FrameDecoder + decodeEnvelope exactly as FramedChannel does, and
// checked against an independent stream-order reading. A failure prints the seed and
// index; `--seed S --start I --cases 1` replays it.
//
// Invariants per case:
//   - only BulkheadErrors with code ERR_BAD_FRAME or ERR_FRAME_TOO_LARGE are thrown;
//   - the chunked verdict equals the stream-order one (what a peer's bytes cause never
//     depends on how reads split them);
//   - every decoded value is plain (ordinary prototypes, no own __proto__ key) and
//     Object.prototype is never touched;
//   - an accepted envelope re-encodes and decodes to the same value, -0 read as 0 (--no-roundtrip to skip);
//   - no case takes longer than --slow-ms (default 1000) to decode.
// Memory: heapUsed is sampled after GC every --report-every cases; the run fails if it
// grows by more than --max-heap-growth-mib (default 64) over the run.
//
// --channel runs each case through a real FramedChannel over a Unix socket instead
// (what test/hardening-fuzz.test.ts does for 50k cases); slower, same checks.
// --rpc runs each case through the in-memory tier (test/fuzz-memory.ts, as
// test/hardening-fuzz-memory.test.ts does): against an RpcClient with a call pending and
// against an RpcServer, checking the predicted close, no hung call, nothing foreign.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

const here = new URL('.', import.meta.url);
const lib = (path) => new URL(`../dist/lib/${path}`, here).href;
let wire;
try {
  wire = {
    ...(await import(lib('wire/frame-decoder.js'))),
    ...(await import(lib('wire/envelope.js'))),
    ...(await import(lib('wire/framed-channel.js'))),
  };
} catch (err) {
  console.error(`fuzz/run.js needs the compiled library: run \`npm run build\` first (${err.message}).`);
  process.exit(2);
}
const gen = await import(new URL('../test/fixtures/hardening/fuzz-gen.js', here).href);

const { values: args } = parseArgs({
  options: {
    cases: { type: 'string', default: '100000' },
    seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
    start: { type: 'string', default: '0' },
    family: { type: 'string' },
    name: { type: 'string' },
    'max-bulk': { type: 'string' },
    'report-every': { type: 'string', default: '50000' },
    'slow-ms': { type: 'string', default: '1000' },
    'max-heap-growth-mib': { type: 'string', default: '64' },
    'no-roundtrip': { type: 'boolean', default: false },
    channel: { type: 'boolean', default: false },
    rpc: { type: 'boolean', default: false },
    concurrency: { type: 'string', default: '32' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log('node fuzz/run.js [--cases N] [--seed S] [--start I] [--family random|valid|mutated|adversarial|stream] [--name <adversarial name>] [--max-bulk BYTES] [--channel | --rpc] [--no-roundtrip]');
  process.exit(0);
}
const CASES = Number(args.cases);
const SEED = Number(args.seed);
const START = Number(args.start);
const REPORT_EVERY = Number(args['report-every']);
const SLOW_MS = Number(args['slow-ms']);
const MAX = wire.DEFAULT_MAX_FRAME_BYTES;
const options = {
  ...(args.family === undefined ? {} : { family: args.family }),
  ...(args.name === undefined ? {} : { name: args.name, family: 'adversarial' }),
  ...(args['max-bulk'] === undefined ? {} : { maxBulkBytes: Number(args['max-bulk']) }),
};

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
const heapNow = () => {
  gc();
  return process.memoryUsage().heapUsed;
};

// ---------------------------------------------------------------- checks


/** Deep equality of decoded values; -0 and 0 count as equal (cbor-x writes -0 as the integer 0, as JSON would). */
function same(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return a === b || (Number.isNaN(a) && Number.isNaN(b));
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return a === b;
  if (a instanceof Uint8Array || b instanceof Uint8Array) return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.compare(a, b) === 0;
  if (Array.isArray(a) !== Array.isArray(b) || Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k, i) => k === kb[i] && same(a[k], b[k]));
}

const polluted = () => Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted') || ({}).polluted !== undefined;

const EXPECTED_CODES = new Set(['ERR_BAD_FRAME', 'ERR_FRAME_TOO_LARGE']);

/** Stream-order reading, independent of chunking. */
function streamOracle(bytes) {
  const kinds = [];
  let pos = 0;
  while (bytes.length - pos >= 4) {
    const length = bytes.readUInt32BE(pos);
    if (length > MAX) return { kinds, code: 'ERR_FRAME_TOO_LARGE' };
    if (bytes.length - pos - 4 < length) break;
    try {
      kinds.push(wire.decodeEnvelope(bytes.subarray(pos + 4, pos + 4 + length)).kind);
    } catch (err) {
      return { kinds, code: err.code ?? `non-coded ${err.name}: ${err.message}` };
    }
    pos += 4 + length;
  }
  return { kinds, code: undefined };
}

/** The envelopes the stream-order reading accepts, in order (for the --rpc predictions). */
function envelopesOf(bytes) {
  const out = [];
  let pos = 0;
  while (bytes.length - pos >= 4) {
    const length = bytes.readUInt32BE(pos);
    if (length > MAX || bytes.length - pos - 4 < length) break;
    try {
      out.push(wire.decodeEnvelope(bytes.subarray(pos + 4, pos + 4 + length)));
    } catch {
      break;
    }
    pos += 4 + length;
  }
  return out;
}

/** What FramedChannel.onData does with these chunks; also checks each accepted envelope. */
function chunked(chunks, problems, roundtrip) {
  const decoder = new wire.FrameDecoder(MAX);
  const kinds = [];
  for (const chunk of chunks) {
    let bodies;
    try {
      bodies = decoder.push(chunk);
    } catch (err) {
      return { kinds, code: err.code ?? `non-coded ${err.name}: ${err.message}` };
    }
    for (const body of bodies) {
      let envelope;
      try {
        envelope = wire.decodeEnvelope(body);
      } catch (err) {
        return { kinds, code: err.code ?? `non-coded ${err.name}: ${err.message}` };
      }
      kinds.push(envelope.kind);
      const bad = gen.foreign(envelope);
      if (bad !== undefined) problems.push(`decoded ${bad}`);
      if (roundtrip) {
        try {
          const frame = wire.encodeEnvelope(envelope);
          const again = wire.decodeEnvelope(frame.subarray(4));
          if (!same(again, envelope)) problems.push(`${envelope.kind} does not survive re-encoding`);
        } catch (err) {
          problems.push(`${envelope.kind} cannot be re-encoded: ${err.code ?? err.message}`);
        }
      }
    }
    // Frames before an oversize header in the same chunk are returned; the error waits here.
    if (decoder.error !== undefined) return { kinds, code: decoder.error.code };
  }
  return { kinds, code: undefined };
}

function split(bytes, seed) {
  const r = gen.rng(seed);
  const n = r.int(4);
  const cuts = [0, ...Array.from({ length: n }, () => r.int(bytes.length + 1)).sort((a, b) => a - b), bytes.length];
  const chunks = [];
  for (let i = 1; i < cuts.length; i++) if (cuts[i] > cuts[i - 1]) chunks.push(bytes.subarray(cuts[i - 1], cuts[i]));
  return chunks;
}

// ---------------------------------------------------------------- run

const tally = new Map();
let splitCases = 0;
let failures = 0;
let slowest = { ms: 0, index: -1, name: '' };
const startHeap = heapNow();
let peakHeap = startHeap;
const started = performance.now();

function report(index, problems, c) {
  failures++;
  console.error(`FAIL seed ${SEED} index ${index} (${c.family}: ${c.name}): ${problems.join('; ')}`);
  console.error(`  replay: node fuzz/run.js --seed ${SEED} --start ${index} --cases 1${args.channel ? ' --channel' : args.rpc ? ' --rpc' : ''}`);
  console.error(`  bytes (first 256): ${c.bytes.subarray(0, 256).toString('hex')}`);
}

function check(index, c, verdict, chunks, extraProblems) {
  const problems = [...extraProblems];
  const stream = streamOracle(c.bytes);
  if (verdict.code !== undefined && !EXPECTED_CODES.has(verdict.code)) problems.push(`threw ${verdict.code}`);
  // What a peer's bytes cause must not depend on how reads split them.
  if (verdict.code !== stream.code || verdict.kinds.join() !== stream.kinds.join()) {
    problems.push(`chunked (${chunks.length} chunks) gave ${verdict.code ?? 'clean'} after [${verdict.kinds}], stream order ${stream.code ?? 'clean'} after [${stream.kinds}]`);
  }
  if (chunks.length > 1) splitCases++;
  if (polluted()) problems.push('Object.prototype was polluted');
  const key = `${c.family} → ${verdict.code ?? 'accepted'}`;
  tally.set(key, (tally.get(key) ?? 0) + 1);
  if (problems.length > 0) report(index, problems, c);
}

function progress(done, final = false) {
  const heap = heapNow();
  peakHeap = Math.max(peakHeap, heap);
  const seconds = (performance.now() - started) / 1000;
  console.log(`${final ? 'done' : 'progress'}: ${done} cases in ${seconds.toFixed(1)} s (${Math.round(done / seconds)}/s), ${failures} failures, heapUsed ${(heap / 2 ** 20).toFixed(1)} MiB (start ${(startHeap / 2 ** 20).toFixed(1)}), slowest ${slowest.ms.toFixed(1)} ms (index ${slowest.index}: ${slowest.name})`);
}

if (args.rpc) {
  // The in-memory tier (test/memory-pair.ts): each case against an RpcClient with a call
  // pending (a hostile service) and against an RpcServer (a hostile client).
  let memory;
  try {
    memory = await import(new URL('../dist/test/fuzz-memory.js', here).href);
  } catch (err) {
    console.error(`fuzz/run.js --rpc needs the compiled tests: run \`npm run build\` first (${err.message}).`);
    process.exit(2);
  }
  for (let k = 0; k < CASES; k++) {
    const index = START + k;
    const c = gen.generateCase(SEED, index, options);
    const stream = streamOracle(c.bytes);
    const envelopes = envelopesOf(c.bytes);
    const problems = [];
    const t0 = performance.now();
    for (const [side, run, predict] of [['client', memory.againstClient, memory.clientPrediction], ['server', memory.againstServer, memory.serverPrediction]]) {
      const out = await run(index, c.bytes);
      const expected = predict(envelopes, stream.code);
      if (out.closes !== 1) problems.push(`${side}: closed ${out.closes} times`);
      if (out.code !== expected) problems.push(`${side}: closed with ${out.code ?? 'a clean end'}, predicted ${expected ?? 'a clean end'}`);
      if (out.call === 'hung' || out.call.startsWith('uncoded')) problems.push(`${side}: the pending call ${out.call}`);
      if (out.foreign !== undefined) problems.push(`${side}: handed the app ${out.foreign}`);
      if (out.handlerRuns !== 0) problems.push(`${side}: a handler ran without a matching hello`);
      const key = `${side}: ${c.family} → ${out.code ?? 'clean end'}`;
      tally.set(key, (tally.get(key) ?? 0) + 1);
    }
    const ms = performance.now() - t0;
    if (ms > slowest.ms) slowest = { ms, index, name: c.name };
    if (ms > SLOW_MS) problems.push(`took ${ms.toFixed(0)} ms`);
    if (polluted()) problems.push('Object.prototype was polluted');
    if (problems.length > 0) report(index, problems, c);
    if ((k + 1) % REPORT_EVERY === 0) progress(k + 1);
  }
} else if (!args.channel) {
  for (let k = 0; k < CASES; k++) {
    const index = START + k;
    const c = gen.generateCase(SEED, index, options);
    const chunks = split(c.bytes, index ^ 0x5bd1e995);
    const problems = [];
    const t0 = performance.now();
    const verdict = chunked(chunks, problems, !args['no-roundtrip']);
    const ms = performance.now() - t0;
    if (ms > slowest.ms) slowest = { ms, index, name: c.name };
    if (ms > SLOW_MS) problems.push(`took ${ms.toFixed(0)} ms`);
    check(index, c, verdict, chunks, problems);
    if ((k + 1) % REPORT_EVERY === 0) progress(k + 1);
  }
} else {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-fuzz-'));
  const path = join(dir, 's');
  const cases = new Map();
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let head = '';
    const onId = (data) => {
      head += data.toString('latin1');
      const nl = head.indexOf('\n');
      if (nl < 0) return;
      socket.off('data', onId);
      socket.resume();
      const index = Number(head.slice(0, nl));
      for (const chunk of split(cases.get(index), index ^ 0x5bd1e995)) socket.write(chunk);
      socket.end();
    };
    socket.on('data', onId);
  });
  await new Promise((resolve) => server.listen(path, resolve));
  const runOne = (index, bytes) => new Promise((resolve) => {
    cases.set(index, bytes);
    const socket = net.connect(path);
    const chunks = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    const channel = new wire.FramedChannel(socket, { maxFrameBytes: MAX });
    const kinds = [];
    const problems = [];
    let closes = 0;
    channel.attach({
      envelope: (e) => {
        kinds.push(e.kind);
        const bad = gen.foreign(e);
        if (bad !== undefined) problems.push(`delivered ${bad}`);
      },
      closed: (error) => {
        if (++closes > 1) {
          problems.push('closed twice');
          return;
        }
        setImmediate(() => {
          cases.delete(index);
          const mirror = chunked(chunks, [], false);
          if (mirror.code !== error?.code || mirror.kinds.join() !== kinds.join()) problems.push(`channel gave ${error?.code ?? 'clean'} after [${kinds}], its chunks predict ${mirror.code ?? 'clean'} after [${mirror.kinds}]`);
          resolve({ verdict: { kinds, code: error?.code }, chunks, problems });
        });
      },
    });
    socket.write(`${index}\n`);
  });
  let next = 0;
  const worker = async () => {
    while (next < CASES) {
      const k = next++;
      const index = START + k;
      const c = gen.generateCase(SEED, index, options);
      const out = await runOne(index, c.bytes);
      check(index, c, out.verdict, out.chunks, out.problems);
      if ((k + 1) % REPORT_EVERY === 0) progress(k + 1);
    }
  };
  await Promise.all(Array.from({ length: Number(args.concurrency) }, worker));
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
}

progress(CASES, true);
const growth = (heapNow() - startHeap) / 2 ** 20;
console.log(`seed ${SEED}; outcomes ${JSON.stringify(Object.fromEntries([...tally].sort()))}`);
console.log(`${splitCases} cases were fed in more than one chunk`);
console.log(`heapUsed after GC grew ${growth.toFixed(1)} MiB (peak ${(peakHeap / 2 ** 20).toFixed(1)} MiB)`);
if (growth > Number(args['max-heap-growth-mib'])) {
  console.error(`FAIL heap grew ${growth.toFixed(1)} MiB, more than --max-heap-growth-mib ${args['max-heap-growth-mib']}`);
  failures++;
}
process.exitCode = failures > 0 ? 1 : 0;
