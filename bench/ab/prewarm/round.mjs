// One prewarm A/B round of one build (ab.sh alternates builds): N launches from a warm spare, N relaunches
// after SIGKILL (kill → first reply from the new helper; kill → the broker's exit event), and the spare's memory
// from /proc/<pid>/smaps_rollup over its process tree (sandbox wrappers too). Prints one JSON line.
// usage: node round.mjs BUILD_DIR N   (PROFILE=pure-compute for a sandboxed service)
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
const WT = process.argv[2];
const N = Number(process.argv[3] ?? 10);
const { Broker, isBulkheadError } = await import(`${WT}/dist/lib/index.js`);
const MSG = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };
const broker = new Broker({ root: `${WT}/bench/fixtures/` });
const profile = process.env.PROFILE;
broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.bench.echo', ...(profile ? { sandbox: profile } : {}), launch: { throttleMs: 0, maxRestarts: 10000, prewarm: true } });
const c = broker.connect('echo');
await c.call('echo', MSG);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function spare() { while (broker.status('echo').sparePid === null) await sleep(2); await sleep(20); }
const kb = (pid) => { const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'); const f = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)?.[1] ?? NaN); return { rss: f('Rss'), pss: f('Pss'), uss: f('Private_Clean') + f('Private_Dirty'), anon: f('Anonymous') }; };
function tree(pid) { // the spare's process tree (wrappers + node): sum
  const kids = (p) => { try { return readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; } };
  const all = [pid]; for (let i = 0; i < all.length; i++) all.push(...kids(all[i]));
  return all.map(kb).reduce((a, b) => ({ rss: a.rss + b.rss, pss: a.pss + b.pss, uss: a.uss + b.uss, anon: a.anon + b.anon }));
}
const launch = [], relaunch = [], exitEvt = [], mem = [];
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
}
await broker.close();
console.log(JSON.stringify({ launch, relaunch, exitEvt, mem, load: loadavg()[0] }));
