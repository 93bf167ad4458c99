// Round seven (issue 19): where kill → EOF → reply goes for a real prewarmed helper, from tracefs (an instance of
// its own, so nothing else is disturbed; needs root) around each external SIGKILL of the echo helper's node. Per crash:
// the node's memory and threads before the kill; from the kill (a trace_marker written just before process.kill):
// node's first / last thread entering do_exit (sched_process_exit, which on Linux ≥ 6.16 fires before exit_mm),
// exit_mmap's end, the helper tree's first wake-up of the broker (the EOF), the takeover event, the first call
// rejected, the spare waking the broker (its reply), the reply; and on-CPU time (sched_switch) of the dying tree
// (kill + 50 ms), of the broker's main thread (EOF → reply) and of the spare (takeover → reply). Medians on one line.
// ROWS=1 prints every crash; RAW=2,3 prints the events of those crashes; WINDOWS=f.json writes [kill, reply] in
// CLOCK_MONOTONIC µs (to cut a --cpu-prof of this process to the crash windows). A dist with globalThis.__M?.("B …")
// marks adds them to the medians.
// usage: [IDLE=1] [PROFILE=pure-compute] [NODEARGS='--flag ...'] node teardown-trace.mjs BUILD_DIR N
import { readFileSync, writeFileSync, mkdirSync, rmdirSync, openSync, writeSync, readdirSync, closeSync } from 'node:fs';
const WT = process.argv[2];
const N = Number(process.argv[3] ?? 10);
const { Broker, isBulkheadError } = await import(`${WT}/dist/lib/index.js`);
const MSG = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };
const T = `/sys/kernel/tracing/instances/r4-${process.pid}`;
mkdirSync(T);
const w = (f, v) => writeFileSync(`${T}/${f}`, v);
w('buffer_size_kb', '4096');
w('events/signal/signal_generate/filter', 'sig == 9');
for (const e of ['signal/signal_generate', 'sched/sched_process_exit', 'mmap/exit_mmap', 'sched/sched_waking', 'sched/sched_switch']) w(`events/${e}/enable`, '1');
w('events/sched/sched_waking/filter', '0');
w('tracing_on', '0');
const marker = openSync(`${T}/trace_marker`, 'w');
// The instance goes however the run ends (a failed call, Ctrl-C): its events off, then removed.
const removeInstance = () => {
  globalThis.__M = undefined;
  try {
    w('tracing_on', '0');
    for (const e of ['signal/signal_generate', 'sched/sched_process_exit', 'mmap/exit_mmap', 'sched/sched_waking', 'sched/sched_switch']) w(`events/${e}/enable`, '0');
    closeSync(marker);
    rmdirSync(T);
  } catch { /* removed already */ }
};
process.on('exit', removeInstance);
process.on('SIGINT', () => process.exit(130));
const mark = (s) => { try { writeSync(marker, s); } catch {} };
globalThis.__M = mark;
const broker = new Broker({ root: `${WT}/bench/fixtures/` });
const profile = process.env.PROFILE;
broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.bench.echo', ...(profile ? { sandbox: profile } : {}), ...(process.env.NODEARGS ? { nodeArgs: process.env.NODEARGS.split(' ') } : {}), launch: { throttleMs: 0, maxRestarts: 10000, prewarm: true } });
const c = broker.connect('echo');
await c.call('echo', MSG);
broker.on('takeover', () => mark('takeover'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const kids = (p) => { try { return readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; } };
const tree = (pid) => { const all = [pid]; for (let i = 0; i < all.length; i++) all.push(...kids(all[i])); return all; };
const isNode = (p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[0].endsWith('node'); } catch { return false; } };
const status = (p) => { const t = readFileSync(`/proc/${p}/status`, 'utf8'); const f = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)?.[1]); return { rss: f('VmRSS'), anon: f('RssAnon'), file: f('RssFile'), pte: f('VmPTE'), vm: f('VmSize'), threads: f('Threads') }; };
const rows = [];
const windows = [];
for (let i = 0; i < N; i++) {
  while (broker.status('echo').sparePid === null) await sleep(2);
  await sleep(30);
  const pid = broker.status('echo').pid;
  const sparePids = tree(broker.status('echo').sparePid);
  const spareTids = new Set(sparePids.flatMap((p) => { try { return readdirSync(`/proc/${p}/task`).map(Number); } catch { return [p]; } }));
  const all = tree(pid);
  const target = all.find(isNode) ?? pid;
  const mem = status(target);
  const nodeTids = new Set(readdirSync(`/proc/${target}/task`).map(Number));
  const tids = new Set(all.flatMap((p) => { try { return readdirSync(`/proc/${p}/task`).map(Number); } catch { return [p]; } }));
  w('trace', '');
  w('tracing_on', '1');
  mark('kill');
  const hrKill = process.hrtime.bigint();
  let hrReply;
  process.kill(target, 'SIGKILL');
  // IDLE=1: a crash with no call in flight (a clean EOF, not ECONNRESET): the call is made at the takeover.
  if (process.env.IDLE) await new Promise((resolve) => { const sub = broker.on('takeover', () => { sub.dispose(); resolve(); }); });
  for (;;) {
    try { mark('call'); await c.call('echo', MSG); mark('reply'); hrReply = process.hrtime.bigint(); if (broker.status('echo').pid !== pid) break; }
    catch (e) { if (!isBulkheadError(e) || e.code !== 'ERR_INTERRUPTED') throw e; mark('rejected'); }
  }
  windows.push([Number(hrKill / 1000n), Number(hrReply / 1000n)]);
  await sleep(20);
  w('tracing_on', '0');
  const text = readFileSync(`${T}/trace`, 'utf8');
  // e.g. "  node-123  [001] d..2. 1234.567890: sched_process_exit: comm=node pid=123 ..."
  const ev = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(.+?)-(\d+)\s+\[(\d+)\].*?\s(\d+\.\d+):\s+(\w+):\s*(.*)$/.exec(line);
    if (m) ev.push({ comm: m[1], pid: Number(m[2]), cpu: Number(m[3]), t: Number(m[4]) * 1000, name: m[5], msg: m[6] });
  }
  const t0 = ev.find((e) => e.name === 'tracing_mark_write' && e.msg.startsWith('kill'))?.t;
  const at = (pred) => { const e = ev.find(pred); return e === undefined ? NaN : +(e.t - t0).toFixed(3); };
  const last = (pred) => { const e = ev.findLast(pred); return e === undefined ? NaN : +(e.t - t0).toFixed(3); };
  if (process.env.RAW && process.env.RAW.split(',').includes(String(i))) {
    console.log('--- crash', i);
    const who = (p) => (p === process.pid ? 'BROKER' : tids.has(p) ? 'DYING' : spareTids.has(p) ? 'SPARE' : null);
    for (const e of ev) {
      const rel = (e.t - t0).toFixed(3);
      if (e.name === 'sched_switch') {
        const m = /prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.+?) next_pid=(\d+)/.exec(e.msg);
        const a = who(Number(m[1])), b = who(Number(m[4]));
        if (a || b) console.log(rel, `cpu${e.cpu}`, 'switch', a ?? e.comm, m[2], '->', b ?? m[3]);
      } else if (e.name === 'sched_waking') {
        const wp = Number(/ pid=(\d+)/.exec(e.msg)?.[1]);
        if (who(wp) || who(e.pid)) console.log(rel, `cpu${e.cpu}`, who(e.pid) ?? e.comm, 'wakes', who(wp) ?? wp);
      } else console.log(rel, `cpu${e.cpu}`, who(e.pid) ?? e.comm, e.name, e.msg.slice(0, 80));
    }
  }
  // On-CPU time of a set of tids between two trace times (from sched_switch).
  const cpuTime = (set, from, to) => {
    const since = new Map(); let sum = 0;
    for (const e of ev) {
      if (e.name !== 'sched_switch') continue;
      const m = /prev_pid=(\d+) .*next_pid=(\d+)/.exec(e.msg); const prev = Number(m[1]), next = Number(m[2]);
      const s0 = since.get(e.cpu);
      if (s0 !== undefined && set.has(prev)) sum += Math.max(0, Math.min(e.t, to) - Math.max(s0, from));
      since.set(e.cpu, set.has(next) ? e.t : undefined);
    }
    return +sum.toFixed(3);
  };
  const exits = ev.filter((e) => e.name === 'sched_process_exit' && nodeTids.has(e.pid));
  const dyingPids = new Set(exits.map((e) => e.pid));
  rows.push({
    mem,
    procs: all.length,
    firstExit: exits.length ? +(exits[0].t - t0).toFixed(3) : NaN,
    lastExit: exits.length ? +(exits.at(-1).t - t0).toFixed(3) : NaN,
    nExits: exits.length,
    exitMmap: at((e) => e.name === 'exit_mmap' && nodeTids.has(e.pid)),
    wakeBroker: at((e) => e.name === 'sched_waking' && tids.has(e.pid) && / pid=(\d+)/.exec(e.msg)?.[1] === String(process.pid)),
    wakeBy: ev.find((e) => e.name === 'sched_waking' && tids.has(e.pid) && / pid=(\d+)/.exec(e.msg)?.[1] === String(process.pid))?.comm,
        ...Object.fromEntries(['B child exit', 'B exiting', 'B replacedExited', 'B exit resolved', 'B end', 'B closed', 'B lost', 'B certain', 'B adopted', 'B failAtClose', 'B interruptAtClose done', 'rejected', 'B env reply'].map((k) => [k, at((e) => e.name === 'tracing_mark_write' && e.msg.startsWith(k))])),
    spareIn: at((e) => e.name === 'sched_switch' && spareTids.has(Number(/next_pid=(\d+)/.exec(e.msg)?.[1])) && e.t > (ev.find((x) => x.msg.startsWith('rejected'))?.t ?? Infinity)),
    spareWakesBroker: at((e) => e.name === 'sched_waking' && spareTids.has(e.pid) && / pid=(\d+)/.exec(e.msg)?.[1] === String(process.pid)),
    takeover: at((e) => e.name === 'tracing_mark_write' && e.msg.startsWith('takeover')),
    dyingCpu: cpuTime(tids, t0, t0 + 50),
    brokerCpu: (() => { const w = ev.find((e) => e.name === 'sched_waking' && tids.has(e.pid) && / pid=(\d+)/.exec(e.msg)?.[1] === String(process.pid)); const r = ev.findLast((e) => e.msg.startsWith('reply')); return w && r ? cpuTime(new Set([process.pid]), w.t, r.t) : NaN; })(),
    spareCpu: (() => { const w = ev.find((e) => e.msg.startsWith('takeover')); const r = ev.findLast((e) => e.msg.startsWith('reply')); return w && r ? cpuTime(spareTids, w.t, r.t) : NaN; })(),
    reply: last((e) => e.name === 'tracing_mark_write' && e.msg.startsWith('reply')),
  });
}
await broker.close();
const med = (k) => { const x = rows.map((r) => (typeof k === 'function' ? k(r) : r[k])).filter((v) => !Number.isNaN(v)).sort((p, q) => p - q); return x[Math.floor(x.length / 2)]; };
const summary = { node: process.version, profile: profile ?? 'none', nodeArgs: process.env.NODEARGS ?? '', n: N, load: readFileSync('/proc/loadavg', 'utf8').split(' ')[0] };
for (const k of Object.keys(rows[0]).filter((k) => k !== 'mem' && k !== 'wakeBy')) summary[k] = med(k);
for (const k of ['rss', 'anon', 'file', 'pte', 'vm', 'threads']) summary[k] = med((r) => r.mem[k]);
summary.wakeBy = rows.map((r) => r.wakeBy).join(',');
console.log(JSON.stringify(summary));
if (process.env.WINDOWS) writeFileSync(process.env.WINDOWS, JSON.stringify(windows));
if (process.env.ROWS) for (const r of rows) console.log(JSON.stringify(r));
