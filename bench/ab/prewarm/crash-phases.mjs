// Round ten: the phases of a crash relaunch, per crash (SIGKILL to the helper's node from outside, as crash.mjs):
// kill → takeover (the broker read the channel's EOF), → the in-flight call's rejection (ERR_INTERRUPTED), → the
// retried call's reply, → the exit event, and, when the sandboxed helper has an mm holder (the prototype of
// native/sandbox-mm-holder.patch), → the holder gone from /proc. Prints the p50s and every crash's figures.
// usage: PROFILE=pure-compute node crash-phases.mjs BUILD_DIR N
import { existsSync, readFileSync } from 'node:fs';
import { MSG, prewarmedEcho, processTree, sleep } from './setup.mjs';
const wt = process.argv[2];
const N = Number(process.argv[3] ?? 12);
const { broker, c, isBulkheadError } = await prewarmedEcho(wt);
const comm = (p) => { try { const s = readFileSync(`/proc/${p}/stat`, 'latin1'); return s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')); } catch { return ''; } };
const isNode = (p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[0].endsWith('node') && comm(p) !== 'bh-mm-holder'; } catch { return false; } };
const rows = [];
for (let i = 0; i < N; i++) {
  while (broker.status('echo').sparePid === null) await sleep(2);
  await sleep(30);
  const pid = broker.status('echo').pid;
  const tree = processTree(pid);
  const node = tree.find(isNode) ?? pid;
  const holder = tree.find((p) => comm(p) === 'bh-mm-holder');
  const r = { takeover: NaN, reject: NaN, reply: NaN, exit: NaN, holderGone: NaN };
  const t0 = performance.now();
  const subT = broker.on('takeover', () => { if (Number.isNaN(r.takeover)) r.takeover = performance.now() - t0; });
  const subE = broker.on('exit', () => { if (Number.isNaN(r.exit)) r.exit = performance.now() - t0; });
  const poll = holder === undefined ? undefined : setInterval(() => { if (Number.isNaN(r.holderGone) && !existsSync(`/proc/${holder}`)) r.holderGone = performance.now() - t0; }, 0.5);
  process.kill(node, 'SIGKILL');
  for (;;) {
    try { await c.call('echo', MSG); r.reply = performance.now() - t0; if (broker.status('echo').pid !== pid) break; }
    catch (e) { if (!isBulkheadError(e) || e.code !== 'ERR_INTERRUPTED') throw e; if (Number.isNaN(r.reject)) r.reject = performance.now() - t0; }
  }
  while ((Number.isNaN(r.exit) || (poll !== undefined && Number.isNaN(r.holderGone))) && performance.now() - t0 < 500) await sleep(1);
  clearInterval(poll);
  subT.dispose();
  subE.dispose();
  rows.push(r);
}
await broker.close();
const med = (k) => { const x = rows.map((r) => r[k]).filter((v) => !Number.isNaN(v)).sort((a, b) => a - b); return x.length === 0 ? null : +x[Math.floor(x.length / 2)].toFixed(2); };
console.log(JSON.stringify({ build: wt, node: process.version, profile: process.env.PROFILE ?? 'none', n: N, load: readFileSync('/proc/loadavg', 'utf8').split(' ')[0], p50: Object.fromEntries(Object.keys(rows[0]).map((k) => [k, med(k)])), all: rows.map((r) => Object.values(r).map((v) => +v.toFixed(1)).join('/')) }));
