// node bench/ab/loader-steps.mjs CACHE_DIR [N]: the runtime loader's steps (lib/util/runtime-loader.ts) one by one, in N fresh
// nodes (default 15) that imported node:net first, as a helper's probe does: stat of the runtime file (what a stat-keyed cache
// would cost), its read, the cache file's read (CACHE_DIR: the broker's runtime-<binary> directory for this node), the byte
// compare, the latin1 text, `new vm.Script` with the cache, its run and the runtime's top level. Prints medians of CPU, ms,
// and whether V8 took the cache. bench/README.md, "Round fourteen: the helper's start-up CPU". Run from the repo root after a build.
import { execFileSync } from 'node:child_process';
const [cacheDir, n = '15'] = process.argv.slice(2);
const root = new URL('../../', import.meta.url).pathname;
const STEPS = ['stat', 'read runtime', 'read cache', 'compare', 'latin1', 'vm.Script', 'run', 'top level'];
if (process.env.LOADER_STEPS_CHILD === '1') {
  await import('node:net');
  const fs = process.getBuiltinModule('node:fs');
  const vm = process.getBuiltinModule('node:vm');
  const { codeCacheFile, runtimeBuildId, CODE_CACHE_MAGIC } = await import(new URL('dist/lib/util/runtime-loader.js', `file://${root}`).href);
  const file = `${root}dist/lib/service.runtime.cjs`;
  const cpu = () => { const c = process.cpuUsage(); return (c.user + c.system) / 1000; };
  const t = [cpu()];
  fs.statSync(file); t.push(cpu());
  const source = fs.readFileSync(file); t.push(cpu());
  const cache = fs.readFileSync(codeCacheFile(cacheDir, runtimeBuildId(source), process.execArgv)); t.push(cpu());
  const head = CODE_CACHE_MAGIC.length;
  const length = cache.readUInt32LE(head);
  const same = cache.subarray(head + 4, head + 4 + length).equals(source); t.push(cpu());
  const text = source.toString('latin1'); t.push(cpu());
  const script = new vm.Script(text, { filename: file, cachedData: cache.subarray(head + 4 + length) }); t.push(cpu());
  const body = script.runInThisContext(); t.push(cpu());
  body({ exports: {} }, (id) => process.getBuiltinModule(id), `file://${file}`); t.push(cpu());
  console.log(JSON.stringify({ same, rejected: script.cachedDataRejected, steps: t.slice(1).map((x, i) => x - t[i]) }));
} else {
  const rows = Array.from({ length: Number(n) }, () => JSON.parse(execFileSync(process.execPath, [new URL(import.meta.url).pathname, cacheDir], { env: { PATH: process.env.PATH, LOADER_STEPS_CHILD: '1' }, encoding: 'utf8' })));
  const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
  console.log(`node ${process.version}, ${n} fresh nodes; source copy equal: ${rows.every((r) => r.same)}; cache rejected: ${rows.filter((r) => r.rejected).length}/${n}`);
  console.log(STEPS.map((s, i) => `${s} ${med(rows.map((r) => r.steps[i])).toFixed(2)}`).join(', '), 'ms CPU');
}
