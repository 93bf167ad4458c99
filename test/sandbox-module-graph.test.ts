// The read set of a helper's code (lib/sandbox/module-graph.ts), in-process over real files in a
// temp dir: what Node would load is in, the siblings and packages it never imports are out, and a
// changed file invalidates the cache. The sandboxed side of the same promise is in
// test/sandbox-read-set.test.ts.
import t from 'tap';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { clearModuleReadSetCache, moduleReadSet, packageClosure } from '../lib/sandbox/module-graph.js';
import { mapTargets } from '../lib/sandbox/node-resolution.js';

const root = realpathSync(mkdtempSync(join(tmpdir(), 'bulkhead-graph-')));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

function files(tree: Record<string, string | object>): void {
  for (const [path, body] of Object.entries(tree)) {
    const file = join(root, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, typeof body === 'string' ? body : JSON.stringify(body));
  }
}
const at = (...paths: string[]) => paths.map((p) => join(root, p)).sort();
const sorted = (list: string[]) => [...list].sort();

files({
  'app/package.json': { name: 'app', type: 'module', imports: { '#util': './lib/util.js', '#dep': 'pkg-b' } },
  'app/main.js': 'export const secret = 1;\n',
  'app/.env': 'A=1\n',
  'app/svc.js': [
    "import { a } from './a.js';",
    "import type { T } from './types.js';",
    "import util from '#util';",
    "import dep from '#dep';",
    "import { readFileSync } from 'node:fs';",
    "import path from 'path';",
    "import pkg from 'pkg-a';",
    "import sub from '@scope/pkg/sub';",
    "const lazy = () => import('./lazy.js');",
    "const computed = (name) => import(`./plugins/${name}.js`);",
    "const worker = new URL('./worker.js', import.meta.url);",
    "import missing from './missing.js';",
  ].join('\n'),
  'app/a.js': "export * from '../shared/b.mjs';\n",
  'shared/b.mjs': 'export const b = 1;\n',
  'shared/not-imported.mjs': 'export const c = 1;\n',
  'app/types.js': 'export {};\n',
  'app/lazy.js': 'export const lazy = 1;\n',
  'app/worker.js': "const { x } = require('./cjs/dir');\n",
  'app/cjs/dir/index.js': "module.exports = require('./sibling');\n",
  'app/cjs/dir/sibling.js': 'module.exports = 1;\n',
  'app/plugins/p.js': 'export default 1;\n',
  'app/lib/util.js': 'export default 1;\n',
  'app/lib/other.js': 'export default 2;\n',
  'app/node_modules/pkg-a/package.json': { name: 'pkg-a', dependencies: { 'pkg-b': '1', 'pkg-c': '1' }, optionalDependencies: { 'not-installed': '1' } },
  'app/node_modules/pkg-a/index.js': 'module.exports = 1;\n',
  'app/node_modules/pkg-a/node_modules/pkg-c/package.json': { name: 'pkg-c' },
  'app/node_modules/pkg-b/package.json': { name: 'pkg-b' },
  'app/node_modules/private/package.json': { name: 'private' },
  'app/node_modules/@scope/pkg/package.json': { name: '@scope/pkg' },
});

t.test('local files by path, packages by directory with their dependencies; nothing it does not import', async (t) => {
  clearModuleReadSetCache();
  const set = await moduleReadSet([join(root, 'app', 'svc.js')]);
  t.same(sorted(set.files), at('app/svc.js', 'app/a.js', 'shared/b.mjs', 'app/lib/util.js', 'app/lazy.js', 'app/worker.js', 'app/cjs/dir/index.js', 'app/cjs/dir/sibling.js'), 'static, re-export, #imports, literal import(), new URL(…, import.meta.url), require() with index and extension');
  t.same(sorted(set.packages), at('app/node_modules/pkg-a', 'app/node_modules/pkg-b', 'app/node_modules/pkg-a/node_modules/pkg-c', 'app/node_modules/@scope/pkg'), 'imported packages and their dependencies (nested and hoisted)');
  t.same(sorted(set.manifests), at('app/package.json'), 'the package.json Node reads for module type and #imports (shared/ has none)');
  t.same(sorted(set.unresolved), ['./missing.js'], 'a missing file is reported, the computed import() is not guessed');
  for (const outside of at('app/main.js', 'app/.env', 'app/lib/other.js', 'app/plugins/p.js', 'shared/not-imported.mjs', 'app/types.js', 'app/node_modules/private')) {
    t.notOk([...set.files, ...set.packages, ...set.manifests].includes(outside), `${outside.slice(root.length + 1)} is not in it`);
  }
});

t.test('a package holding granted files (bulkhead) is entered through its exports, file by file', async (t) => {
  files({
    'app2/package.json': { type: 'module' },
    'app2/svc.js': "import { serve } from 'runtime/service';\nimport x from 'runtime/extra';\n",
    'app2/node_modules/runtime/package.json': { name: 'runtime', exports: { './service': { types: './service.d.ts', default: './bundle.js' }, './extra': { import: './extra.mjs', require: './extra.cjs' } } },
    'app2/node_modules/runtime/bundle.js': 'export const serve = 1;\n',
    'app2/node_modules/runtime/extra.mjs': 'export default 1;\n',
    'app2/node_modules/runtime/extra.cjs': 'module.exports = 1;\n',
    'app2/node_modules/runtime/secret-dev-dep.js': '',
  });
  const bundle = join(root, 'app2/node_modules/runtime/bundle.js');
  const set = await moduleReadSet([join(root, 'app2/svc.js')], [bundle]);
  t.same(sorted(set.files), at('app2/svc.js', 'app2/node_modules/runtime/extra.mjs', 'app2/node_modules/runtime/extra.cjs'), 'both the import and the require target; the granted bundle is not repeated');
  t.same(set.packages, [], 'the package directory itself is not granted');
  t.ok(set.manifests.includes(join(root, 'app2/node_modules/runtime/package.json')), 'its package.json is (Node reads exports there)');

  // Reached through a symlink (npm link): the path Node opens is granted beside the real one.
  files({ 'app3/package.json': { type: 'module' }, 'app3/svc.js': "import { serve } from 'runtime/service';\n" });
  mkdirSync(join(root, 'app3/node_modules'));
  symlinkSync(join(root, 'app2/node_modules/runtime'), join(root, 'app3/node_modules/runtime'));
  const loader = join(root, 'app2/node_modules/runtime/lib/loader.js');
  files({ 'app2/node_modules/runtime/lib/loader.js': 'export {};\n', 'app2/node_modules/runtime/vendor/dep.js': '' });
  const linked = await moduleReadSet([join(root, 'app3/svc.js')], [bundle, loader, join(root, 'app2/node_modules/runtime/vendor')]);
  t.ok(linked.files.includes(join(root, 'app3/node_modules/runtime/bundle.js')), 'the symlinked path of the granted bundle');
  t.ok(linked.files.includes(join(root, 'app3/node_modules/runtime/lib/loader.js')), 'and of the granted files beside it (the bundle loads them relative to itself)');
  t.notOk(linked.files.includes(join(root, 'app3/node_modules/runtime/secret-dev-dep.js')), 'never a file that is not granted');
  t.notOk(linked.files.some((f) => f.startsWith(join(root, 'app3/node_modules/runtime/vendor'))), 'nor a granted directory (files only)');
});

t.test('a package the caller grants whole (a runtime package such as ajv) is neither repeated nor walked', async (t) => {
  files({ 'app5/package.json': { type: 'module' }, 'app5/svc.js': "import 'pkg-b';\nimport 'pkg-a';\n" });
  mkdirSync(join(root, 'app5/node_modules'));
  symlinkSync(join(root, 'app/node_modules/pkg-b'), join(root, 'app5/node_modules/pkg-b'));
  symlinkSync(join(root, 'app/node_modules/pkg-a'), join(root, 'app5/node_modules/pkg-a'));
  const set = await moduleReadSet([join(root, 'app5/svc.js')], [join(root, 'app/node_modules/pkg-b')]);
  t.same(set.files, [join(root, 'app5/svc.js')]);
  t.same(sorted(set.packages), at('app5/node_modules/pkg-a', 'app5/node_modules/pkg-a/node_modules/pkg-c', 'app5/node_modules/pkg-b'), 'pkg-a and its nested dependency; pkg-b only at the symlinked path Node looks up (its real directory is granted), not walked');
  const direct = await moduleReadSet([join(root, 'app/svc.js')], [join(root, 'app/node_modules/pkg-b')]);
  t.notOk(direct.packages.includes(join(root, 'app/node_modules/pkg-b')), 'reached at its granted path: not listed again');
});

t.test('cached until a file it was built from changes', async (t) => {
  files({ 'app4/package.json': { type: 'module' }, 'app4/svc.js': "import './one.js';\n", 'app4/one.js': '', 'app4/two.js': '' });
  const entry = join(root, 'app4/svc.js');
  const first = await moduleReadSet([entry]);
  t.equal(await moduleReadSet([entry]), first, 'the same set, from the cache');
  files({ 'app4/one.js': "import './two.js';\n" });
  const second = await moduleReadSet([entry]);
  t.not(second, first, 'recomputed');
  t.ok(second.files.includes(join(root, 'app4/two.js')), 'with the new import');
  files({ 'app4/package.json': { type: 'module', imports: { '#x': './two.js' } } });
  t.not(await moduleReadSet([entry]), second, 'a changed package.json invalidates it too');
});

t.test('packageClosure: a package and its dependencies as Node finds them', async (t) => {
  t.same(sorted(packageClosure(['pkg-a'], join(root, 'app'))), at('app/node_modules/pkg-a', 'app/node_modules/pkg-b', 'app/node_modules/pkg-a/node_modules/pkg-c'));
  t.same(packageClosure(['nowhere'], join(root, 'app')), []);
});

t.test('mapTargets: exports/imports under every condition Node may use', async (t) => {
  t.same(mapTargets('./i.js', '.'), ['./i.js'], 'string sugar');
  t.same(mapTargets({ import: './m.js', require: './c.cjs', types: './t.d.ts', browser: './b.js' }, '.'), ['./m.js', './c.cjs'], 'conditions sugar: node ones only');
  t.same(mapTargets({ '.': { node: { import: './n.mjs' }, default: './d.js' } }, '.'), ['./n.mjs', './d.js'], 'nested conditions');
  t.same(mapTargets({ './features/*.js': './src/*.js', './features/x/*.js': './x/*.js' }, './features/x/y.js'), ['./x/y.js'], 'the longest pattern wins');
  t.same(mapTargets({ './a': null }, './a'), [], 'null target');
  t.same(mapTargets({ './a': './a.js' }, './b'), [], 'not exported');
  t.same(mapTargets({ '#u': ['./u.js', './fallback.js'] }, '#u'), ['./u.js', './fallback.js'], 'arrays');
});
