// node launch-worker.mjs DIST N PROFILE: N cold launches of the bench echo helper from the build in DIST (a dist/ directory),
// each interleaved with a bare-node probe (first-byte.js, always unsandboxed: for a profile, compare builds, not the probe). Prints one JSON line: per launch, wall ms of
// connection.call() on a stopped service, the helper's CPU ms up to its first reply (all threads, /proc/<pid>/task/*/schedstat),
// the broker's CPU ms over the call, and the probe's wall and CPU ms.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
const [dist, n, profile = 'none'] = process.argv.slice(2);
const root = fileURLToPath(new URL('../', pathToFileURL(dist + '/')));
const fixtures = `${root}bench/fixtures/`;
const { Broker } = await import(pathToFileURL(`${dist}/lib/index.js`).href);
const cpuMs = (pid) => {
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
  return ns / 1e6;
};
const nodeChild = (pid) => {
  // Sandboxed: node is the deepest process under the wrappers (bubblewrap, its init, the exec guard's stage).
  const kids = (p) => { try { return readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; } };
  let found = pid;
  for (let k = kids(found); k.length > 0; k = kids(found)) found = k[k.length - 1];
  return found;
};
const broker = new Broker({ root: fixtures, maxFrameBytes: 32 * 1024 * 1024 });
const name = `echo-${profile}`;
broker.register({ name, entry: process.env.LAUNCH_ENTRY ?? './echo-service.js', protocol: 'com.bench.echo', launch: { throttleMs: 0, maxRestarts: 10_000 }, ...(process.env.LAUNCH_NODE_ARGS ? { nodeArgs: JSON.parse(process.env.LAUNCH_NODE_ARGS) } : {}), ...(profile === 'none' ? {} : { sandbox: profile }), ...(profile === 'fs-reader' ? { sandboxPaths: { data: '.' } } : {}) });
const conn = broker.connect(name);
const MESSAGE = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };
function probe() {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(process.execPath, [`${fixtures}first-byte.js`], { stdio: ['ignore', 'ignore', 'inherit', 'pipe'], env: {}, detached: true });
    const fd3 = child.stdio[3];
    fd3.once('data', () => { const ms = performance.now() - start; const cpu = cpuMs(child.pid); fd3.end(); resolve({ ms, cpu }); });
    fd3.on('error', () => {});
    child.once('error', reject);
  });
}
await conn.call('echo', MESSAGE);
// The first launch started the broker's cache writers (compile cache, runtime code cache where the build has one): let them finish.
for (const [file, fn] of [['compile-cache.js', 'compileCacheWrites'], ['code-cache.js', 'codeCacheWrites']]) {
  try { await (await import(pathToFileURL(`${dist}/lib/broker/${file}`).href))[fn]?.(); } catch { /* not in this build */ }
}
await probe();
const out = [];
for (let i = 0; i < Number(n); i++) {
  await broker.stop(name);
  await new Promise((r) => setTimeout(r, 20));
  const p = await probe();
  await new Promise((r) => setTimeout(r, 20));
  const c0 = process.cpuUsage();
  const start = performance.now();
  await conn.call('echo', MESSAGE);
  const ms = performance.now() - start;
  const c = process.cpuUsage(c0);
  const pid = nodeChild(broker.status(name).pid);
  out.push({ ms, helperCpu: cpuMs(pid), brokerCpu: (c.user + c.system) / 1000, probeMs: p.ms, probeCpu: p.cpu });
}
await broker.close();
console.log(JSON.stringify(out));
