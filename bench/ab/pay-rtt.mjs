// Round-trip time of each 64 KiB echo, for one transport in this process (the scenario's caller, without the
// rate): PAYLOAD_TRANSPORTS[KIND] of DIST, WARMUP (3000) untimed echoes, then RUNS (5) runs of ECHOES (768), and
// per run the p10 / p50 / p90 of the echo's round trip in µs plus this process's and the peer's CPU µs per echo.
// On a loaded machine the low percentiles still show the round trip's own path (an echo that nothing preempted),
// where the mean rate mostly shows the waits for a CPU. Prints one JSON line.
// PAY_BYTES: the payload's size (default 65536), e.g. 1048576 or 16777216 with fewer ECHOES and WARMUP.
// node bench/ab/pay-rtt.mjs DIST KIND
const [dist, kind] = process.argv.slice(2);
const { PAYLOAD_TRANSPORTS } = await import(`${dist}/bench/common/payload-echo.js`);
const { cpuMicrosOf, ownCpuMicros } = await import(`${dist}/bench/common/proc.js`);
const t = await PAYLOAD_TRANSPORTS[kind]();
const data = Buffer.alloc(Number(process.env.PAY_BYTES ?? 65536), 7);
for (let i = 0; i < Number(process.env.WARMUP ?? 3000); i++) {
  const back = await t.call('bytes', { data });
  t.done?.(back);
}
const echoes = Number(process.env.ECHOES ?? 768);
const rtt = new Float64Array(echoes);
const runs = [];
for (let r = 0; r < Number(process.env.RUNS ?? 5); r++) {
  const s0 = ownCpuMicros(), p0 = t.peerPid === undefined ? 0 : cpuMicrosOf(t.peerPid);
  for (let i = 0; i < echoes; i++) {
    const a = performance.now();
    const back = await t.call('bytes', { data });
    rtt[i] = (performance.now() - a) * 1000;
    t.done?.(back);
  }
  const sorted = Float64Array.from(rtt).sort();
  const at = (p) => Math.round(sorted[Math.floor(p * (echoes - 1))]);
  runs.push({ p10: at(0.1), p50: at(0.5), p90: at(0.9), self: Math.round((ownCpuMicros() - s0) / echoes), peer: t.peerPid === undefined ? 0 : Math.round((cpuMicrosOf(t.peerPid) - p0) / echoes) });
}
console.log(JSON.stringify({ kind, dist, runs }));
await t.close();
process.exit(0);
