// What a helper does per direct call for the metrics batch (direct-server.ts's callStarted/callSettled hooks),
// before (always timed: Map entry, two clock reads, CallMeter.record) and after (unobserved: CallMeter.count only).
// node bench/ab/direct-hooks.mjs DIST timed|counted N: runs N calls (instructions: valgrind --tool=callgrind at two N, as cg.sh does).
// node bench/ab/direct-hooks.mjs DIST: CPU ns per call of each, twice, 2 M calls each.
const [dist, mode, nStr] = process.argv.slice(2);
const { CallMeter } = await import(`${dist}/lib/connection/call-meter.js`);

function run(which, n) {
  const meter = new CallMeter();
  const starts = new Map();
  let id = 0;
  const timed = () => { const call = ++id; starts.set(call, performance.now()); const at = starts.get(call); starts.delete(call); meter.record((performance.now() - at) / 1000, null); };
  const counted = () => { ++id; const at = starts.size === 0 ? undefined : starts.get(id); if (at === undefined) meter.count(null); };
  const f = which === 'timed' ? timed : counted;
  for (let i = 0; i < n; i++) { f(); if ((i & 1023) === 0) meter.take(); }
}

if (mode !== undefined) run(mode, Number(nStr));
else {
  for (const which of ['timed', 'counted', 'timed', 'counted']) {
    const n = 2_000_000;
    const c0 = process.cpuUsage();
    run(which, n);
    const c = process.cpuUsage(c0);
    console.log(which, ((c.user + c.system) * 1000 / n).toFixed(1), 'ns CPU/call');
  }
}
