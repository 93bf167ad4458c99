// Pinned sequential round trips of bulkhead builds and the raw floor side by side in one process (what small-calls'
// "pinned p50" measures), with CPU per call of this process and each helper over the measured calls.
// node bench/ab/rtt-pinned.mjs N ROUNDS DIST_A [DIST_B ...]   (RAW=0 leaves the raw floor out)
// Each round: every transport pinned (all threads) to CPU round % 2, N calls each, order rotated; medians of rounds.
const [nStr, roundsStr, ...dists] = process.argv.slice(2);
const n = Number(nStr), rounds = Number(roundsStr);
const first = dists[0];
const { rawCborTransport, bulkheadTransport, MESSAGE } = await import(`${first}/bench/common/transports.js`);
const { ownCpuMicros } = await import(`${first}/bench/common/proc.js`);
const { readFileSync, readdirSync } = await import('node:fs');
// ns-precise CPU of every thread of pid (schedstat), as µs: /proc/pid/stat counts 10 ms ticks.
const cpuMicrosOf = (pid) => readdirSync(`/proc/${pid}/task`).reduce((a, t) => { try { return a + Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]) / 1000; } catch { return a; } }, 0);
const { pin, unpin, cpuForRound } = await import(`${first}/bench/common/pin.js`);
const ts = [];
for (const d of dists) ts.push({ name: d, t: await (await import(`${d}/bench/common/transports.js`)).bulkheadTransport(d) });
if (process.env.RAW !== '0') ts.push({ name: 'raw records', t: await rawCborTransport(true) });
const seq = async (t, count) => {
  const s = new Float64Array(count);
  for (let i = 0; i < count; i++) { const a = process.hrtime.bigint(); await t.call('echo', MESSAGE); s[i] = Number(process.hrtime.bigint() - a) / 1000; }
  s.sort(); return s[count >> 1];
};
for (const { t } of ts) await seq(t, 5000);
const res = new Map(ts.map((x) => [x.name, { p50: [], self: [], peer: [] }]));
for (let r = 0; r < rounds; r++) {
  const peers = ts.map((x) => x.t.peerPid).filter((p) => p !== undefined);
  pin([process.pid, ...peers], cpuForRound(r));
  try {
    for (let i = 0; i < ts.length; i++) {
      const { name, t } = ts[(i + r) % ts.length];
      const s0 = ownCpuMicros(), p0 = cpuMicrosOf(t.peerPid);
      const p50 = await seq(t, n);
      const o = res.get(name);
      o.p50.push(p50); o.self.push((ownCpuMicros() - s0) / n); o.peer.push((cpuMicrosOf(t.peerPid) - p0) / n);
    }
  } finally { unpin([process.pid, ...peers]); }
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const rawP = res.get('raw records')?.p50;
for (const [name, o] of res) {
  const ratio = rawP && name !== 'raw records' ? `  ratio ${med(o.p50.map((v, i) => v / rawP[i])).toFixed(3)} [${o.p50.map((v, i) => (v / rawP[i]).toFixed(2)).join(' ')}]` : '';
  console.log(`${name}: p50 ${med(o.p50).toFixed(2)} µs  self ${med(o.self).toFixed(2)}  peer ${med(o.peer).toFixed(2)} µs/call${ratio}  [p50 ${o.p50.map((v) => v.toFixed(1)).join(' ')}]`);
}
for (const { t } of ts) await t.close();
process.exit(0);
