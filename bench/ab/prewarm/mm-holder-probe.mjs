// Round eight (issue 19), relaunch6: does an "mm holder" (native/mm-holder.c: a process sharing node's address space,
// cloned with CLONE_VM | CLONE_PARENT) bring the EOF on fd 3 before the teardown of a SIGKILLed node? A node child
// holding bulkhead's service bundle and koffi (as early-sign.mjs, koffi loaded in every variant), variants
// interleaved, N kills each (default 25):
//   koffi      no holder (the control: the same node, the same addon loaded)
//   holder     mm_holder_start(CLONE_PARENT): this process is the holder's parent and reaps it (waitid, koffi)
//   idle       the same, the holder at SCHED_IDLE
//   delay20    the same, the holder waiting 20 ms after the EOF before it exits (its teardown after the takeover)
// Per variant: kill → EOF on fd 3, kill → node's exit event (and its signal), kill → the holder's EOF on fd 4 (its
// exit's teardown done), whether it was reaped, and the node's and holder's memory before the kill.
// usage: node bench/ab/prewarm/mm-holder-probe.mjs   (NODE_BIN=/path/to/node; from a built worktree; gcc on PATH)
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
const N = Number(process.env.N ?? 25);
const NODE = process.env.NODE_BIN ?? process.execPath;
const here = new URL('.', import.meta.url).pathname;
const root = new URL('../../../', import.meta.url).pathname;
const bundle = `${root}dist/lib/service.bundle.js`;
const SO = '/tmp/bulkhead-mm-holder.so';
execFileSync('gcc', ['-O2', '-fno-stack-protector', '-fPIC', '-shared', '-o', SO, `${here}native/mm-holder.c`]);
const koffi = createRequire(import.meta.url)(`${root}node_modules/koffi`);
const waitid = koffi.load('libc.so.6').func('int waitid(int, int, void *, int)');
const script = (flags) => `const k=require(${JSON.stringify(`${root}node_modules/koffi`)});const f=k.load(${JSON.stringify(SO)}).func('int mm_holder_start(int)');` +
  `const h=${flags}?f(${flags}):0;const {Socket}=require('net');const s=new Socket({fd:3,readable:true,writable:true});s.write(String(h)+'\\n');`;
const q = (a, f) => [...a].sort((x, y) => x - y)[Math.floor(a.length * f)];
const fmt = (a) => (a.length ? `p25 ${q(a, 0.25).toFixed(2)} p50 ${q(a, 0.5).toFixed(2)} p75 ${q(a, 0.75).toFixed(2)}` : '-');
const rollup = (pid) => {
  const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const f = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)?.[1] ?? 0);
  return `RSS ${f('Rss')} anon ${f('Anonymous')} KiB`;
};
const ended = (stream, t0) => new Promise((ok) => { stream.once('end', () => ok(performance.now() - t0)); stream.resume(); });
let cpu = NaN;
/** Reaps `pid` (this process's child by CLONE_PARENT), polling WNOHANG; the ms it took after `t0`, or NaN. */
async function reap(pid, t0) {
  const info = Buffer.alloc(128);
  for (let i = 0; i < 2000; i++) {
    info.fill(0);
    try { cpu = Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6; } catch { /* gone */ }
    const r = waitid(1 /* P_PID */, pid, info, 4 /* WEXITED */ | 1 /* WNOHANG */);
    if (r === 0 && info.readInt32LE(16) === pid) return performance.now() - t0; // si_pid at offset 16
    if (r !== 0) return NaN;
    await new Promise((ok) => setTimeout(ok, 1));
  }
  return NaN;
}

// TRACE=1: a tracefs instance of its own (root): sched_process_exit, exit_mmap, sched_waking of the holder, a marker
// at the kill; per kill, from the trace: kill → the EOF made available by the kernel (with a holder: its wake-up by
// the release of the pipe, in the same exit_task_work of node's last thread as fd 3's release; without: the end of
// node's exit_mmap, i.e. ≈ 0.05 ms early) whatever this process's wait for a CPU to read it, and kill → the end of
// the last exit_mmap of those tasks (the teardown done). TRACE=2 prints the events.
let mark = () => {};
let traced = () => ({});
if (process.env.TRACE) {
  const { mkdirSync, writeFileSync, openSync, writeSync, rmdirSync, closeSync } = await import('node:fs');
  const T = `/sys/kernel/tracing/instances/mmh-${process.pid}`;
  const EV = ['sched/sched_process_exit', 'mmap/exit_mmap', 'sched/sched_waking', ...(process.env.TRACE === '2' ? ['sched/sched_switch'] : [])];
  mkdirSync(T);
  writeFileSync(`${T}/buffer_size_kb`, '4096');
  writeFileSync(`${T}/events/sched/sched_waking/filter`, `comm == "bh-mm-holder" || pid == ${process.pid}`);
  writeFileSync(`${T}/events/sched/sched_switch/filter`, `prev_pid == ${process.pid} || next_pid == ${process.pid}`);
  for (const e of EV) writeFileSync(`${T}/events/${e}/enable`, '1');
  const fd = openSync(`${T}/trace_marker`, 'w');
  mark = (m) => writeSync(fd, m);
  traced = (tids, holder) => {
    const lines = readFileSync(`${T}/trace`, 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
    writeFileSync(`${T}/trace`, '');
    if (process.env.TRACE === '2') console.log(lines.join('\n'));
    const ts = (l) => Number(/ (\d+\.\d+): /.exec(l)[1]) * 1e3;
    const by = (l) => Number(/^\s*.+?-(\d+)\s+\[/.exec(l)[1]);
    const k = lines.findIndex((l) => l.includes('tracing_mark_write: kill'));
    if (k < 0) return {};
    const t0 = ts(lines[k]);
    const after = lines.slice(k + 1).filter((l) => tids.has(by(l)));
    // The holder is woken by the release of the pipe's write end, in node's exit_task_work, with fd 3's (EOF).
    const wake = after.find((l) => l.includes('sched_waking') && l.includes('comm=bh-mm-holder'));
    const mmaps = after.filter((l) => l.includes('exit_mmap'));
    const nodeMm = mmaps.filter((l) => by(l) !== holder);
    const last = (a) => (a.length ? ts(a.at(-1)) - t0 : NaN);
    return { avail: holder ? (wake ? ts(wake) - t0 : NaN) : last(nodeMm) + 0, teardown: last(mmaps) };
  };
  process.on('exit', () => { for (const e of EV) writeFileSync(`${T}/events/${e}/enable`, '0'); closeSync(fd); rmdirSync(T); });
}

async function once(flags) {
  const child = spawn(NODE, ['--import', bundle, '-e', script(flags)], { stdio: ['ignore', 'ignore', 'inherit', 'pipe', 'pipe'] });
  const line = await new Promise((ok) => { let b = ''; child.stdio[3].on('data', function d(x) { b += x; if (b.includes('\n')) { child.stdio[3].off('data', d); ok(b); } }); });
  const holder = Number(line.trim());
  if (flags && !(holder > 0)) throw new Error(`mm_holder_start: ${line}`);
  await new Promise((ok) => setTimeout(ok, 20));
  const mem = rollup(child.pid) + (holder ? `; holder: ${readFileSync(`/proc/${holder}/status`, 'utf8').match(/VmRSS:\s+\d+ kB/)[0]} (node's mm), ppid ${readFileSync(`/proc/${holder}/stat`, 'utf8').split(') ')[1].split(' ')[1]}, comm ${readFileSync(`/proc/${holder}/comm`, 'utf8').trim()}` : '');
  const t0 = performance.now();
  const eof = ended(child.stdio[3], t0).then((x) => { mark('EOF fd3 read'); return x; });
  const tids = new Set([...readdirSync(`/proc/${child.pid}/task`).map(Number), holder]);
  mark(`kill ${child.pid} holder ${holder}`);
  const held = ended(child.stdio[4], t0); // without a holder fd 4 is node's alone: its EOF comes with fd 3's
  const exit = new Promise((ok) => child.once('exit', (code, sig) => ok([performance.now() - t0, sig])));
  process.kill(child.pid, 'SIGKILL');
  const r = { eof: await eof, mem };
  [r.exit, r.sig] = await exit;
  r.held = await held;
  if (holder) { r.reaped = await reap(holder, t0); r.cpu = cpu; r.left = existsSync(`/proc/${holder}`); }
  Object.assign(r, traced(tids, holder));
  return r;
}
const variants = { koffi: 0, holder: 1 | 4, idle: 1 | 2 | 4, delay20: 1 | 4 | (20 << 8) };
console.log(`${NODE} (${execFileSync(NODE, ['-v']).toString().trim()}), load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}, ${N} kills each, interleaved`);
const res = {};
for (let i = 0; i < N; i++) for (const [name, f] of Object.entries(variants)) (res[name] ??= []).push(await once(f));
for (const [name, rs] of Object.entries(res)) {
  console.log(`${name.padEnd(7)} kill→EOF fd3 ${fmt(rs.map((r) => r.eof))} | kill→exit ${fmt(rs.map((r) => r.exit))} (${[...new Set(rs.map((r) => r.sig))]}) | kill→fd4 EOF ${fmt(rs.map((r) => r.held))}` +
    (name === 'koffi' ? '' : ` | reaped ${rs.filter((r) => r.reaped >= 0).length}/${rs.length} at ${fmt(rs.map((r) => r.reaped).filter((x) => x >= 0))}, left ${rs.filter((r) => r.left).length}, holder CPU ${fmt(rs.map((r) => r.cpu))}`));
  if (process.env.TRACE) console.log(`        traced: kill→EOF made available ${fmt(rs.map((r) => r.avail).filter((x) => x >= 0))}; kill→teardown done (last exit_mmap) ${fmt(rs.map((r) => r.teardown).filter((x) => x >= 0))}`);
  console.log(`        ${rs.at(-1).mem}`);
}
console.log(`load after ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
