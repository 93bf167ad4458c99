// Builds the helper runtime (`bulkhead/service`) from tsc's output:
// - dist/lib/service.runtime.cjs: dist/lib/service.js and everything it imports (cbor-x inside) as ONE classic
//   script, `/*bulkhead-runtime:<build id>*/(function (module, require, __bulkheadRuntimeUrl) { ... })`, where the
//   build id is a hash of the rest of the file. lib/util/runtime-loader.ts compiles it with node:vm and V8's code cache.
// - dist/lib/service.bundle.js: the ESM facade the package exports as `bulkhead/service`: it loads the runtime once
//   per process (every importer, the prewarm entry included, gets this module's one instance) and re-exports
//   every name of lib/service.ts.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const lib = fileURLToPath(new URL('../dist/lib/', import.meta.url));
const entry = join(lib, 'service.js');
// cbor-x's no-eval build probes for `new Function` with `try { new BlockedFunction('') } catch { ... }`, where
// BlockedFunction is a `var` never assigned: the throw always happens. V8 builds that TypeError's message
// ("BlockedFunction is not a constructor") by re-parsing the function it was thrown in, here cbor-x's whole
// module body: ~1.9 ms of every helper's start (Node 24). The plugin writes the catch's one effect instead.
// The catch body must be exactly that one statement (comment lines aside): anything more and the rewrite would drop it.
const CBOR_PROBE = /try\s*\{\s*new BlockedFunction\s*\(''\);\s*\}\s*catch\s*\(error\)\s*\{\s*(?:\/\/[^\n]*\n\s*)*inlineObjectReadThreshold = Infinity;\s*\}/g;
let cborRewrites = 0;
const noCborProbe = {
  name: 'no-cbor-x-probe',
  setup(b) {
    b.onLoad({ filter: /[\\/]cbor-x[\\/]dist[\\/]index-no-eval\.cjs$/ }, ({ path }) => {
      const text = readFileSync(path, 'utf8');
      const found = text.match(CBOR_PROBE)?.length ?? 0;
      if (found !== 1) throw new Error(`build-runtime: cbor-x's BlockedFunction probe found ${found} times (want exactly once, its catch body only the Infinity assignment) in ${path}; check the new cbor-x and update CBOR_PROBE`);
      cborRewrites++;
      return { contents: text.replace(CBOR_PROBE, 'inlineObjectReadThreshold = Infinity;'), loader: 'js' };
    });
  },
};
// lib/wire/codec.ts loads cbor-x on first use through node's CommonJS loader (`cborRequire()('cbor-x/index-no-eval')`), which
// in a helper would read the package from node_modules, outside the bundle and its code cache. In the bundle that call
// becomes a plain `require` of the same path, which esbuild resolves to its bundled copy (the one the plugin above
// rewrites), run on first call: still lazy. The build fails unless the call is there exactly once.
const CBOR_LAZY = "cborRequire()('cbor-x/index-no-eval')";
let lazyRewrites = 0;
const lazyCbor = {
  name: 'lazy-cbor-x',
  setup(b) {
    b.onLoad({ filter: /[\\/]dist[\\/]lib[\\/]wire[\\/]codec\.js$/ }, ({ path }) => {
      const text = readFileSync(path, 'utf8');
      const found = text.split(CBOR_LAZY).length - 1;
      if (found !== 1) throw new Error(`build-runtime: lib/wire/codec.ts's lazy cbor-x require (${CBOR_LAZY}) found ${found} times in ${path} (want exactly once); update CBOR_LAZY with codec.ts`);
      lazyRewrites++;
      return { contents: text.replace(CBOR_LAZY, 'require("cbor-x/index-no-eval")'), loader: 'js' };
    });
  },
};
/** Fails the build when a bundle did not go through the plugin (cbor-x resolved to another file: the probe would stay). */
const checkCborRewrite = (what) => {
  if (cborRewrites !== 1) throw new Error(`build-runtime: the ${what} build loaded cbor-x's index-no-eval.cjs ${cborRewrites} times through the no-cbor-x-probe plugin (want 1); check which cbor-x file the bundle resolves`);
  cborRewrites = 0;
  if (lazyRewrites !== 1) throw new Error(`build-runtime: the ${what} build loaded lib/wire/codec.js ${lazyRewrites} times through the lazy-cbor-x plugin (want 1)`);
  lazyRewrites = 0;
};
const common = { entryPoints: [entry], bundle: true, platform: 'node', target: 'node20', minifyWhitespace: true, minifySyntax: true, logLevel: 'warning', write: false, plugins: [noCborProbe, lazyCbor] };

// The names to re-export: what the ES module exports (an ESM build's metafile lists them).
const esm = await build({ ...common, format: 'esm', outfile: join(lib, 'service.names.js'), metafile: true });
checkCborRewrite('ESM');
const names = Object.values(esm.metafile.outputs)[0].exports;
if (names.length === 0) throw new Error('build-runtime: the runtime exports nothing');
if (names.some((n) => n.startsWith('__bulkhead'))) throw new Error('build-runtime: an export name collides with the facade\'s own (__bulkhead...)');

const cjs = await build({ ...common, format: 'cjs', outfile: join(lib, 'service.runtime.cjs'), define: { 'import.meta.url': '__bulkheadRuntimeUrl' } });
checkCborRewrite('CommonJS');
// esbuild's CommonJS exports are getters made at the top (`__export(service_exports, { name: () => binding, ... })` and
// `__toCommonJS`, which copies each onto a second object with a descriptor and a closure of its own): ~10 KB of young
// objects at every helper's start (Node 20), which with the rest tipped a cold helper into a scavenge before its first
// reply (bench/README.md, "Round eleven: Node 20 cold launch"). The runtime sets module.exports to a plain object of
// the same bindings instead, at the end of its top level, when every one is initialised. Live bindings are not lost:
// the facade reads each export once, right after the runtime ran, and no export is reassigned later.
const EXPORTS = /var service_exports=\{\};__export\(service_exports,\{([^}]*)\}\);module\.exports=__toCommonJS\(service_exports\);/g;
function plainExports(text) {
  const found = [...text.matchAll(EXPORTS)];
  if (found.length !== 1) throw new Error(`build-runtime: esbuild's exports statement found ${found.length} times in the runtime (want exactly once); update EXPORTS`);
  const entries = found[0][1].split(',').map((e) => /^([A-Za-z_$][\w$]*):\(\)=>([A-Za-z_$][\w$]*)$/.exec(e));
  if (entries.some((e) => e === null)) throw new Error(`build-runtime: an export of the runtime is not \`name:()=>binding\` (${found[0][1]}); update plainExports`);
  const exported = entries.map((e) => e[1]).sort();
  if (exported.join() !== [...names].sort().join()) throw new Error(`build-runtime: the runtime's CommonJS exports (${exported}) are not the ES module's (${names})`);
  return `${text.replace(EXPORTS, '')}\nmodule.exports={${entries.map(([, name, binding]) => `${name}:${binding}`).join(',')}};`;
}
const body = `(function (module, require, __bulkheadRuntimeUrl) {${plainExports(cjs.outputFiles[0].text)}\n})\n`;
// vm.Script runs import() only with an importModuleDynamically callback, which the loader does not give.
if (/\bimport\(/.test(body)) throw new Error('build-runtime: the runtime calls import(); lib/util/runtime-loader.ts must then pass importModuleDynamically');
if (/[^\x00-\x7f]/.test(body)) throw new Error('build-runtime: the runtime is not ASCII (the loader decodes it as latin1)');
const id = createHash('sha256').update(body).digest('hex').slice(0, 16);
writeFileSync(join(lib, 'service.runtime.cjs'), `/*bulkhead-runtime:${id}*/${body}`);

const { HELPER_ENV } = await import(join(lib, 'wire', 'helper-env.js'));
// The facade is ONE module: the loader (lib/util/runtime-loader.ts, which imports nothing) is bundled into it, so a
// helper's ESM graph is its entry and this file (the loader as a module of its own cost every helper one more
// resolve, asynchronous read, compile and link before the runtime could load: round eight, bench/README.md).
// The runtime file the broker names (HELPER_ENV.runtime) when its build id is this one, else the one beside the facade:
// import.meta is then never evaluated in a helper (Node's import.meta set-up costs ~0.1-0.3 ms of its start).
const facadeSource = `import { loadRuntimeFor } from './util/runtime-loader.js';
const { exports: __bulkheadRuntime, codeCache: __bulkheadCodeCache, from: __bulkheadFrom } = loadRuntimeFor(${JSON.stringify(id)}, process.env[${JSON.stringify(HELPER_ENV.runtime)}], () => import.meta.dirname + '/service.runtime.cjs', process.env[${JSON.stringify(HELPER_ENV.codeCache)}]);
__bulkheadRuntime.runtimeLoad.codeCache = __bulkheadCodeCache;
__bulkheadRuntime.runtimeLoad.runtimeFrom = __bulkheadFrom;
export const { ${names.join(', ')} } = __bulkheadRuntime;
`;
const facade = await build({
  stdin: { contents: facadeSource, resolveDir: lib, sourcefile: 'service.bundle.js', loader: 'js' },
  bundle: true, platform: 'node', target: 'node20', format: 'esm', logLevel: 'warning', write: false,
  // The loader's own comments stay out; node builtins stay imports (the loader uses process.getBuiltinModule, so there are none).
  legalComments: 'none',
});
const facadeText = facade.outputFiles[0].text;
if (/^\s*import\s/m.test(facadeText)) throw new Error('build-runtime: the facade still imports a module; the loader must import nothing');
writeFileSync(join(lib, 'service.bundle.js'), `// bulkhead/service (generated by scripts/build-runtime.mjs): the helper runtime, service.runtime.cjs, loaded
// once per process through node:vm with the broker's code cache (lib/util/runtime-loader.ts, bundled in below).
// Only the exports are kept: the runtime file's bytes and the vm.Script are garbage once it ran.
${facadeText}`);
