// node bench/ab/user-snapshot.mjs CACHE_DIR [N]: would a user-land startup snapshot holding the loaded helper runtime
// (`node --snapshot-blob … --build-snapshot`) start a helper cheaper than the facade's import with the runtime's code cache?
// Builds two blobs with this node (an empty one, and one whose builder ran the runtime script and left its exports on
// globalThis), then runs fresh processes interleaved, N each (default 11): the probe's import of node:net alone, with each
// blob, and the facade with the runtime cache from CACHE_DIR (the broker's runtime-<binary> directory for this node; the
// output says whether V8 accepted it). Prints node's CPU and minor page faults at the end of the entry, medians.
// bench/README.md, "Round fourteen: the helper's start-up CPU". Run from the repo root after a build.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const [cacheDir, n = '11'] = process.argv.slice(2);
const root = new URL('../../', import.meta.url).pathname;
const runtime = join(root, 'dist/lib/service.runtime.cjs');
const dir = mkdtempSync(join(tmpdir(), 'bulkhead-snapshot-ab-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const report = 'const c = process.cpuUsage(); console.log(JSON.stringify({ cpu: (c.user + c.system) / 1000, faults: process.resourceUsage().minorPageFault';
writeFileSync(join(dir, 'probe.mjs'), `import { Socket } from 'node:net';\n${report}, runtime: typeof globalThis.__bulkheadRuntime }));\n`);
writeFileSync(join(dir, 'facade.mjs'), `import { Socket } from 'node:net';\nimport { runtimeLoad } from ${JSON.stringify(join(root, 'dist/lib/service.bundle.js'))};\n${report}, runtime: runtimeLoad.codeCache }));\n`);
writeFileSync(join(dir, 'empty.cjs'), 'globalThis.__bulkheadRuntime = 1;\n');
writeFileSync(join(dir, 'runtime.cjs'), `const file = ${JSON.stringify(runtime)};
const body = (0, eval)(require('node:fs').readFileSync(file, 'latin1'));
const m = { exports: {} };
body(m, (id) => require(id), 'file://' + file);
globalThis.__bulkheadRuntime = m.exports;\n`);
const env = { PATH: process.env.PATH, BULKHEAD_RUNTIME: runtime, ...(cacheDir === undefined ? {} : { BULKHEAD_CODE_CACHE: cacheDir }) };
for (const b of ['empty', 'runtime']) execFileSync(process.execPath, ['--snapshot-blob', join(dir, `${b}.blob`), '--build-snapshot', join(dir, `${b}.cjs`)], { env, stdio: 'ignore' });
const variants = { probe: ['probe.mjs'], 'empty snapshot': ['--snapshot-blob', 'empty.blob', 'probe.mjs'], 'runtime snapshot': ['--snapshot-blob', 'runtime.blob', 'probe.mjs'], facade: ['facade.mjs'] };
const seen = {};
for (let i = 0; i < Number(n); i++) for (const [k, args] of Object.entries(variants)) (seen[k] ??= []).push(JSON.parse(execFileSync(process.execPath, args.map((a) => (a.endsWith('.mjs') || a.endsWith('.blob') ? join(dir, a) : a)), { env, encoding: 'utf8' })));
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log(`node ${process.version}, ${n} runs each`);
for (const [k, rows] of Object.entries(seen)) console.log(`${k.padEnd(17)} CPU ${med(rows.map((r) => r.cpu)).toFixed(2)} ms, faults ${med(rows.map((r) => r.faults))}, runtime ${rows[0].runtime}`);
