// node bench/ab/young-total.mjs N PROFILE...: per cold launch, the young objects a helper allocated before its first call's
// handler (node's start included) and the scavenges that ran by then, with no V8 flag on the helper, so its code cache is the
// one a real helper uses (bench/fixtures/young-total-service.js). V8 posts a scavenge task at 80% of the 1 MiB new space
// (~819 KB). Run from the repo root after a build.
import { loadavg } from 'node:os';
const root = new URL('../../', import.meta.url);
const FIX = new URL('bench/fixtures/', root).pathname;
const { Broker } = await import(new URL('dist/lib/index.js', root).href);
const [n, ...profiles] = process.argv.slice(2);
const broker = new Broker({ root: FIX });
for (const p of profiles) broker.register({ name: `yt-${p}`, entry: './young-total-service.js', protocol: 'com.bench.echo', launch: { throttleMs: 0, maxRestarts: 10000 }, ...(p === 'none' ? {} : { sandbox: p }), ...(p === 'fs-reader' ? { sandboxPaths: { data: '.' } } : {}) });
const MSG = { name: 'x', n: 1, tags: [] };
for (const p of profiles) await broker.connect(`yt-${p}`).call('echo', MSG);
for (const [file, fn] of [['compile-cache.js', 'compileCacheWrites'], ['code-cache.js', 'codeCacheWrites']]) { try { await (await import(new URL(`dist/lib/broker/${file}`, root).href))[fn]?.(); } catch {} }
console.log(`node ${process.version}, load ${loadavg()[0].toFixed(1)}`);
for (const p of profiles) {
  const seen = [];
  for (let i = 0; i < Number(n); i++) {
    await broker.stop(`yt-${p}`);
    seen.push(JSON.parse((await broker.connect(`yt-${p}`).call('echo', MSG)).name));
  }
  const kb = seen.map((s) => Math.round(s.total / 1024)).sort((a, b) => a - b);
  console.log(`${p.padEnd(15)} young KB by the first call: min ${kb[0]} median ${kb[kb.length >> 1]} max ${kb[kb.length - 1]} (at the entry ${Math.round(seen[0].atEntry / 1024)}; ${JSON.stringify(seen[0].load)}); scavenged before it: ${seen.filter((s) => s.scavenges > 0).length}/${seen.length}${seen[0].afterImport === undefined ? '' : `; after the import ${Math.round(seen[0].afterImport / 1024)}, after serve() ${Math.round(seen[0].afterServe / 1024)}`}`);
  const cpu = seen.map((s) => s.cpuMs).filter((c) => c !== undefined).sort((a, b) => a - b);
  if (cpu.length > 0) console.log(`${''.padEnd(15)} its CPU (all threads) by the first call's handler, ms: median ${cpu[cpu.length >> 1].toFixed(2)} (min ${cpu[0].toFixed(2)}, max ${cpu[cpu.length - 1].toFixed(2)})`);
  if (process.env.YOUNG_MARKS) for (const s of seen) console.log(`  young KB at the entry, after the import, after serve(), at the handler: ${s.marks.join(' ')}; before each collection: ${s.gcBefore.join(' ')}${s.gcCost === undefined ? '' : `; its cost, µs: ${s.gcCost.join(' ')}`}`);
}
await broker.close();
