// decodeEnvelope CPU per small frame, build A vs build B in one process: node bench/ab/scanbench.mjs DIST_A DIST_B
const [distA, distB] = process.argv.slice(2);
const A = await import(`${distA}/lib/wire/envelope.js`);
const B = await import(`${distB}/lib/wire/envelope.js`);
const frames = [
  A.encodeEnvelope({ kind: 'event', callId: 0, name: 'tick', payload: { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] } }).subarray(4),
  A.encodeEnvelope({ kind: 'call', id: 12345, method: 'echo', params: { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] }, meta: null }).subarray(4),
  A.encodeEnvelope({ kind: 'reply', id: 12345, result: { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'], nested: { a: [1, 2, { b: 'c' }] } } }).subarray(4),
];
const N = 300000;
function run(M) { const c0 = process.cpuUsage(); for (let i = 0; i < N; i++) M.decodeEnvelope(frames[i % 3]); const c = process.cpuUsage(c0); return (c.user + c.system) * 1000 / N; }
const ra = [], rb = [];
for (let r = 0; r < 7; r++) { ra.push(run(A)); rb.push(run(B)); }
const med = (a) => [...a].sort((x, y) => x - y)[3];
console.log(`decodeEnvelope ns/frame: A ${med(ra).toFixed(0)}  B ${med(rb).toFixed(0)}  B/A ${(med(rb) / med(ra)).toFixed(3)}`);
