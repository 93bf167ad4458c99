// node bench/ab/early-call-ab.mjs N PROFILE...: the first call riding with the broker's hello (lib/broker/early-call.ts)
// against waiting for the helper's hello, paired in one broker, the path switched launch by launch (order alternating).
// Needs a copy of the built tree whose Connection takes the riding path only when EARLY=1 (shipped code has no switch):
//   cp -a dist bench package.json sandbox-profiles protocols /tmp/ride/ && ln -s "$PWD/node_modules" /tmp/ride/
//   sed -i 's/const acquired = this.endpoint.acquireForCall?.() ?? /const acquired = (process.env.EARLY === "1" ? this.endpoint.acquireForCall?.() : undefined) ?? /' /tmp/ride/dist/lib/connection/connection.js
//   ROOT=/tmp/ride node bench/ab/early-call-ab.mjs 30 none pure-compute
// Per launch: the call's wall time, and in the helper (bench/fixtures/phase-echo-service.js) its time and CPU from serve()
// (its hello sent) to its first handler. Prints medians and the median of the paired differences (riding − waiting).
import { loadavg } from 'node:os';
const root = new URL(`file://${process.env.ROOT ?? process.cwd()}/`);
const FIX = new URL('bench/fixtures/', root).pathname;
const { Broker } = await import(new URL('dist/lib/index.js', root).href);
const [n, ...profiles] = process.argv.slice(2);
const broker = new Broker({ root: FIX, maxFrameBytes: 32 * 1024 * 1024 });
const conns = new Map();
for (const p of profiles) {
  broker.register({ name: `ph-${p}`, entry: './phase-echo-service.js', protocol: 'com.bench.echo', launch: { throttleMs: 0, maxRestarts: 10000 }, ...(p === 'none' ? {} : { sandbox: p }) });
  conns.set(p, broker.connect(`ph-${p}`));
}
const MSG = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };
for (const p of profiles) await conns.get(p).call('echo', MSG);
const res = {};
const load = [loadavg()[0]];
for (let r = 0; r < Number(n); r++) for (const p of profiles) for (const e of (r % 2 ? ['1', '0'] : ['0', '1'])) {
  await broker.stop(`ph-${p}`);
  process.env.EARLY = e;
  const t0 = performance.now();
  const reply = await conns.get(p).call('echo', MSG);
  const total = performance.now() - t0;
  const m = JSON.parse(reply.name);
  const cpu = (c) => (c.user + c.system) / 1000;
  ((res[p] ??= { '0': [], '1': [] })[e]).push({ total, toHandler: m.handler - m.served, cpuHandler: cpu(m.cpuHandler) - cpu(m.cpuServed) });
}
load.push(loadavg()[0]);
await broker.close();
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
console.log(`node ${process.version}, ${n} rounds, load ${load.map((x) => x.toFixed(1)).join('→')}`);
for (const p of profiles) {
  const a = res[p]['0'], b = res[p]['1'];
  const row = (x) => ['total', 'toHandler', 'cpuHandler'].map((k) => `${k} ${med(x.map((v) => v[k])).toFixed(2)}`).join('  ');
  console.log(`${p}\n  after hello: ${row(a)}\n  with hello:  ${row(b)}\n  paired diff (with − after): total ${med(a.map((x, i) => b[i].total - x.total)).toFixed(2)}  toHandler ${med(a.map((x, i) => b[i].toHandler - x.toHandler)).toFixed(2)}`);
}
