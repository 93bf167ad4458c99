// node bench/ab/young-gen.mjs N PROFILE... [-- NODE_FLAG...]: whether a cold-launched helper ran a scavenge before its first
// reply, and how much young-generation space it used by then (bench/fixtures/young-gen-echo-service.js). V8 posts a scavenge
// task once new space is 80% full (819 KB of the 1 MiB it starts with), which runs while the helper waits for the broker's
// hello: ~1 ms on Node 24, ~2 ms on Node 20 before the first reply. `-- --min-semi-space-size=4` shows the total young
// allocation without any scavenge. Run from the repo root after a build.
const root = new URL('../../', import.meta.url);
const FIX = new URL('bench/fixtures/', root).pathname;
const { Broker } = await import(new URL('dist/lib/index.js', root).href);
const args = process.argv.slice(2);
const cut = args.indexOf('--');
const [n, ...profiles] = cut < 0 ? args : args.slice(0, cut);
const nodeArgs = cut < 0 ? [] : args.slice(cut + 1);
const broker = new Broker({ root: FIX });
for (const p of profiles) broker.register({ name: `yg-${p}`, entry: './young-gen-echo-service.js', protocol: 'com.bench.echo', nodeArgs, launch: { throttleMs: 0, maxRestarts: 10000 }, ...(p === 'none' ? {} : { sandbox: p }) });
const MSG = { name: 'x', n: 1, tags: [] };
for (const p of profiles) await broker.connect(`yg-${p}`).call('echo', MSG);
for (const [file, fn] of [['compile-cache.js', 'compileCacheWrites'], ['code-cache.js', 'codeCacheWrites']]) { try { await (await import(new URL(`dist/lib/broker/${file}`, root).href))[fn]?.(); } catch {} }
console.log(`node ${process.version} ${nodeArgs.join(' ')}`);
for (const p of profiles) {
  const seen = [];
  for (let i = 0; i < Number(n); i++) {
    await broker.stop(`yg-${p}`);
    const spaces = JSON.parse((await broker.connect(`yg-${p}`).call('echo', MSG)).name);
    const get = (name) => spaces.find((s) => s[0] === name);
    seen.push({ scavenged: get('new_large_object_space')[1] === 0, used: get('new_space')[1] });
  }
  const used = seen.map((s) => s.used).sort((a, b) => a - b);
  console.log(`${p.padEnd(15)} scavenged before the first reply: ${seen.filter((s) => s.scavenged).length}/${seen.length}; new space used at the handler (KB) min ${used[0]} median ${used[used.length >> 1]} max ${used[used.length - 1]}`);
}
await broker.close();
