// node bench/ab/launch-overlap.mjs N PROFILE: does a sandbox's teardown slow the next launch? The bench's probe
// (bench/fixtures/first-byte.js, planned as launch.ts plans it) launched N times per variant, interleaved:
// "overlap": the previous probe is told to exit and its sandbox cleaned up (pasta, cgroup, scratch) while the next
// one starts (what launch.ts's cold launch did before broker.stop() awaited the cleanup); "after": the next starts
// once the cleanup settled; "apart": 300 ms after that. Prints spawn → first byte (ms). Run after `npm run build`.
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
const root = new URL('../../', import.meta.url).pathname;
const FIX = root + 'bench/fixtures/';
const { planLaunch } = await import(root + 'dist/lib/sandbox/index.js');
const { runtimeReadPaths } = await import(root + 'dist/lib/broker/package-paths.js');
const doc = (p) => JSON.parse(readFileSync(`${root}sandbox-profiles/${p}.json`, 'utf8'));
const dir = FIX.replace(/\/$/, '');
const [n, p] = process.argv.slice(2);
async function start(p) {
  const plan = await planLaunch({ service: `probe-${p}`, entry: `${FIX}first-byte.js`, serviceDir: dir, implicitReads: [...runtimeReadPaths(), `${FIX}protocols/com.bench.echo.json`], nodePath: process.execPath, nodeArgs: [], env: {}, profile: p === 'none' ? undefined : { name: p, document: doc(p) }, paths: { root: dir, data: dir } });
  const t0 = performance.now();
  const child = spawn(plan.command, plan.args, { env: plan.env, cwd: plan.cwd, stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'ignore', ...(plan.inheritFds ?? [])], detached: true });
  const fd3 = child.stdio[3]; fd3.on('error', () => {});
  const first = new Promise((r) => fd3.once('data', () => r(performance.now() - t0)));
  const exited = new Promise((r) => child.once('exit', r));
  // stop as the broker does: the helper exits, then its sandbox is cleaned up
  const stop = async () => { fd3.end(); await exited; await plan.cleanup(); };
  return { first, stop };
}
const res = { overlap: [], apart: [], after: [] };
let a = await start(p); await a.first;
for (let i = 0; i < Number(n); i++) for (const v of ['overlap', 'apart', 'after'].map((_, k, xs) => xs[(k + i) % 3])) {
  let b;
  if (v === 'apart') { await a.stop(); await new Promise((r) => setTimeout(r, 300)); b = await start(p); }
  else if (v === 'after') { await a.stop(); b = await start(p); }
  else { const s = a.stop(); b = await start(p); await s; }
  res[v].push(await b.first);
  a = b;
  await new Promise((r) => setTimeout(r, 50));
}
await a.stop();
const q = (a, f) => [...a].sort((x, y) => x - y)[Math.floor(a.length * f)];
for (const [v, xs] of Object.entries(res)) console.log(process.version, p, v.padEnd(8), 'spawn→first byte: min', q(xs, 0).toFixed(1), 'p25', q(xs, 0.25).toFixed(1), 'median', q(xs, 0.5).toFixed(1));
