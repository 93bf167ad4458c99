// Does the bench's pin → unpin (bench/common/pin.ts) leave a pipelined pair on one CPU? Rate and CPUs busy, never pinned vs after pin + unpin.
// node bench/ab/pin-probe.mjs DIST [raw]   (NOPIN=1: no pinning at all, the control; SPREAD=1: pin self and peer apart before unpinning)
// Round seven: before bench/common/pin.ts counted its CPUs at load, "after pin + unpin" read 1.00 CPUs (both processes left on CPU 0).
const d = process.argv[2];
const { bulkheadTransport, rawCborTransport, MESSAGE } = await import(`${d}/bench/common/transports.js`);
const { pin, unpin } = await import(`${d}/bench/common/pin.js`);
const { cpuMicrosOf, ownCpuMicros } = await import(`${d}/bench/common/proc.js`);
const t = process.argv[3] === 'raw' ? await rawCborTransport(true) : await bulkheadTransport('b');
async function run(n) {
  let sent = 0;
  const lane = async () => { while (sent < n) { sent++; await t.call('echo', MESSAGE); } };
  const s0 = ownCpuMicros(), p0 = cpuMicrosOf(t.peerPid), w0 = performance.now();
  await Promise.all(Array.from({ length: 256 }, lane));
  const wall = performance.now() - w0;
  return { rate: Math.round(n / wall * 1000), cpus: ((ownCpuMicros() - s0 + cpuMicrosOf(t.peerPid) - p0) / 1000 / wall).toFixed(2) };
}
await run(50000);
for (let r = 0; r < 3; r++) {
  const free = await run(100000);
  if (!process.env.NOPIN) pin([process.pid, t.peerPid], r % 2);
  for (let i = 0; i < 2000; i++) await t.call('echo', MESSAGE);
  if (!process.env.NOPIN) unpin([process.pid, t.peerPid]);
  if (process.env.SPREAD) { pin([process.pid], 0); pin([t.peerPid], 1); unpin([process.pid, t.peerPid]); }
  const after = await run(100000);
  console.log(`${t.name}: never pinned ${free.rate}/s (${free.cpus} CPUs)  after pin+unpin ${after.rate}/s (${after.cpus} CPUs)`);
}
await t.close(); process.exit(0);
