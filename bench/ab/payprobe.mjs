// Probe of the payloads scenario's instrument: caller processes (bench/scenarios/payloads-process.js) of the
// given kinds (KIND@dist=PATH: from another build; KIND@VAR=v: with extra environment), each forked with PROBE_ARGS node flags (e.g. --trace-gc) and its stdout in OUT/<kind>.log; runs
// the sizes given, interleaved and rotated per round as the scenario does, and prints per run: MB/s, the
// caller's and its peer's CPU µs per echo (10 ms ticks from /proc), their voluntary context switches per echo, and the
// caller's scavenges / mark-compacts during the run with their logged ms (only with PROBE_ARGS=--trace-gc).
// PROBE_WARMUP=n: the warm-up's echoes of 64 KiB (default 16, the scenario's before round seven; it now uses 3000).
// PROBE_SPLIT=k: each 64 KiB run as k sub-runs. PROBE_WINDOWS=file: appends "pid size start end" (µs, CLOCK_MONOTONIC,
// as --cpu-prof's timestamps) per run, to cut a caller's --cpu-prof down to the runs of one size.
// node bench/ab/payprobe.mjs DIST OUT ROUNDS SIZES(65536,1048576,...) ECHOES64K KINDS(bulkhead,raw)
import { fork } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
const [dist, out, roundsS, sizesS, echoes64S, kindsS] = process.argv.slice(2);
const sizes = sizesS.split(',').map(Number);
const kinds = (kindsS ?? 'bulkhead,raw').split(',');
const flags = (process.env.PROBE_ARGS ?? '').split(' ').filter(Boolean);
const echoesOf = (size) => (size === 65536 ? Number(echoes64S) : Math.max(3, Math.round((48 * 1024 * 1024) / size)));
const ticks = (pid) => { try { const f = readFileSync(`/proc/${pid}/stat`, 'utf8'); const x = f.slice(f.lastIndexOf(')') + 2).split(' '); return (Number(x[11]) + Number(x[12])) * 1e4; } catch { return 0; } };
const csw = (pid) => { try { const t = readFileSync(`/proc/${pid}/status`, 'utf8'); return Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(t)[1]); } catch { return 0; } };
const children = (pid) => { try { return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; } };
const gcs = (kind) => {
  const lines = readFileSync(`${out}/${kind.replaceAll('/', '_')}.log`, 'utf8').split('\n');
  const ms = (re) => lines.filter((l) => re.test(l)).reduce((a, l) => a + Number(/MB, (?:pooled: \S+ MB, )?([\d.]+) \//.exec(l)?.[1] ?? 0) + Number(/\+ ([\d.]+) ms in/.exec(l)?.[1] ?? 0), 0);
  return { sc: lines.filter((l) => /Scavenge/.test(l)).length, mc: lines.filter((l) => /Mark-Compact/.test(l)).length, scMs: ms(/Scavenge/), mcMs: ms(/Mark-Compact/) };
};
const callers = [];
for (const kind of kinds) {
  // KIND@VAR=v+VAR2=w: the transport KIND with extra environment variables (side-by-side variants of one build);
  // KIND@dist=PATH: the caller (and so its helper) from another build's dist/ (old vs new, side by side).
  const [transport, extra] = kind.split('@');
  const vars = Object.fromEntries((extra ?? '').split('+').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const from = vars.dist ?? dist;
  delete vars.dist;
  const env = { ...process.env, ...vars };
  const fd = openSync(`${out}/${kind.replaceAll('/', '_')}.log`, 'w');
  const child = fork(`${from}/bench/scenarios/payloads-process.js`, [transport], { env, execArgv: flags, stdio: ['ignore', fd, fd, 'ipc'] });
  let waiting;
  child.on('message', (m) => { const w = waiting; waiting = undefined; w?.(m); });
  const ask = (req) => new Promise((r) => { waiting = r; if (req) child.send(req); });
  const ready = await ask();
  callers.push({ kind, child, ask, name: ready.name });
}
for (const c of callers) await c.ask({ op: 'warmup', echoes: Number(process.env.PROBE_WARMUP ?? 16) });
const rows = [];
for (let round = 0; round < Number(roundsS); round++) {
  for (const size of sizes) {
    const order = callers.map((_, i) => callers[(i + round) % callers.length]);
    for (const c of order) {
      const peer = children(c.child.pid)[0];
      const n = echoesOf(size);
      const g0 = gcs(c.kind), s0 = ticks(c.child.pid), p0 = ticks(peer), v0 = csw(c.child.pid), w0 = csw(peer);
      // PROBE_SPLIT=k: the run as k consecutive sub-runs (a rate each), to see where in a run the time goes.
      const k = size === 65536 ? Number(process.env.PROBE_SPLIT ?? 1) : 1;
      const subs = [];
      const t0 = process.hrtime.bigint() / 1000n;
      for (let j = 0; j < k; j++) subs.push((await c.ask({ op: 'rate', size, echoes: n / k })).rate);
      if (process.env.PROBE_WINDOWS) (await import('node:fs')).appendFileSync(process.env.PROBE_WINDOWS, `${c.child.pid} ${size} ${t0} ${process.hrtime.bigint() / 1000n}\n`);
      const m = { rate: k / subs.reduce((a, r) => a + 1 / r, 0) };
      if (k > 1) console.log(`   ${c.kind} sub-runs: ${subs.map((r) => r.toFixed(0)).join(' ')}`);
      const g1 = gcs(c.kind), s1 = ticks(c.child.pid), p1 = ticks(peer), v1 = csw(c.child.pid), w1 = csw(peer);
      rows.push({ round, size, kind: c.kind, rate: m.rate, self: (s1 - s0) / n, peer: (p1 - p0) / n, sc: g1.sc - g0.sc, mc: g1.mc - g0.mc });
      console.log(`r${round} ${String(size).padStart(8)} ${c.kind.padEnd(9)} ${m.rate.toFixed(0).padStart(5)} MB/s  cpu self ${((s1 - s0) / n).toFixed(0).padStart(5)} peer ${((p1 - p0) / n).toFixed(0).padStart(5)} µs/echo  csw ${((v1 - v0) / n).toFixed(2)}/${((w1 - w0) / n).toFixed(2)}  sc ${g1.sc - g0.sc} (${(g1.scMs - g0.scMs).toFixed(0)} ms) mc ${g1.mc - g0.mc} (${(g1.mcMs - g0.mcMs).toFixed(0)} ms)`);
    }
  }
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
for (const size of sizes) {
  const r = rows.filter((x) => x.size === size);
  const by = (k) => r.filter((x) => x.kind === k);
  // Each kind against the raw socket when it runs (else the second kind): median of the per-round ratios.
  const base = kinds.includes('raw') ? 'raw' : kinds[1];
  for (const k of kinds.filter((x) => x !== base)) {
    const ratios = by(k).map((x, i) => x.rate / by(base)[i].rate);
    console.log(`size ${size}: ${k}/${base} median ${(med(ratios) * 100).toFixed(0)}% [${ratios.map((x) => (x * 100).toFixed(0)).join(' ')}]; self ${med(by(k).map((x) => x.self)).toFixed(0)} [${by(k).map((x) => x.self.toFixed(0)).join(' ')}] peer ${med(by(k).map((x) => x.peer)).toFixed(0)} µs mc ${by(k).map((x) => x.mc).join('/')}`);
  }
  console.log(`size ${size}: ${base} ${med(by(base).map((x) => x.rate)).toFixed(0)} MB/s self ${med(by(base).map((x) => x.self)).toFixed(0)} peer ${med(by(base).map((x) => x.peer)).toFixed(0)} µs mc ${by(base).map((x) => x.mc).join('/')}`);
}
for (const c of callers) c.child.disconnect();
