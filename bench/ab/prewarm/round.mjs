// One prewarm A/B round of one build (ab.sh alternates builds): N launches from a warm spare, N relaunches
// after SIGKILL (kill → first reply from the new helper; kill → the broker's exit event), and the spare's memory
// from /proc/<pid>/smaps_rollup over its process tree (sandbox wrappers too); since round five also N kills
// measured as "serving again" (serve: kill → reply to a call made at the takeover, or at the exit for a build
// without it; took: kill → takeover; exitEvt2: kill → exit). Prints one JSON line.
// usage: node round.mjs BUILD_DIR N   (PROFILE=pure-compute for a sandboxed service)
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { MSG, prewarmedEcho, processTree, sleep } from './setup.mjs';
const WT = process.argv[2];
const N = Number(process.argv[3] ?? 10);
const { broker, c, isBulkheadError } = await prewarmedEcho(WT);
async function spare() { while (broker.status('echo').sparePid === null) await sleep(2); await sleep(20); }
const kb = (pid) => { const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'); const f = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)?.[1] ?? NaN); return { rss: f('Rss'), pss: f('Pss'), uss: f('Private_Clean') + f('Private_Dirty'), anon: f('Anonymous') }; };
// The spare's process tree (wrappers + node): summed.
const tree = (pid) => processTree(pid).map(kb).reduce((a, b) => ({ rss: a.rss + b.rss, pss: a.pss + b.pss, uss: a.uss + b.uss, anon: a.anon + b.anon }));
const launch = [], relaunch = [], exitEvt = [], mem = [], serve = [], took = [], exitEvt2 = [];
for (let i = 0; i < N; i++) {
  await broker.stop('echo'); await spare();
  mem.push(tree(broker.status('echo').sparePid));
  let s = performance.now();
  await c.call('echo', MSG);
  launch.push(performance.now() - s);
  await spare();
  const pid = broker.status('echo').pid;
  let exitMs = NaN;
  s = performance.now();
  const sub = broker.on('exit', () => { if (Number.isNaN(exitMs)) exitMs = performance.now() - s; });
  broker.kill('echo', 'SIGKILL');
  for (;;) {
    try { await c.call('echo', MSG); if (broker.status('echo').pid !== pid) break; }
    catch (e) { if (!isBulkheadError(e) || e.code !== 'ERR_INTERRUPTED') throw e; }
  }
  relaunch.push(performance.now() - s); exitEvt.push(exitMs); sub.dispose();
  // Round five: kill → the reply to a new call made as soon as the broker routes new calls to the new
  // helper: at its takeover event (NaN for a build without it), else at the old helper's exit event (before
  // it, an older build sends the call to the dead helper). A caller that waits for a call in flight on the
  // killed helper waits for the exit (relaunch, above).
  await spare();
  const pid2 = broker.status('echo').pid;
  let tookMs = NaN, exit2 = NaN;
  let served;
  const serveNow = () => {
    served ??= c.call('echo', MSG).then(() => {
      if (broker.status('echo').pid === pid2) throw new Error('the killed helper answered');
      return performance.now() - s;
    });
  };
  const subs = [
    broker.on('takeover', () => { if (Number.isNaN(tookMs)) tookMs = performance.now() - s; serveNow(); }),
    broker.on('exit', () => { if (Number.isNaN(exit2)) exit2 = performance.now() - s; serveNow(); }),
  ];
  s = performance.now();
  broker.kill('echo', 'SIGKILL');
  while (served === undefined) await sleep(1);
  serve.push(await served);
  // Let the old helper's exit be reported before the next round (its in-flight calls settle then).
  while (Number.isNaN(exit2)) await sleep(1);
  took.push(tookMs); exitEvt2.push(exit2);
  for (const sub of subs) sub.dispose();
}
await broker.close();
console.log(JSON.stringify({ launch, relaunch, exitEvt, serve, took, exitEvt2, mem, load: loadavg()[0] }));
