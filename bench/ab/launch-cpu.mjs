// node bench/ab/launch-cpu.mjs N PROFILE...: where a cold launch's cost goes beyond the bench's probe, in CPU (robust on a loaded
// machine) and wall, paired launch by launch. Per profile and round: the helper stopped, then the probe (bench/fixtures/first-byte.js,
// planned by planLaunch exactly as bench/scenarios/launch.ts plans it: the same wrappers) and a cold launch of the bench echo helper,
// back to back, the order alternating. Per launch: wall (spawn → first byte for the probe, call → reply for the helper), node's CPU up
// to that moment (all its threads, /proc/PID/task/*/schedstat) and its main thread's time waiting for a CPU, and this process's CPU over the launch (the broker's side: planning,
// spawn, pasta's attach, the call). Prints medians and the median of the paired differences. Run from the repo root after a build;
// LAUNCH_ENTRY=./other-fixture.js times another helper; LAUNCH_NODE_ARGS='--flag ...' gives the helper (not the probe) node flags.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
const root = new URL('../../', import.meta.url);
const FIX = new URL('bench/fixtures/', root).pathname;
const { Broker } = await import(new URL('dist/lib/index.js', root).href);
const { planLaunch } = await import(new URL('dist/lib/sandbox/index.js', root).href);
const { runtimeReadPaths } = await import(new URL('dist/lib/broker/package-paths.js', root).href);
const [n, ...profiles] = process.argv.slice(2);
const doc = (p) => JSON.parse(readFileSync(new URL(`sandbox-profiles/${p}.json`, root), 'utf8'));
const kids = (p) => { try { return readdirSync(`/proc/${p}/task`).flatMap((t) => readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)); } catch { return []; } };
const deepest = (pid) => { let f = pid; for (let k = kids(f); k.length > 0; k = kids(f)) f = k[k.length - 1]; return f; };
// node's CPU (all threads) and the time its main thread waited for a CPU (run queue; schedstat's second field).
const cpuMs = (pid) => { let ns = 0; for (const t of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]); return ns / 1e6; };
const queuedMs = (pid) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e6;
const nodeStats = (pid) => { const node = deepest(pid); return { nodeCpu: cpuMs(node), nodeQueued: queuedMs(node) }; };
const self = () => { const c = process.cpuUsage(); return (c.user + c.system) / 1000; };
async function probe(profile) {
  const dir = FIX.replace(/\/$/, '');
  const c0 = self();
  const plan = await planLaunch({ service: `probe-${profile}`, entry: `${FIX}first-byte.js`, serviceDir: dir, implicitReads: [...runtimeReadPaths(), `${FIX}protocols/com.bench.echo.json`], nodePath: process.execPath, nodeArgs: [], env: {}, profile: profile === 'none' ? undefined : { name: profile, document: doc(profile) }, paths: { root: dir, data: dir } });
  const planCpu = self() - c0;
  try {
    return await new Promise((resolve, reject) => {
      const c1 = self();
      const start = performance.now();
      const extra = plan.inheritFds ?? [];
      const child = spawn(plan.command, plan.args, { env: plan.env, cwd: plan.cwd, stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'ignore', ...extra], detached: true });
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      const fd3 = child.stdio[3];
      let r;
      fd3.once('data', () => { const ms = performance.now() - start; r = { ms, ...nodeStats(child.pid), brokerCpu: self() - c1, planCpu }; fd3.end(); });
      fd3.on('error', () => {});
      child.once('exit', (c) => (r !== undefined ? resolve(r) : reject(new Error(`probe ${profile} exited ${c}: ${err}`))));
    });
  } finally { await plan.cleanup(); }
}
const broker = new Broker({ root: FIX, maxFrameBytes: 32 * 1024 * 1024 });
const conns = new Map();
for (const p of profiles) {
  broker.register({ name: `cpu-${p}`, entry: process.env.LAUNCH_ENTRY ?? './echo-service.js', protocol: 'com.bench.echo', launch: { throttleMs: 0, maxRestarts: 10000 }, ...(process.env.LAUNCH_NODE_ARGS ? { nodeArgs: process.env.LAUNCH_NODE_ARGS.split(' ') } : {}), ...(p === 'none' ? {} : { sandbox: p }), ...(p === 'fs-reader' ? { sandboxPaths: { data: '.' } } : {}) });
  conns.set(p, broker.connect(`cpu-${p}`));
}
const MSG = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };
for (const p of profiles) { await conns.get(p).call('echo', MSG); await probe(p); }
for (const [file, fn] of [['compile-cache.js', 'compileCacheWrites'], ['code-cache.js', 'codeCacheWrites']]) { try { await (await import(new URL(`dist/lib/broker/${file}`, root).href))[fn]?.(); } catch {} }
const res = new Map(profiles.map((p) => [p, { probe: [], cold: [] }]));
const load = [loadavg()[0]];
for (let r = 0; r < Number(n); r++) {
  for (const [i, p] of profiles.map((_, i) => [i, profiles[(i + r) % profiles.length]])) {
    await broker.stop(`cpu-${p}`);
    const cold = async () => {
      const c0 = self();
      const t0 = performance.now();
      await conns.get(p).call('echo', MSG);
      const ms = performance.now() - t0;
      const brokerCpu = self() - c0;
      res.get(p).cold.push({ ms, ...nodeStats(broker.status(`cpu-${p}`).pid), brokerCpu });
    };
    if ((r + i) % 2 === 0) { res.get(p).probe.push(await probe(p)); await cold(); } else { await cold(); res.get(p).probe.push(await probe(p)); }
  }
}
load.push(loadavg()[0]);
await broker.close();
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
console.log(`node ${process.version}, ${n} pairs per profile, load ${load.map((x) => x.toFixed(1)).join('→')}`);
for (const [p, { probe: pr, cold }] of res) {
  const d = (k) => med(cold.map((c, i) => c[k] - pr[i][k])).toFixed(1);
  const m = (xs, k) => med(xs.map((x) => x[k])).toFixed(1);
  console.log(`${p.padEnd(15)} wall ${m(cold, 'ms')} vs ${m(pr, 'ms')} (paired +${d('ms')})  node CPU ${m(cold, 'nodeCpu')} vs ${m(pr, 'nodeCpu')} (paired +${d('nodeCpu')})  node queued ${m(cold, 'nodeQueued')} vs ${m(pr, 'nodeQueued')}  broker CPU ${m(cold, 'brokerCpu')} vs ${m(pr, 'brokerCpu')} + plan ${m(pr, 'planCpu')}`);
}
