// node bench/ab/young-alloc.mjs [N] [PROFILE] [-- NODE_FLAG...]: where a cold helper's allocations go between its entry's first
// line and its first call's handler (bench/fixtures/young-alloc-service.js: V8's sampling heap profiler, collected objects
// included). Prints the self bytes per function (top 40) and per script, summed over N cold launches. Young and old-space
// allocations are not told apart by the profiler; the code cache's deserialisation (old space) shows under the vm.Script
// compile. Run from the repo root after a build.
import { readFileSync, rmSync } from 'node:fs';
const root = new URL('../../', import.meta.url);
const FIX = new URL('bench/fixtures/', root).pathname;
const { Broker } = await import(new URL('dist/lib/index.js', root).href);
const args = process.argv.slice(2);
const cut = args.indexOf('--');
const [n = '3', profile = 'none'] = cut < 0 ? args : args.slice(0, cut);
const nodeArgs = cut < 0 ? [] : args.slice(cut + 1);
const out = `/tmp/young-alloc-${process.pid}.json`;
const broker = new Broker({ root: FIX });
broker.register({ name: 'ya', entry: './young-alloc-service.js', protocol: 'com.bench.echo', nodeArgs, env: { YOUNG_ALLOC_OUT: out }, launch: { throttleMs: 0, maxRestarts: 10000 }, ...(profile === 'none' ? {} : { sandbox: profile, sandboxPaths: { data: '/tmp' } }) });
const MSG = { name: 'x', n: 1, tags: [] };
await broker.connect('ya').call('echo', MSG);
for (const [file, fn] of [['compile-cache.js', 'compileCacheWrites'], ['code-cache.js', 'codeCacheWrites']]) { try { await (await import(new URL(`dist/lib/broker/${file}`, root).href))[fn]?.(); } catch {} }
const byFn = new Map();
const byUrl = new Map();
const byStack = new Map();
let total = 0;
const states = [];
for (let i = 0; i < Number(n); i++) {
  await broker.stop('ya');
  states.push((await broker.connect('ya').call('echo', MSG)).name);
  const { head } = JSON.parse(readFileSync(out, 'utf8'));
  const walk = (node, stack) => {
    const cf = node.callFrame;
    const name = `${cf.functionName || '(anon)'} ${cf.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${cf.lineNumber + 1}`;
    const self = node.selfSize;
    total += self;
    byFn.set(name, (byFn.get(name) ?? 0) + self);
    const url = cf.url.replace(/^.*\/(dist|node_modules)\//, '$1/') || '(native)';
    byUrl.set(url, (byUrl.get(url) ?? 0) + self);
    const st = [name, ...stack];
    if (process.env.YOUNG_ALLOC_STACKS && self > 0) { const k = st.slice(0, 4).join(' <- '); byStack.set(k, (byStack.get(k) ?? 0) + self); }
    for (const c of node.children) walk(c, st);
  };
  walk(head, []);
  rmSync(out, { force: true });
}
await broker.close();
const kb = (b) => (b / Number(n) / 1024).toFixed(1).padStart(7);
console.log(`node ${process.version} ${nodeArgs.join(' ')} ${profile}; code cache ${states.join(',')}; sampled KB per launch: ${kb(total)}`);
console.log('by script:');
for (const [u, b] of [...byUrl].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${kb(b)}  ${u}`);
console.log('by function:');
for (const [f, b] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${kb(b)}  ${f}`);
if (process.env.YOUNG_ALLOC_STACKS) {
  console.log('by stack (4 frames):');
  for (const [f, b] of [...byStack].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.YOUNG_ALLOC_STACKS))) console.log(`${kb(b)}  ${f}`);
}
