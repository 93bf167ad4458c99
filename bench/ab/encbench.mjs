// plain-data check + encodeEnvelopeChunks CPU per small frame, build A vs build B: node bench/ab/encbench.mjs DIST_A DIST_B
const [distA, distB] = process.argv.slice(2);
const A = await import(`${distA}/lib/wire/envelope.js`);
const B = await import(`${distB}/lib/wire/envelope.js`);
const CA = await import(`${distA}/lib/wire/codec.js`);
const CB = await import(`${distB}/lib/wire/codec.js`);
const p = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };
const envs = [{ kind: 'event', callId: 0, name: 'tick', payload: p }, { kind: 'call', id: 12345, method: 'echo', params: p, meta: null }, { kind: 'reply', id: 12345, result: p }];
const N = 300000;
function run(M, C) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) { const e = envs[i % 3]; const t = C.newPlainTally?.(); C.describeNonPlain(p, t); M.encodeEnvelopeChunks(e, t !== undefined && t.large === 0); }
  const c = process.cpuUsage(c0); return (c.user + c.system) * 1000 / N;
}
const ra = [], rb = [];
for (let r = 0; r < 7; r++) { ra.push(run(A, CA)); rb.push(run(B, CB)); }
const med = (a) => [...a].sort((x, y) => x - y)[3];
console.log(`check+encode ns/frame: A ${med(ra).toFixed(0)}  B ${med(rb).toFixed(0)}  B/A ${(med(rb) / med(ra)).toFixed(3)}`);
