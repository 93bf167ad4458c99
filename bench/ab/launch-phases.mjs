// node bench/ab/launch-phases.mjs N PROFILE...: where a cold launch's wall time goes, beside the bench's probe under the same
// wrappers. Per profile and round: the probe (bench/fixtures/phase-first-byte.js, planned as launch.ts plans its probe), then a
// cold launch of bench/fixtures/phase-echo-service.js (the echo helper with marks). Clocks: the parent's and each node's
// performance.timeOrigin + now() (one CLOCK_MONOTONIC-based epoch per machine). Prints medians per phase (ms).
// Run from the repo root after `npm run build`.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
const root = new URL('../../', import.meta.url);
const FIX = new URL('bench/fixtures/', root).pathname;
const now = () => performance.timeOrigin + performance.now();
// The broker's spawn moment: child_process.spawn wrapped before the broker is loaded (its ESM import sees the synced export).
const cp = (await import('node:module')).createRequire(import.meta.url)('node:child_process');
let lastSpawn = 0;
const realSpawn = cp.spawn;
cp.spawn = (...a) => { if (JSON.stringify(a[1] ?? []).includes('phase-echo-service.js')) lastSpawn = now(); return realSpawn(...a); };
(await import('node:module')).syncBuiltinESMExports();
const { Broker } = await import(new URL('dist/lib/index.js', root).href);
const { planLaunch } = await import(new URL('dist/lib/sandbox/index.js', root).href);
const { runtimeReadPaths } = await import(new URL('dist/lib/broker/package-paths.js', root).href);
const { withParentDeathSignal } = await import(new URL('dist/lib/broker/parent-death.js', root).href);
const [n, ...profiles] = process.argv.slice(2);
const doc = (p) => JSON.parse(readFileSync(new URL(`sandbox-profiles/${p}.json`, root), 'utf8'));
async function probe(profile) {
  const dir = FIX.replace(/\/$/, '');
  const t0 = now();
  const plan = withParentDeathSignal(await planLaunch({ service: `probe-${profile}`, entry: `${FIX}phase-first-byte.js`, serviceDir: dir, implicitReads: [...runtimeReadPaths(), `${FIX}protocols/com.bench.echo.json`], nodePath: process.execPath, nodeArgs: [], env: {}, profile: profile === 'none' ? undefined : { name: profile, document: doc(profile) }, paths: { root: dir, data: dir } }));
  try {
    return await new Promise((resolve, reject) => {
      const spawned = now();
      const extra = plan.inheritFds ?? [];
      const child = spawn(plan.command, plan.args, { env: plan.env, cwd: plan.cwd, stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'ignore', ...extra], detached: true });
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      const fd3 = child.stdio[3];
      let r;
      fd3.once('data', (d) => { const got = now(); const m = JSON.parse(String(d)); r = { plan: spawned - t0, toNode: m.origin - spawned, boot: m.first, deliver: got - (m.origin + m.first), total: got - spawned }; fd3.end(); });
      fd3.on('error', () => {});
      child.once('exit', (c) => (r !== undefined ? resolve(r) : reject(new Error(`probe ${profile} exited ${c}: ${err}`))));
    });
  } finally { await plan.cleanup(); }
}
const broker = new Broker({ root: FIX, maxFrameBytes: 32 * 1024 * 1024 });
const conns = new Map();
for (const p of profiles) {
  broker.register({ name: `ph-${p}`, entry: './phase-echo-service.js', protocol: 'com.bench.echo', launch: { throttleMs: 0, maxRestarts: 10000 }, ...(p === 'none' ? {} : { sandbox: p }), ...(p === 'fs-reader' ? { sandboxPaths: { data: '.' } } : {}) });
  conns.set(p, broker.connect(`ph-${p}`));
}
const MSG = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };
for (const p of profiles) { await conns.get(p).call('echo', MSG); await probe(p); }
for (const [file, fn] of [['compile-cache.js', 'compileCacheWrites'], ['code-cache.js', 'codeCacheWrites']]) { try { await (await import(new URL(`dist/lib/broker/${file}`, root).href))[fn]?.(); } catch {} }
const res = new Map(profiles.map((p) => [p, { probe: [], cold: [] }]));
const load = [loadavg()[0]];
for (let r = 0; r < Number(n); r++) {
  for (const p of profiles.map((_, i) => profiles[(i + r) % profiles.length])) {
    // LAUNCH_ORDER=bench: probe, stop, cold at once (launch.ts's order: the stopped helper's teardown runs during the launch);
    // LAUNCH_WAIT=ms: then wait before the cold launch. Default: stop, probe, cold.
    if (process.env.LAUNCH_ORDER === 'bench') { res.get(p).probe.push(await probe(p)); await broker.stop(`ph-${p}`); }
    else { await broker.stop(`ph-${p}`); res.get(p).probe.push(await probe(p)); }
    if (process.env.LAUNCH_WAIT) await new Promise((r) => setTimeout(r, Number(process.env.LAUNCH_WAIT)));
    const t0 = now();
    const reply = await conns.get(p).call('echo', MSG);
    const got = now();
    const m = JSON.parse(reply.name);
    const cpu = (c) => (c.user + c.system) / 1000;
    res.get(p).cold.push({ toSpawn: lastSpawn - t0, wrappers: m.origin - lastSpawn, toNode: m.origin - t0, boot: m.first, import: m.imported - m.first, serve: m.served - m.imported, toHandler: m.handler - m.served, deliver: got - (m.origin + m.handler), total: got - t0, cpuImport: cpu(m.cpuImported), cpuServe: cpu(m.cpuServed) - cpu(m.cpuImported), cpuHandler: cpu(m.cpuHandler) - cpu(m.cpuServed) });
  }
}
load.push(loadavg()[0]);
await broker.close();
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const row = (rs) => Object.keys(rs[0]).map((k) => `${k} ${med(rs.map((x) => x[k])).toFixed(1)}`).join('  ');
console.log(`node ${process.version}, ${n} rounds, load ${load.map((x) => x.toFixed(1)).join('→')}`);
for (const [p, { probe: pr, cold }] of res) {
  console.log(`${p}\n  probe: ${row(pr)}\n  cold:  ${row(cold)}\n  over (medians of totals): ${(med(cold.map((x) => x.total)) - med(pr.map((x) => x.total))).toFixed(1)}`);
}
