// Per-step trace of a prewarm launch and a relaunch after SIGKILL, both processes on CLOCK_MONOTONIC
// (process.hrtime), with the helper's CPU time (process.cpuUsage) between its first read and its reply.
// Needs a dist instrumented by trace-instrument.sh (temporary trace points; rebuild to remove them).
// usage: bench/ab/prewarm/trace-instrument.sh WORKTREE && WT=WORKTREE N=15 node trace.mjs   (NODEARGS=..., PROFILE=...)
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
const WT = process.env.WT ?? '/work/wt/prewarm';
const { Broker, isBulkheadError } = await import(`${WT}/dist/lib/index.js`);
const FIX = `${WT}/bench/fixtures/`;
globalThis.__T ??= (l) => appendFileSync('/tmp/bulkhead-prewarm-trace.log', `${process.pid} ${process.hrtime.bigint()} ${l}\n`);
const N = Number(process.env.N ?? 15);
const MSG = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };
const broker = new Broker({ root: FIX });
const extra = { ...(process.env.PROFILE ? { sandbox: process.env.PROFILE } : {}), ...(process.env.NODEARGS ? { nodeArgs: process.env.NODEARGS.split(' ') } : {}) };
broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.bench.echo', launch: { throttleMs: 0, maxRestarts: 10000, prewarm: true }, ...extra });
const c = broker.connect('echo');
await c.call('echo', MSG);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function spare() { while (broker.status('echo').sparePid === null) await sleep(2); await sleep(30); }
const launch = [], relaunch = [];
const traces = { launch: [], relaunch: [] };
const cpus = {};
function grab(kind) {
  const lines = readFileSync('/tmp/bulkhead-prewarm-trace.log', 'utf8').trim().split('\n').map((l) => { const [pid, t, ...rest] = l.split(' '); return { pid, t: BigInt(t), l: rest.join(' ') }; });
  const t0 = lines[0].t;
  traces[kind].push(lines.map((x) => [x.l.replace(/ @cpu=\d+/, ''), Number(x.t - t0) / 1e6]));
  const cpu = (re) => { const x = lines.find((y) => re.test(y.l)); return x === undefined ? NaN : Number(/@cpu=(\d+)/.exec(x.l)?.[1]); };
  (cpus[kind] ??= []).push(cpu(/^H reply/) - cpu(/^H read/));
  for (const [a, b] of [[/^H read/, /^H bhello/], [/^H bhello/, /^H call/], [/^H call/, /^H reply/]]) ((cpus[kind + ' ' + a.source.slice(3) + '→' + b.source.slice(3)]) ??= []).push(cpu(b) - cpu(a));
}
for (let i = 0; i < N; i++) {
  await broker.stop('echo'); await spare();
  writeFileSync('/tmp/bulkhead-prewarm-trace.log', '');
  __T('M call'); const s = performance.now();
  await c.call('echo', MSG);
  launch.push(performance.now() - s); __T('M reply');
  grab('launch');
  await spare();
  const pid = broker.status('echo').pid;
  writeFileSync('/tmp/bulkhead-prewarm-trace.log', '');
  __T('M kill'); const k = performance.now();
  broker.kill('echo', 'SIGKILL');
  for (;;) {
    try { await c.call('echo', MSG); if (broker.status('echo').pid !== pid) break; __T('M stale'); }
    catch (e) { if (!isBulkheadError(e) || e.code !== 'ERR_INTERRUPTED') throw e; __T('M interrupted'); }
  }
  relaunch.push(performance.now() - k); __T('M reply');
  grab('relaunch');
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
console.log(`node ${process.version} load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log(`launch p50 ${med(launch).toFixed(2)} ms [${Math.min(...launch).toFixed(2)}–${Math.max(...launch).toFixed(2)}]`);
console.log(`relaunch p50 ${med(relaunch).toFixed(2)} ms [${Math.min(...relaunch).toFixed(2)}–${Math.max(...relaunch).toFixed(2)}]`);
console.log(`helper CPU µs from its first read to its reply: launch p50 ${med(cpus.launch)} relaunch p50 ${med(cpus.relaunch)} (all: ${cpus.launch.join(' ')})`);
for (const [k, v] of Object.entries(cpus)) console.log(`  cpu µs ${k}: p50 ${med(v)}`);
for (const kind of ['launch', 'relaunch']) {
  // median time of each label's first occurrence
  const labels = new Map();
  for (const tr of traces[kind]) { const seen = new Set(); for (const [l, t] of tr) { if (seen.has(l)) continue; seen.add(l); if (!labels.has(l)) labels.set(l, []); labels.get(l).push(t); } }
  console.log(`-- ${kind}: median ms since first trace point (n)`);
  for (const [l, ts] of [...labels].sort((a, b) => med(a[1]) - med(b[1]))) console.log(`  ${med(ts).toFixed(3).padStart(8)}  ${l} (${ts.length})`);
}
if (process.env.DUMP) for (const tr of traces.relaunch.slice(0, 2)) console.log(tr.map(([l, t]) => `${t.toFixed(3)} ${l}`).join('\n'), '\n');
await broker.close();
