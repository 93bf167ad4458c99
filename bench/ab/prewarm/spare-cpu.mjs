// Round five: the spare's CPU (/proc/<pid>/schedstat) for the broker's hello alone (activated by hand, through
// the broker's private fields), for the first call after it (sent at the takeover), and for two later isolated calls.
// usage: node bench/ab/prewarm/spare-cpu.mjs BUILD_DIR [N]   (unsandboxed)
import { readFileSync } from 'node:fs';
const WT = process.argv[2];
const { Broker } = await import(`${WT}/dist/lib/index.js`);
const MSG = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };
const broker = new Broker({ root: `${WT}/bench/fixtures/` });
broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.bench.echo', launch: { throttleMs: 0, maxRestarts: 10000, prewarm: true } });
const c = broker.connect('echo');
await c.call('echo', MSG);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const cpu = (pid) => { const f = readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ').map(Number); return f[0] / 1e6; };
const rows = [];
for (let i = 0; i < Number(process.argv[3] ?? 6); i++) {
  while (broker.status('echo').sparePid === null) await sleep(2);
  await sleep(50);
  const sup = broker.services.get('echo');
  const pool = sup.life.spawner.spares;
  const spare = broker.status('echo').sparePid;
  const c0 = cpu(spare);
  pool.activateEarly();
  await sleep(30);
  const c1 = cpu(spare);
  // now kill the running helper; the takeover sends the call
  const s = performance.now();
  const done = new Promise((res) => { const d = broker.on('takeover', () => { d.dispose(); c.call('echo', MSG).then(() => res(performance.now() - s)); }); });
  broker.kill('echo', 'SIGKILL');
  const reply = await done;
  await sleep(30);
  const c2 = cpu(spare);
  await c.call('echo', MSG);
  await sleep(30);
  const c3 = cpu(spare);
  await c.call('echo', MSG);
  await sleep(30);
  const c4 = cpu(spare);
  await sleep(30);
  const c5 = cpu(spare);
  rows.push({ helloMs: (c1 - c0).toFixed(3), callMs: (c2 - c1).toFixed(3), call2Ms: (c3 - c2).toFixed(3), call3Ms: (c4 - c3).toFixed(3), idle30ms: (c5 - c4).toFixed(3), reply: reply.toFixed(2) });
  await sleep(100);
}
console.table(rows);
await broker.close();
