// The raw socket baseline's 64 KiB echo alone in a process (the counterpart of worker.mjs bytes64k), for perf/strace of
// its child. node bench/ab/raw-worker.mjs DIST N -> JSON: CPU µs per echo of this process (self) and the child (peer), rate.
const [dist, nStr] = process.argv.slice(2);
const n = Number(nStr);
const { rawBytesTransport } = await import(`${dist}/bench/common/transports.js`);
const { cpuMicrosOf, ownCpuMicros } = await import(`${dist}/bench/common/proc.js`);
const t = await rawBytesTransport();
const data = Buffer.alloc(64 * 1024, 7);
const run = async (count) => { for (let i = 0; i < count; i++) await t.call('bytes', { data }); };
await run(Math.min(n, 20000));
if (process.env.READY_FILE) (await import('node:fs')).writeFileSync(process.env.READY_FILE, String(t.peerPid));
const s0 = ownCpuMicros(), p0 = cpuMicrosOf(t.peerPid), w0 = performance.now();
await run(n);
const wall = (performance.now() - w0) / 1000;
console.log(JSON.stringify({ self: (ownCpuMicros() - s0) / n, peer: (cpuMicrosOf(t.peerPid) - p0) / n, rate: n / wall }));
await t.close();
process.exit(0);
