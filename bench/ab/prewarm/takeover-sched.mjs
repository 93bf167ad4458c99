// Round five: where the time goes from the takeover to the reply of a call made then. Per kill: kill → takeover,
// → reply, → exit event, and from /proc/<pid>/schedstat the CPU time run and the time waited for a CPU by the
// spare's node and by the broker between the takeover and the reply.
// usage: [PROFILE=pure-compute] node bench/ab/prewarm/takeover-sched.mjs BUILD_DIR [N]
import { readFileSync } from 'node:fs';
const WT = process.argv[2];
const { Broker } = await import(`${WT}/dist/lib/index.js`);
const MSG = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };
const broker = new Broker({ root: `${WT}/bench/fixtures/` });
broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.bench.echo', ...(process.env.PROFILE ? { sandbox: process.env.PROFILE } : {}), launch: { throttleMs: 0, maxRestarts: 10000, prewarm: true } });
const c = broker.connect('echo');
await c.call('echo', MSG);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sched = (pid) => { try { const [run, wait] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ').map(Number); return { run: run / 1e6, wait: wait / 1e6 }; } catch { return { run: NaN, wait: NaN }; } };
const threads = (pid) => { try { return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8'); } catch { return ''; } };
const rows = [];
for (let i = 0; i < Number(process.argv[3] ?? 8); i++) {
  while (broker.status('echo').sparePid === null) await sleep(2);
  await sleep(30);
  const spareTop = broker.status('echo').sparePid; const { descendants } = await import(`${WT}/dist/lib/broker/process-stats.js`); const spare = [spareTop, ...descendants(spareTop)].at(-1);
  const me0 = sched(process.pid), sp0 = sched(spare);
  let took, reply, exit, sp1, me1;
  const s = performance.now();
  const done = new Promise((res) => {
    const a = broker.on('takeover', () => { took = performance.now() - s; sp1 = sched(spare); me1 = sched(process.pid); c.call('echo', MSG).then(() => { reply = performance.now() - s; a.dispose(); res(); }); });
  });
  const b = broker.on('exit', () => { exit ??= performance.now() - s; });
  broker.kill('echo', 'SIGKILL');
  await done;
  const sp2 = sched(spare), me2 = sched(process.pid);
  while (exit === undefined) await sleep(1);
  b.dispose();
  rows.push({ took: took.toFixed(2), reply: reply.toFixed(2), exit: exit.toFixed(2), spareRun: (sp2.run - sp1.run).toFixed(2), spareWait: (sp2.wait - sp1.wait).toFixed(2), brokerRun: (me2.run - me1.run).toFixed(2), brokerWait: (me2.wait - me1.wait).toFixed(2), spareWaitBeforeTake: (sp1.wait - sp0.wait).toFixed(2) });
}
console.table(rows);
await broker.close();
