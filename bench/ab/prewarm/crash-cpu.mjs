// Round thirteen: the CPU a crash relaunch costs, per crash, which the machine's load does not move (the wall
// figures of crash-phases.mjs do): from the SIGKILL to the retried call's reply, the spare's node (all its
// threads, /proc/<pid>/task/*/schedstat: run time, and time waited for a CPU) and the broker (process.cpuUsage).
// Prints p50s per run as one JSON line. usage: PROFILE=pure-compute node crash-cpu.mjs BUILD_DIR N
import { readdirSync, readFileSync } from 'node:fs';
import { MSG, prewarmedEcho, processTree, sleep } from './setup.mjs';
const wt = process.argv[2];
const N = Number(process.argv[3] ?? 12);
const { broker, c, isBulkheadError } = await prewarmedEcho(wt);
const comm = (p) => { try { const s = readFileSync(`/proc/${p}/stat`, 'latin1'); return s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')); } catch { return ''; } };
const isNode = (p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[0].endsWith('node') && comm(p) !== 'bh-mm-holder'; } catch { return false; } };
const sched = (pid) => { let run = 0, wait = 0; try { for (const t of readdirSync(`/proc/${pid}/task`)) { const [r, w] = readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ').map(Number); run += r; wait += w; } } catch { return { run: NaN, wait: NaN }; } return { run: run / 1e6, wait: wait / 1e6 }; };
const rows = [];
for (let i = 0; i < N; i++) {
  while (broker.status('echo').sparePid === null) await sleep(2);
  await sleep(30);
  const pid = broker.status('echo').pid;
  const node = processTree(pid).find(isNode) ?? pid;
  const spareTop = broker.status('echo').sparePid;
  const spare = processTree(spareTop).find(isNode) ?? spareTop;
  const s0 = sched(spare);
  const b0 = process.cpuUsage();
  const t0 = performance.now();
  process.kill(node, 'SIGKILL');
  let reply;
  for (;;) {
    try { await c.call('echo', MSG); reply = performance.now() - t0; if (broker.status('echo').pid !== pid) break; }
    catch (e) { if (!isBulkheadError(e) || e.code !== 'ERR_INTERRUPTED') throw e; }
  }
  const b1 = process.cpuUsage(b0);
  const s1 = sched(spare);
  rows.push({ reply, spareRun: s1.run - s0.run, spareWait: s1.wait - s0.wait, broker: (b1.user + b1.system) / 1000 });
  await sleep(20);
}
await broker.close();
const med = (k) => { const x = rows.map((r) => r[k]).filter((v) => !Number.isNaN(v)).sort((a, b) => a - b); return +x[Math.floor(x.length / 2)].toFixed(2); };
console.log(JSON.stringify({ build: wt, node: process.version, profile: process.env.PROFILE ?? 'none', n: N, load: readFileSync('/proc/loadavg', 'utf8').split(' ')[0], p50: Object.fromEntries(Object.keys(rows[0]).map((k) => [k, med(k)])), all: rows.map((r) => Object.values(r).map((v) => +v.toFixed(2)).join('/')) }));
