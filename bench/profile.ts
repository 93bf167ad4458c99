/**
 * Profiles one workload on both sides: this process (the broker/client side)
 * with the inspector's CPU profiler, and the echo helper with `--cpu-prof`.
 * Prints the functions with the most self time on each side and keeps the
 * .cpuprofile files (open them in Chrome DevTools or speedscope).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/profile.js <workload> [dir]
 *   workloads: calls (pipelined echo), rtt (sequential echo), events,
 *              bytes-64k, bytes-1m, bytes-16m, launch (cold launches),
 *              stream-down-1m, stream-up-1m (a stream of 1 MiB chunks, 256 MiB;
 *              bench/fixtures/streams-service.js), calls-down-1m, calls-up-1m
 *              (the same chunks as sequential plain calls)
 * @module
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join, resolve } from 'node:path';
import { randomFillSync } from 'node:crypto';
import { CONFIG } from './common/config.js';
import { latency, pipelined } from './common/measure.js';
import { BENCH_LAUNCH, MESSAGE, bulkheadTransport } from './common/transports.js';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

/** Self time per function (ms) and per file, from a .cpuprofile. */
export function topSelf(profile: CpuProfile, limit = 22): string[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const byFn = new Map<string, number>();
  const byFile = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const file = f.url === '' ? `(${f.functionName || 'native'})` : f.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, 'npm:').replace(/^.*\/dist\//, 'dist/');
    const key = `${f.functionName || '(anonymous)'}  ${file}${f.url === '' ? '' : `:${f.lineNumber + 1}`}`;
    byFn.set(key, (byFn.get(key) ?? 0) + us);
    const fileKey = file.startsWith('npm:') ? file.split('/').slice(0, file.startsWith('npm:@') ? 2 : 1).join('/') : file;
    byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + us);
    total += us;
  }
  const pct = (us: number) => `${((us / total) * 100).toFixed(1).padStart(5)}%`;
  const lines = [`total ${(total / 1000).toFixed(0)} ms sampled`, '-- by function (self):'];
  for (const [k, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, limit)) lines.push(`${pct(us)}  ${k}`);
  lines.push('-- by file / package (self):');
  for (const [k, us] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 12)) lines.push(`${pct(us)}  ${k}`);
  return lines;
}

/** Sampled time outside the idle node (µs). */
function busyMicros(profile: CpuProfile): number {
  const idle = new Set(profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
  let us = 0;
  for (let i = 0; i < profile.samples.length; i++) if (!idle.has(profile.samples[i]!)) us += profile.timeDeltas[i] ?? 0;
  return us;
}

async function main(): Promise<void> {
  const workload = process.argv[2] ?? 'calls';
  const dir = resolve(process.argv[3] ?? `/tmp/bulkhead-profile-${workload}`);
  mkdirSync(dir, { recursive: true });
  const nodeArgs = ['--cpu-prof', `--cpu-prof-dir=${dir}`];
  const t = await bulkheadTransport('bulkhead', { nodeArgs });
  // The streams helper, on the same broker: chunk streams against the same chunks as plain calls.
  t.broker.register({ name: 'streams', entry: './streams-service.js', protocol: 'com.bench.streams', launch: { ...BENCH_LAUNCH }, nodeArgs });
  const streams = t.broker.connect('streams');
  const MiB = 1024 * 1024;
  const CHUNKS = 256;
  const chunk = Buffer.alloc(MiB, 3);
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  const bytes = (size: number, n: number) => async () => {
    const data = randomFillSync(Buffer.alloc(size));
    for (let i = 0; i < n; i++) await t.call('bytes', { data });
  };
  const workloads: Record<string, () => Promise<unknown>> = {
    calls: () => pipelined(t, 200_000),
    rtt: () => latency(t, 30_000),
    events: async () => {
      for (let i = 0; i < 5; i++) await t.call('burst', { count: 50_000 });
    },
    'bytes-64k': bytes(64 * 1024, 3000),
    'bytes-1m': bytes(1024 * 1024, 300),
    'bytes-16m': bytes(16 * 1024 * 1024, 30),
    'stream-down-1m': async () => {
      let n = 0;
      for await (const c of streams.stream('chunks', { count: CHUNKS, size: MiB })) n += (c as Uint8Array).length;
      if (n !== CHUNKS * MiB) throw new Error(`stream gave ${n} bytes`);
    },
    'stream-up-1m': async () => {
      const total = await streams.stream('upload', {}, { input: (function* () { for (let c = 0; c < CHUNKS; c++) yield chunk; })() }).result;
      if (total !== CHUNKS * MiB) throw new Error(`upload counted ${String(total)} bytes`);
    },
    'calls-down-1m': async () => {
      for (let c = 0; c < CHUNKS; c++) await streams.call('chunk', { size: MiB });
    },
    'calls-up-1m': async () => {
      for (let c = 0; c < CHUNKS; c++) await streams.call('put', { data: chunk });
    },
    launch: async () => {
      for (let i = 0; i < 15; i++) {
        await t.broker.stop('echo');
        await t.call('echo', MESSAGE);
      }
    },
  };
  const run = workloads[workload];
  if (run === undefined) throw new Error(`unknown workload ${workload}; known: ${Object.keys(workloads).join(', ')}`);
  await run(); // warm-up
  await session.post('Profiler.start');
  const start = performance.now();
  await run();
  const ms = performance.now() - start;
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(join(dir, 'broker.cpuprofile'), JSON.stringify(profile));
  session.disconnect();
  await t.close(); // helpers write their profiles as they exit
  console.log(`${workload}: ${ms.toFixed(0)} ms measured (window ${CONFIG.window}); profiles in ${dir}`);
  console.log('\n=== broker / client side');
  for (const line of topSelf(profile as unknown as CpuProfile)) console.log(line);
  const helpers = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && f !== 'broker.cpuprofile');
  // The busiest helper profile is the one that did the measured work (launch: the last ones are alike).
  const loaded = helpers.map((f) => ({ f, p: JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile })).sort((a, b) => busyMicros(b.p) - busyMicros(a.p));
  if (loaded[0] !== undefined) {
    console.log(`\n=== helper side (${loaded[0].f}, ${helpers.length} helper profile(s))`);
    for (const line of topSelf(loaded[0].p)) console.log(line);
  }
}

await main();
