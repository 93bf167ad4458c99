// node plan-worker.mjs DIST N PROFILE...: N cold launches per profile of the bench echo helper from the build in DIST (a
// dist/ directory), profiles rotated per round. Per launch: connection.call() on a stopped service → the broker's
// child_process.spawn() of the helper (wall ms, "toSpawn"), the call's reply ("total"), and the broker's CPU over call →
// spawn. RELAUNCH=1: instead of a stop, the running helper is killed (broker.kill) and called at once (the clock
// starts at the kill). A build with marks (globalThis.__pm?.('label') calls inserted in a copy) adds each mark's offset from the call.
// Prints one JSON line: { profile: [launch, ...] }.
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { pathToFileURL, fileURLToPath } from 'node:url';
const [dist, n, ...profiles] = process.argv.slice(2);
const root = fileURLToPath(new URL('../', pathToFileURL(dist + '/')));
const fixtures = `${root}bench/fixtures/`;
const cp = createRequire(import.meta.url)('node:child_process');
let spawnAt = 0;
let spawnCpu;
const realSpawn = cp.spawn;
cp.spawn = (...a) => {
  if (spawnAt === 0 && JSON.stringify(a[1] ?? []).includes('echo-service.js')) { spawnAt = performance.now(); spawnCpu = process.cpuUsage(); }
  return realSpawn(...a);
};
syncBuiltinESMExports();
let marks = [];
globalThis.__pm = (label) => marks.push([label, performance.now()]);
const { Broker } = await import(pathToFileURL(`${dist}/lib/index.js`).href);
const broker = new Broker({ root: fixtures, maxFrameBytes: 32 * 1024 * 1024 });
const MESSAGE = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };
const conns = new Map();
for (const p of profiles) {
  broker.register({ name: `echo-${p}`, entry: './echo-service.js', protocol: 'com.bench.echo', launch: { throttleMs: 0, maxRestarts: 10_000 }, ...(p === 'none' ? {} : { sandbox: p }), ...(p === 'fs-reader' ? { sandboxPaths: { data: '.' } } : {}) });
  conns.set(p, broker.connect(`echo-${p}`));
}
for (const p of profiles) await conns.get(p).call('echo', MESSAGE);
for (const [file, fn] of [['compile-cache.js', 'compileCacheWrites'], ['code-cache.js', 'codeCacheWrites']]) {
  try { await (await import(pathToFileURL(`${dist}/lib/broker/${file}`).href))[fn]?.(); } catch { /* not in this build */ }
}
const out = Object.fromEntries(profiles.map((p) => [p, []]));
for (let i = 0; i < Number(n); i++) {
  for (const p of profiles.map((_, k) => profiles[(k + i) % profiles.length])) {
    const relaunch = process.env.RELAUNCH === '1';
    if (!relaunch) {
      await broker.stop(`echo-${p}`);
      await new Promise((r) => setTimeout(r, 30));
    } else {
      await new Promise((r) => setTimeout(r, 30));
    }
    spawnAt = 0;
    marks = [];
    const c0 = process.cpuUsage();
    const start = performance.now();
    if (relaunch) broker.kill(`echo-${p}`, 'SIGKILL');
    for (;;) {
      try {
        await conns.get(p).call('echo', MESSAGE);
        break;
      } catch (err) {
        if (err?.code !== 'ERR_INTERRUPTED') throw err;
      }
    }
    const total = performance.now() - start;
    const cpu = process.cpuUsage(c0);
    const c = spawnCpu === undefined ? undefined : { user: spawnCpu.user - c0.user, system: spawnCpu.system - c0.system };
    out[p].push({ toSpawn: spawnAt - start, cpuToSpawn: c === undefined ? NaN : (c.user + c.system) / 1000, total, brokerCpu: (cpu.user + cpu.system) / 1000, ...Object.fromEntries(marks.map(([l, t]) => [l, t - start])) });
  }
}
await broker.close();
console.log(JSON.stringify(out));
