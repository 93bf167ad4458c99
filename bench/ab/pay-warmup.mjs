// The JIT warm-up of one payload transport: its caller in this process (bulkhead embedded, or RAW=1 the raw socket baseline),
// 16 echoes of 64 KiB, optionally MID=n × 1 MiB and BIG=n × 16 MiB, then RUNS (8) runs of 768 × 64 KiB (the scenario's run); per run: MB/s,
// CPU µs per echo of this process / its peer, major GCs and GC ms (PerformanceObserver). HELPER_ARGS: node flags for bulkhead's helper.
// node bench/ab/pay-warmup.mjs DIST
const dist = process.argv[2];
const { bulkheadTransport, rawBytesTransport } = await import(`${dist}/bench/common/transports.js`);
const { cpuMicrosOf, ownCpuMicros } = await import(`${dist}/bench/common/proc.js`);
const { PerformanceObserver } = await import('node:perf_hooks');
let mc = 0, sc = 0, gcMs = 0;
new PerformanceObserver((l) => { for (const e of l.getEntries()) { if (e.detail?.kind === 4) mc++; else sc++; gcMs += e.duration; } }).observe({ entryTypes: ['gc'] });
const t = process.env.RAW ? await rawBytesTransport() : await bulkheadTransport('b', process.env.HELPER_ARGS ? { nodeArgs: process.env.HELPER_ARGS.split(' ') } : {});
const d64 = Buffer.alloc(65536, 7), d1m = Buffer.alloc(1 << 20, 7), d16 = Buffer.alloc(16 << 20, 7);
for (let i = 0; i < 16; i++) await t.call('bytes', { data: d64 });
for (let i = 0; i < Number(process.env.MID ?? 0); i++) await t.call('bytes', { data: d1m });
for (let i = 0; i < Number(process.env.BIG ?? 0); i++) await t.call('bytes', { data: d16 });
const out = [];
for (let r = 0; r < Number(process.env.RUNS ?? 8); r++) {
  const m0 = mc, g0 = gcMs, s0 = ownCpuMicros(), p0 = cpuMicrosOf(t.peerPid), w0 = performance.now();
  for (let i = 0; i < 768; i++) await t.call('bytes', { data: d64 });
  await new Promise((r) => setImmediate(r));
  out.push(`${(768 * 65536 / ((performance.now() - w0) / 1000) / 1e6).toFixed(0)}MB/s ${((ownCpuMicros() - s0) / 768).toFixed(0)}/${((cpuMicrosOf(t.peerPid) - p0) / 768).toFixed(0)}µs mc${mc - m0} gc${(gcMs - g0).toFixed(0)}ms`);
}
console.log(`${process.env.RAW ? 'raw' : 'bulkhead'} MID=${process.env.MID ?? 0} BIG=${process.env.BIG ?? 0}: ${out.join(' | ')}`);
await t.close(); process.exit(0);
