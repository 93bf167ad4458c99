// Round eight (issue 19), relaunch6: what an "mm holder" (native/mm-holder.c) buys a relaunch after a crash, with no
// library change. Three prewarmed echo services in one broker (unsandboxed), crashes interleaved between them:
//   koffi    fixtures/echo-koffi-service.js: koffi and the library loaded, no holder (the control)
//   holder   fixtures/echo-mm-holder-service.js: the node starts a holder (CLONE_VM | CLONE_PARENT: this process,
//            the broker, is its parent and reaps it with waitid through koffi)
//   idle     fixtures/echo-mm-holder-idle-service.js: the same, the holder at SCHED_IDLE
//   delay20  fixtures/echo-mm-holder-delay-service.js: the same, the holder exiting 20 ms after the EOF
// Per crash (SIGKILL to the helper's node from outside the broker, as crash.mjs): a call at once, retried on
// ERR_INTERRUPTED until the new helper answers: kill → reply; kill → the broker's exit event and the signal/code it
// reports; for the holders, kill → reaped (polled every ms after the exit event) and whether any holder is left.
// usage: [VARIANTS=koffi,delay20] node bench/ab/prewarm/mm-holder-relaunch.mjs BUILD_DIR N   (gcc on PATH)
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { MSG, sleep } from './setup.mjs';
const WT = process.argv[2];
const N = Number(process.argv[3] ?? 15);
execFileSync('gcc', ['-O2', '-fno-stack-protector', '-fPIC', '-shared', '-o', '/tmp/bulkhead-mm-holder.so', new URL('native/mm-holder.c', import.meta.url).pathname]);
const koffi = createRequire(import.meta.url)(`${WT}/node_modules/koffi`);
const waitid = koffi.load('libc.so.6').func('int waitid(int, int, void *, int)');
const { Broker, isBulkheadError } = await import(`${WT}/dist/lib/index.js`);
const broker = new Broker({ root: `${WT}/bench/fixtures/` });
const all = { koffi: './echo-koffi-service.js', holder: './echo-mm-holder-service.js', idle: './echo-mm-holder-idle-service.js', delay20: './echo-mm-holder-delay-service.js' };
// VARIANTS=koffi,delay20 runs only those (fewer spares starting between crashes).
const services = Object.fromEntries(Object.entries(all).filter(([k]) => (process.env.VARIANTS ?? Object.keys(all).join(',')).split(',').includes(k)));
const conns = {};
for (const [name, entry] of Object.entries(services)) {
  broker.register({ name, entry, protocol: 'com.bench.echo', launch: { throttleMs: 0, maxRestarts: 10000, prewarm: true } });
  conns[name] = broker.connect(name);
  await conns[name].call('echo', MSG);
}
const q = (a, f) => [...a].sort((x, y) => x - y)[Math.floor(a.length * f)];
const fmt = (a) => (a.length ? `p25 ${q(a, 0.25).toFixed(2)} p50 ${q(a, 0.5).toFixed(2)} p75 ${q(a, 0.75).toFixed(2)}` : '-');
const info = Buffer.alloc(128);
/** Reaps `pid` (our child by CLONE_PARENT), polling WNOHANG every ms; the time after `t0`, NaN if not ours. */
async function reap(pid, t0) {
  for (let i = 0; i < 5000; i++) {
    info.fill(0);
    if (waitid(1 /* P_PID */, pid, info, 4 /* WEXITED */ | 1 /* WNOHANG */) !== 0) return NaN;
    if (info.readInt32LE(16) === pid) return performance.now() - t0;
    await sleep(1);
  }
  return NaN;
}
const res = {};
const seen = new Set();
for (let i = 0; i < N; i++) {
  for (const name of Object.keys(services)) {
    const c = conns[name];
    while (broker.status(name).sparePid === null) await sleep(2);
    await sleep(30);
    const pid = broker.status(name).pid;
    seen.add(pid).add(broker.status(name).sparePid);
    const file = `/dev/shm/bulkhead-mm-holder-${pid}`;
    const holder = name === 'koffi' ? 0 : Number(readFileSync(file, 'utf8'));
    const r = {};
    let exited;
    const exit = new Promise((ok) => { exited = ok; });
    const s = performance.now();
    const sub = broker.on('exit', (n, x) => { if (n === name && r.exit === undefined) { r.exit = performance.now() - s; r.how = `${x.signal ?? x.code}${x.reason ? ` (${x.reason})` : ''}`; exited(); } });
    process.kill(pid, 'SIGKILL');
    for (;;) {
      try { await c.call('echo', MSG); r.reply = performance.now() - s; if (broker.status(name).pid !== pid) break; }
      catch (e) { if (!isBulkheadError(e) || e.code !== 'ERR_INTERRUPTED') throw e; }
    }
    await exit;
    sub.dispose();
    if (holder) { r.reaped = await reap(holder, s); r.left = existsSync(`/proc/${holder}`); }
    rmSync(file, { force: true });
    (res[name] ??= []).push(r);
  }
}
for (const name of Object.keys(services)) seen.add(broker.status(name).pid).add(broker.status(name).sparePid);
await broker.close();
// The last helpers' holders: reaped after the close (their nodes are gone).
let closedLeft = 0;
for (const pid of seen) {
  const file = `/dev/shm/bulkhead-mm-holder-${pid}`;
  if (!existsSync(file)) continue;
  const h = Number(readFileSync(file, 'utf8'));
  if (!(await reap(h, performance.now()) >= 0) || existsSync(`/proc/${h}`)) closedLeft++;
  rmSync(file, { force: true });
}
console.log(`${process.version}, load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}, ${N} crashes per service, interleaved`);
for (const [name, rs] of Object.entries(res)) {
  console.log(`${name.padEnd(7)} kill→reply ${fmt(rs.map((r) => r.reply))} | kill→exit event ${fmt(rs.map((r) => r.exit))} as ${[...new Set(rs.map((r) => r.how))]}` +
    (name === 'koffi' ? '' : ` | kill→holder reaped ${fmt(rs.map((r) => r.reaped).filter((x) => x >= 0))}, not reaped ${rs.filter((r) => !(r.reaped >= 0)).length}, left ${rs.filter((r) => r.left).length}`));
}
console.log(`holders of the last helpers not reaped after broker.close(): ${closedLeft}`);
// Every sample, to pool runs: {"service": {"reply": [...], "exit": [...]}}
console.log(JSON.stringify(Object.fromEntries(Object.entries(res).map(([k, rs]) => [k, { reply: rs.map((r) => +r.reply.toFixed(2)), exit: rs.map((r) => +r.exit.toFixed(2)) }]))));
