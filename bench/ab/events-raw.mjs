// Events, bulkhead vs the raw socketpair + cbor-x baseline, side by side: CPU per event of each side
// (this process = the receiver, peer = the emitting child), write/read syscalls per event, and the rate.
// node bench/ab/events-raw.mjs DIST [N=400000] [ROUNDS=5] [BURST=50000]   (ABNODE is not used: run it with the node to measure)
const [dist, nStr = '400000', roundsStr = '5', burstStr = '50000'] = process.argv.slice(2);
const n = Number(nStr), rounds = Number(roundsStr), burstSize = Number(burstStr);
const { bulkheadTransport, rawCborTransport } = await import(`${dist}/bench/common/transports.js`);
const { cpuMicrosOf, ownCpuMicros } = await import(`${dist}/bench/common/proc.js`);
const { readFileSync } = await import('node:fs');
const io = (pid) => Object.fromEntries(readFileSync(`/proc/${pid}/io`, 'utf8').trim().split('\n').map((l) => l.split(': ')).map(([k, v]) => [k, Number(v)]));
const ts = [await bulkheadTransport('bulkhead'), await rawCborTransport(false)];
async function run(t, count) {
  const before = t.events;
  for (let done = 0; done < count; done += burstSize) await t.call('burst', { count: burstSize });
  if (t.events - before < count) throw new Error('events lost');
}
for (const t of ts) await run(t, Math.min(n, 100000));
const res = new Map(ts.map((t) => [t, []]));
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < ts.length; i++) {
    const t = ts[(i + r) % ts.length];
    const peer = t.peerPid;
    const i0 = io(process.pid), j0 = io(peer), s0 = ownCpuMicros(), p0 = cpuMicrosOf(peer), w0 = performance.now();
    await run(t, n);
    const wall = (performance.now() - w0) / 1000;
    const i1 = io(process.pid), j1 = io(peer);
    res.get(t).push({ self: (ownCpuMicros() - s0) / n, peer: (cpuMicrosOf(peer) - p0) / n, sw: (i1.syscw - i0.syscw) / n, sr: (i1.syscr - i0.syscr) / n, pw: (j1.syscw - j0.syscw) / n, pr: (j1.syscr - j0.syscr) / n, rate: n / wall });
  }
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const rb = res.get(ts[0]), rr = res.get(ts[1]);
for (const [t, rs] of res) {
  console.log(`${t.name.padEnd(22)} receiver ${med(rs.map((x) => x.self)).toFixed(3)} µs  emitter ${med(rs.map((x) => x.peer)).toFixed(3)} µs  rate ${(med(rs.map((x) => x.rate)) / 1000).toFixed(0)}k/s  emitter writes/event ${med(rs.map((x) => x.pw)).toFixed(4)}  receiver reads/event ${med(rs.map((x) => x.sr)).toFixed(4)}  [rates ${rs.map((x) => (x.rate / 1000).toFixed(0)).join(' ')}]`);
}
console.log(`rate ratio per round: ${rb.map((x, i) => (x.rate / rr[i].rate).toFixed(2)).join(' ')}  median ${med(rb.map((x, i) => x.rate / rr[i].rate)).toFixed(2)}`);
for (const t of ts) await t.close();
process.exit(0);
