// copy + decodeEnvelope CPU per small frame (a fresh body per frame, as the channel hands them over), build A vs build B: node bench/ab/decbench.mjs DIST_A DIST_B
const [distA, distB] = process.argv.slice(2);
const A = await import(`${distA}/lib/wire/envelope.js`);
const B = await import(`${distB}/lib/wire/envelope.js`);
const p = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };
const envs = [{ kind: 'event', callId: 0, name: 'tick', payload: p }, { kind: 'call', id: 12345, method: 'echo', params: p, meta: null }, { kind: 'reply', id: 12345, result: p }];
const bodies = envs.map((e) => Buffer.from(A.encodeEnvelope(e).subarray(4)));
const N = 300000;
// A fresh pooled copy per frame, as the channel's frame decoder hands bodies over.
function run(M) { const c0 = process.cpuUsage(); for (let i = 0; i < N; i++) { const src = bodies[i % 3]; const b = Buffer.allocUnsafe(src.length); b.set(src); M.decodeEnvelope(b); } const c = process.cpuUsage(c0); return (c.user + c.system) * 1000 / N; }
const ra = [], rb = [];
for (let r = 0; r < 7; r++) { ra.push(run(A)); rb.push(run(B)); }
const med = (a) => [...a].sort((x, y) => x - y)[3];
console.log(`copy + decodeEnvelope ns/frame: A ${med(ra).toFixed(0)}  B ${med(rb).toFixed(0)}  B/A ${(med(rb) / med(ra)).toFixed(3)}`);
