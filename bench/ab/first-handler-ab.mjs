// node bench/ab/first-handler-ab.mjs OTHER_ROOT N ROUNDS PROFILE...: a cold helper's CPU and clock from its entry's first line to
// its first handler, and whether V8 scavenged before that handler (bench/fixtures/first-handler-service.js), for this build and
// the build at OTHER_ROOT (e.g. main in a worktree beside, built, with this file's fixtures copied in), alternating round by
// round, each build in a broker of its own. FIRST_HANDLER_PAD=1 uses the entry with ~2,000 objects of its own. Run from the
// repo root after a build.
import { loadavg } from 'node:os';
const [other, n, rounds, ...profiles] = process.argv.slice(2);
const builds = { other: `${other.replace(/\/$/, '')}/`, this: new URL('../../', import.meta.url).pathname };
const entry = process.env.FIRST_HANDLER_PAD === '1' ? './first-handler-pad-service.js' : './first-handler-service.js';
const MSG = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
const brokers = {};
for (const [b, dir] of Object.entries(builds)) {
  const root = new URL(`file://${dir}`);
  const { Broker } = await import(new URL('dist/lib/index.js', root).href);
  const broker = new Broker({ root: new URL('bench/fixtures/', root).pathname });
  for (const p of profiles) broker.register({ name: `fh-${b}-${p}`, entry, protocol: 'com.bench.echo', launch: { throttleMs: 0, maxRestarts: 10000 }, ...(p === 'none' ? {} : { sandbox: p }), ...(p === 'fs-reader' ? { sandboxPaths: { data: '.' } } : {}) });
  for (const p of profiles) await broker.connect(`fh-${b}-${p}`).call('echo', MSG);
  for (const [file, fn] of [['compile-cache.js', 'compileCacheWrites'], ['code-cache.js', 'codeCacheWrites']]) { try { await (await import(new URL(`dist/lib/broker/${file}`, root).href))[fn]?.(); } catch {} }
  brokers[b] = broker;
}
console.log(`node ${process.version}, ${entry}, load ${loadavg()[0].toFixed(1)}`);
const all = {};
for (let r = 0; r < Number(rounds); r++) for (const b of r % 2 ? ['this', 'other'] : ['other', 'this']) for (const p of profiles) {
  for (let i = 0; i < Number(n); i++) {
    await brokers[b].stop(`fh-${b}-${p}`);
    const [cpu, wall, young, large] = JSON.parse((await brokers[b].connect(`fh-${b}-${p}`).call('echo', MSG)).name);
    (all[`${b} ${p}`] ??= []).push({ cpu, wall, young, scavenged: large < 100 });
  }
}
for (const [k, rows] of Object.entries(all)) console.log(`${k.padEnd(20)} entry → first handler: CPU ${med(rows.map((x) => x.cpu)).toFixed(2)} ms, wall ${med(rows.map((x) => x.wall)).toFixed(2)} ms; new space ${med(rows.map((x) => x.young))} KB; scavenged before it ${rows.filter((x) => x.scavenged).length}/${rows.length}`);
console.log(`load ${loadavg()[0].toFixed(1)}`);
for (const b of Object.values(brokers)) await b.close();
