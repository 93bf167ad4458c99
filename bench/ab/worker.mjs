// A/B of CPU per operation: one bulkhead broker + echo helper (bench/fixtures) from the build in DIST.
// node bench/ab/worker.mjs DIST calls|bursts|rtt|events|bytes64k|bytes1m|bytes64krel|bytes1mrel|text64k N  -> JSON: CPU µs per op of this process (self) and the helper (peer), their sys part, write/read syscalls per op, rate.
// HELPER_ARGS="--perf-basic-prof" passes node flags to the helper (for perf record).
// Usage: node worker.mjs DIST WORKLOAD N  -> prints JSON {self, peer, rate} per-op CPU µs
const [dist, workload, nStr] = process.argv.slice(2);
const n = Number(nStr);
const { bulkheadTransport } = await import(`${dist}/bench/common/transports.js`);
const { cpuMicrosOf, ownCpuMicros } = await import(`${dist}/bench/common/proc.js`);
const { MESSAGE } = await import(`${dist}/bench/common/transports.js`);
const releaseBytes = (await import(`${dist}/lib/index.js`)).releaseBytes ?? (() => false);
const t = await bulkheadTransport('b', process.env.HELPER_ARGS ? { nodeArgs: process.env.HELPER_ARGS.split(' ') } : {});
const peer = t.peerPid;
const data64 = Buffer.alloc(64 * 1024, 7);
const data1m = Buffer.alloc(1024 * 1024, 7);
const text64 = { name: 'x'.repeat(64 * 1024), n: 1, tags: [] };
async function run(count) {
  if (workload === 'calls') {
    let sent = 0;
    const lane = async () => { while (sent < count) { sent++; await t.call('echo', MESSAGE); } };
    await Promise.all(Array.from({ length: 256 }, lane));
  } else if (workload === 'bursts') {
    // Bursts of 64 calls, each burst awaited whole: one write of 64 calls, and their replies come back in one
    // read whatever the two processes' speeds (under callgrind too), so instruction counts do not move with
    // how the batching fell (calls' 256 lanes batch by timing). Per call as pipelined as the bench's 256 lanes.
    for (let done = 0; done < count; done += 64) await Promise.all(Array.from({ length: Math.min(64, count - done) }, () => t.call('echo', MESSAGE)));
  } else if (workload === 'rtt') {
    for (let i = 0; i < count; i++) await t.call('echo', MESSAGE);
  } else if (workload === 'events') {
    const before = t.events;
    for (let done = 0; done < count; done += 10000) await t.call('burst', { count: 10000 });
    if (t.events - before < count) throw new Error('events lost');
  } else if (workload === 'bytes64k') {
    for (let i = 0; i < count; i++) await t.call('bytes', { data: data64 });
  } else if (workload === 'bytes1m') {
    for (let i = 0; i < count; i++) await t.call('bytes', { data: data1m });
  } else if (workload === 'text64k') {
    // A 64 KiB text echoed (no byte string): the body is decoded into a fresh string, so it can go back to the pool.
    for (let i = 0; i < count; i++) await t.call('echo', text64);
  } else if (workload === 'bytes64krel' || workload === 'bytes1mrel') {
    // The caller gives each result back with releaseBytes (a build without it: nothing to give back).
    const data = workload === 'bytes64krel' ? data64 : data1m;
    for (let i = 0; i < count; i++) releaseBytes((await t.call('bytes', { data })).data);
  }
}
await run(Number(process.env.WARM ?? Math.min(n, 20000))); // warm-up

const { readFileSync } = await import('node:fs');
const io = (pid) => Object.fromEntries(readFileSync(`/proc/${pid}/io`, 'utf8').trim().split('\n').map((l) => l.split(': ')).map(([k, v]) => [k, Number(v)]));
const st = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8'); const x = f.slice(f.lastIndexOf(')') + 2).split(' '); return [Number(x[11]) * 1e4, Number(x[12]) * 1e4]; };
const u0 = process.cpuUsage(), q0 = st(peer);
const i0 = io(process.pid), j0 = io(peer);
// CG_WINDOW=1 under valgrind callgrind: the counters are zeroed right before the measured calls and dumped right
// after them (callgrind_control), so the dump holds those calls alone, not start-up or the warm-up's compiles;
// a first, empty window (dump .1) is what the zero and dump themselves cost, to subtract from the second (.2).
const cg = process.env.CG_WINDOW === '1' ? (await import('node:child_process')).execFileSync : undefined;
cg?.('callgrind_control', ['-z', String(process.pid)], { stdio: 'ignore' });
cg?.('callgrind_control', ['-d', String(process.pid)], { stdio: 'ignore' });
cg?.('callgrind_control', ['-z', String(process.pid)], { stdio: 'ignore' });
const s0 = ownCpuMicros(), p0 = cpuMicrosOf(peer), w0 = performance.now();
await run(n);
cg?.('callgrind_control', ['-d', String(process.pid)], { stdio: 'ignore' });
const wall = (performance.now() - w0) / 1000;
const i1 = io(process.pid), j1 = io(peer);
const u1 = process.cpuUsage(u0), q1 = st(peer);
const out = { pid: process.pid, peerPid: peer, selfSys: u1.system / n, peerSys: (q1[1] - q0[1]) / n,  sw: (i1.syscw - i0.syscw) / n, sr: (i1.syscr - i0.syscr) / n, pw: (j1.syscw - j0.syscw) / n, pr: (j1.syscr - j0.syscr) / n,  self: (ownCpuMicros() - s0) / n, peer: (cpuMicrosOf(peer) - p0) / n, rate: n / wall };
await t.close();
console.log(JSON.stringify(out));
process.exit(0);
