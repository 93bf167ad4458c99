// node bench/ab/vm-code-cache.mjs [RUNS]: what a V8 code cache made *after a warm-up* would buy a helper (bench/README.md,
// "Round four: launch"). Builds the helper runtime (dist/lib/service.js) as one CommonJS script in a temp dir, writes
// two caches with vm.Script#createCachedData (right after running it, and after a warm-up encode/decode), then times, in
// fresh processes with node:net already loaded (as the launch probe has): load the runtime, then encode and decode a
// hello and a call. Variants: esm (import the real bundle, NODE_COMPILE_CACHE on where Node has it), none (vm.Script,
// no cache), cold and warm (vm.Script with either cache). Round four's experiment; round five built the real thing
// (lib/util/runtime-loader.ts, lib/code-cache-writer.ts), so the "esm" variant now imports that facade, not an ESM bundle.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BUNDLE = join(ROOT, 'dist/lib/service.bundle.js');
const runs = Number(process.argv[2] ?? 11);
const dir = mkdtempSync(join(tmpdir(), 'bulkhead-vm-cache-'));
try {
  const rt = join(dir, 'rt.cjs');
  await build({ entryPoints: [join(ROOT, 'dist/lib/service.js')], bundle: true, platform: 'node', format: 'cjs', target: 'node20', minifyWhitespace: true, minifySyntax: true, outfile: rt, logLevel: 'error', define: { 'import.meta.url': JSON.stringify(pathToFileURL(BUNDLE).href) } });
  const work = `const { encodeItem, decodeItem } = rt.spareWire;
decodeItem(encodeItem([0, 'service', 'com.bench.echo', '1.0.0', 'f'.repeat(64), { pid: 1 }]));
decodeItem(encodeItem([1, 1, 'echo', { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] }, {}]));`;
  const load = (cached) => `const vm = process.getBuiltinModule('node:vm'); const fs = process.getBuiltinModule('node:fs');
const script = new vm.Script('(function (exports, require, module, __filename, __dirname) {' + fs.readFileSync(${JSON.stringify(rt)}, 'utf8') + '\\n})', { filename: ${JSON.stringify(rt)}${cached ? `, cachedData: fs.readFileSync(${JSON.stringify(cached)})` : ''} });
const m = { exports: {} }; script.runInThisContext()(m.exports, process.getBuiltinModule('node:module').createRequire(${JSON.stringify(rt)}), m, ${JSON.stringify(rt)}, ${JSON.stringify(dir)});
const rt = m.exports;`;
  for (const kind of ['cold', 'warm']) {
    const writer = join(dir, `write-${kind}.mjs`);
    writeFileSync(writer, `${load(undefined)}\n${kind === 'warm' ? work : ''}\nfs.writeFileSync(${JSON.stringify(join(dir, `${kind}.cache`))}, script.createCachedData());\n`);
    execFileSync(process.execPath, [writer]);
  }
  const cpu = 'const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };';
  const variants = {
    esm: `await import('node:net'); ${cpu} const c0 = cpu(); const rt = await import(${JSON.stringify(pathToFileURL(BUNDLE).href)}); const c1 = cpu(); ${work} console.log(JSON.stringify([c1 - c0, cpu() - c1]));`,
    none: `await import('node:net'); ${cpu} const c0 = cpu(); ${load(undefined)} const c1 = cpu(); ${work} console.log(JSON.stringify([c1 - c0, cpu() - c1]));`,
    cold: `await import('node:net'); ${cpu} const c0 = cpu(); ${load(join(dir, 'cold.cache'))} if (script.cachedDataRejected) throw new Error('rejected'); const c1 = cpu(); ${work} console.log(JSON.stringify([c1 - c0, cpu() - c1]));`,
    warm: `await import('node:net'); ${cpu} const c0 = cpu(); ${load(join(dir, 'warm.cache'))} if (script.cachedDataRejected) throw new Error('rejected'); const c1 = cpu(); ${work} console.log(JSON.stringify([c1 - c0, cpu() - c1]));`,
  };
  const results = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (const [k, code] of Object.entries(variants)) writeFileSync(join(dir, `${k}.mjs`), code);
  const env = { PATH: process.env.PATH ?? '', NODE_COMPILE_CACHE: join(dir, 'node-cache') };
  for (let i = 0; i < runs; i++) for (const k of Object.keys(variants)) results[k].push(JSON.parse(execFileSync(process.execPath, [join(dir, `${k}.mjs`)], { env, encoding: 'utf8' })));
  const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  console.log(`node ${process.version}, ${runs} runs each (the first esm run fills Node's compile cache)`);
  for (const [k, rs] of Object.entries(results)) {
    const l = med(rs.map((r) => r[0])), w = med(rs.map((r) => r[1]));
    console.log(`${k.padEnd(5)} load ${l.toFixed(2)} ms  first encode/decode ${w.toFixed(2)} ms  total ${(l + w).toFixed(2)} ms CPU`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
