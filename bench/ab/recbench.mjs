// What cbor-x records would buy bulkhead's small frames: encode + decode per frame (the bench's event, call
// and reply envelopes in their wire form), bulkhead's codec options vs the same with records, in one process.
// node bench/ab/recbench.mjs   (7 rounds of 300k frames each; medians; run from the repository root)
import { Decoder, Encoder } from 'cbor-x/index-no-eval';
const base = { useRecords: false, mapsAsObjects: true, tagUint8Array: false, structuredClone: false, pack: false, bundleStrings: false, useTag259ForMaps: false };
const p = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };
const wires = [[4, 0, 'tick', p], [1, 12345, 'echo', p, null], [2, 12345, p]];
const N = 300000;
function run(enc, dec) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) dec.decode(enc.encode(wires[i % 3]));
  const c = process.cpuUsage(c0);
  return (c.user + c.system) * 1000 / N;
}
// Sequential records: the first frame of a shape carries its definition, later frames only a reference
// (state kept across frames by both ends, as a connection would). Shared structures: both ends hold one array.
const variants = {
  plain: () => [new Encoder(base), new Decoder(base)],
  'records, sequential': () => [new Encoder({ ...base, useRecords: true, sequential: true }), new Decoder({ ...base, useRecords: true, sequential: true })],
  'records, shared structures': () => { const s = []; return [new Encoder({ ...base, useRecords: true, structures: s }), new Decoder({ ...base, useRecords: true, structures: s })]; },
};
const results = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (let r = 0; r < 7; r++) for (const [k, make] of Object.entries(variants)) results[k].push(run(...make()));
const med = (a) => [...a].sort((x, y) => x - y)[3];
const plain = med(results.plain);
for (const [k, v] of Object.entries(results)) console.log(`${k.padEnd(28)} ${med(v).toFixed(0)} ns per frame (encode + decode)  ${(med(v) / plain).toFixed(3)}×`);
const sizes = [new Encoder(base), new Encoder({ ...base, useRecords: true, sequential: true })].map((e) => { e.encode(wires[2]); return e.encode(wires[2]).length; });
console.log(`reply body: ${sizes[0]} bytes plain, ${sizes[1]} with records (after the first)`);
