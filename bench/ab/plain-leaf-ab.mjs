// describeNonPlain CPU per value, build A vs build B in one process, alternating (AB, BA, ...):
//   node bench/ab/plain-leaf-ab.mjs DIST_A DIST_B [rounds] [payload]   (one payload: a process of its own, no type feedback from the others)
// Round eleven (health11): A keeps the string/number leaf inline in findNonPlain's array and map loops
// (round ten, 4b0b370), B shares it through a small function (countedLeaf). Prints per payload the median
// CPU ns of each and the median of the per-round B/A ratios, with the load average.
import { loadavg } from 'node:os';
const [distA, distB, roundsArg, only] = process.argv.slice(2);
const A = await import(`${distA}/lib/wire/plain-check.js`);
const B = await import(`${distB}/lib/wire/plain-check.js`);
const ROUNDS = Number(roundsArg ?? 15);
const payloads = {
  // The bench's message (round ten's micro).
  message: { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] },
  // Leaf-heavy: 40 rows of strings and numbers in maps and arrays.
  rows: { rows: Array.from({ length: 40 }, (_, i) => ({ id: i, name: `item${i}`, score: i * 1.5, tags: ['x', 'yy'] })) },
  // A flat array of numbers.
  numbers: Array.from({ length: 256 }, (_, i) => (i * 7919) % 100000),
};
const N = { message: 400000, rows: 8000, numbers: 20000 };
function run(M, value, n) {
  // CPU time, not wall: on a shared machine a preempted run would read slow.
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) if (M.describeNonPlain(value, M.newPlainTally()) !== undefined) throw new Error('not plain');
  const c = process.cpuUsage(c0);
  return ((c.user + c.system) * 1000) / n;
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
// Same answers, same tallies.
for (const value of Object.values(payloads)) {
  const ta = A.newPlainTally(), tb = B.newPlainTally();
  A.describeNonPlain(value, ta); B.describeNonPlain(value, tb);
  if (JSON.stringify(ta) !== JSON.stringify(tb)) throw new Error('tallies differ');
}
for (const [name, value] of Object.entries(payloads)) {
  if (only !== undefined && name !== only) continue;
  const n = N[name];
  run(A, value, n); run(B, value, n); // warm up
  const ra = [], rb = [], ratio = [];
  for (let r = 0; r < ROUNDS; r++) {
    let a, b;
    if (r % 2 === 0) { a = run(A, value, n); b = run(B, value, n); } else { b = run(B, value, n); a = run(A, value, n); }
    ra.push(a); rb.push(b); ratio.push(b / a);
  }
  console.log(`node ${process.versions.node} ${name.padEnd(8)} A inline ${med(ra).toFixed(1)} ns  B shared ${med(rb).toFixed(1)} ns  B/A median ${med(ratio).toFixed(3)} (range ${Math.min(...ratio).toFixed(3)}-${Math.max(...ratio).toFixed(3)})  load ${loadavg()[0].toFixed(1)}`);
}
