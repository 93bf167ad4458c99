// A validators module file someone planted under the name of the broker's module (lib/protocol/precompiled.ts) is
// never run by the broker's validators cache writer, which runs unsandboxed (lib/validators-cache-writer.ts): the
// writer regenerates the module from the protocol file, runs only those bytes, and puts them back under the name.
// Layout as users have it: the broker's TMPDIR holding bulkhead-<uid>-validators and bulkhead-<uid>-compile-cache.
// The planted module writes a marker when it runs; the positive control shows it does when loaded as a module is.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, withLoopOpen } from './helpers.js';

// This file's own TMPDIR (tap runs each file in its own process), set before the broker's modules make their caches.
const base = realpathSync(mkdtempSync(join(tmpdir(), 'bulkhead-validators-plant-')));
process.env['TMPDIR'] = base;
t.teardown(() => rmSync(base, { recursive: true, force: true }));

const { helperLaunchInput, ValidatorCache } = await import('../lib/broker/helper-environment.js');
const { codeCacheWrites, runtimeCacheDir, warmPlannedCodeCache } = await import('../lib/broker/code-cache.js');
const { validatorsDir } = await import('../lib/protocol/precompiled.js');
const { validatorsModuleName, validatorsModuleSource } = await import('../lib/protocol/validators-module.js');
const { loadProtocolFile } = await import('../lib/protocol/registry.js');
const { cachedDataFor } = await import('../lib/util/runtime-loader.js');

const LOADER = pathToFileURL(join(REPO_ROOT, 'dist/lib/protocol/validators-loader.js')).href;
const WRITER = join(REPO_ROOT, 'dist/lib/validators-cache-writer.js');

const svc = join(base, 'svc');
mkdirSync(svc);
const entry = join(svc, 'main.js');
writeFileSync(entry, '');
const protocolFile = join(svc, 'p.json');
writeFileSync(protocolFile, JSON.stringify({ name: 'com.test.validators-plant', version: '1.0.0', methods: { greet: { params: { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 2 } } }, result: { type: 'string' } } } }));
const protocol = loadProtocolFile(protocolFile);
const genuine = validatorsModuleSource(protocol);
const marker = join(base, 'PLANTED-RAN');
const plantedText = `require('node:fs').writeFileSync(${JSON.stringify(marker)}, String(process.pid));\nmodule.exports.__keys = {};\n`;

const resolved = { manifest: { name: 'svc', env: {} }, entry, serviceDir: svc, protocolFile, profile: undefined, sandboxPaths: {} } as unknown as Parameters<typeof helperLaunchInput>[0];
const ctx = { implicitReads: [], nodePath: process.execPath, maxFrameBytes: 1 << 20, lookup: () => undefined } as unknown as Parameters<typeof helperLaunchInput>[1];
// The writers' children do not hold the event loop open: keep it open until they are done.
const settle = (): Promise<void> => withLoopOpen(codeCacheWrites);

t.test('positive control: the planted module writes its marker when loaded as helpers load a module', async (t) => {
  const copy = join(base, 'copy');
  mkdirSync(copy);
  const file = join(copy, validatorsModuleName(protocol));
  writeFileSync(file, plantedText);
  execFileSync(process.execPath, ['--input-type=module', '-e', `import { loadValidatorsModule } from ${JSON.stringify(LOADER)}; loadValidatorsModule(${JSON.stringify(file)}, undefined);`], { stdio: 'ignore' });
  t.ok(existsSync(marker), 'it ran and left the marker');
  rmSync(marker);
});

t.test('a module planted under the broker\'s name in its validators directory is never run by the cache writer, and is replaced', async (t) => {
  mkdirSync(validatorsDir(), { recursive: true, mode: 0o755 });
  const module = join(validatorsDir(), validatorsModuleName(protocol));
  writeFileSync(module, plantedText, { mode: 0o644 });
  const handedOut = new ValidatorCache(protocol).get();
  t.equal(handedOut, module, 'the broker names its module by protocol and ajv install (the planted file is under that name)');
  const input = helperLaunchInput(resolved, ctx, new ValidatorCache(protocol), false);
  warmPlannedCodeCache({ command: process.execPath, args: [entry] }, input);
  await settle();
  t.notOk(existsSync(marker), 'the writer did not run the planted module');
  t.ok(readFileSync(module).equals(genuine), 'the broker\'s genuine module is back under its name');
  const dir = runtimeCacheDir(process.execPath)!;
  const caches = readdirSync(dir).filter((name) => name.startsWith('validators-'));
  t.equal(caches.length, 1, 'the writer saved a validators cache');
  t.ok(cachedDataFor(readFileSync(join(dir, caches[0]!)), genuine) !== undefined, 'made from the genuine module\'s bytes');
  // The genuine module, loaded as a helper loads it, takes that cache and validates.
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', `import { loadValidatorsModule } from ${JSON.stringify(LOADER)};
const r = loadValidatorsModule(${JSON.stringify(module)}, ${JSON.stringify(dir)}); const v = r.exports[r.exports.__keys['params:greet']];
process.stdout.write(JSON.stringify([r.codeCache, v({ name: 'ab' }), v({ name: 'a' })]));`], { encoding: 'utf8' });
  t.same(JSON.parse(out), ['accepted', true, false], 'a helper takes the cache and the validators work');
  t.notOk(existsSync(marker), 'and the planted module never ran');
});

t.test('the writer run by hand: a planted module with a protocol file whose schemas changed since is refused, not run', async (t) => {
  const dir = mkdtempSync(join(base, 'cache-'));
  const module = join(validatorsDir(), validatorsModuleName(protocol));
  writeFileSync(module, plantedText);
  const other = join(svc, 'other.json');
  writeFileSync(other, JSON.stringify({ name: 'com.test.validators-plant', version: '1.0.1', methods: { greet: { params: { type: 'object' }, result: { type: 'string' } } } }));
  const run = (protocolPath: string): number => {
    try {
      execFileSync(process.execPath, [WRITER, dir, module, protocolPath], { stdio: 'ignore' });
      return 0;
    } catch (err) {
      return (err as { status: number }).status;
    }
  };
  t.equal(run(other), 65, 'another protocol than the module\'s: refused');
  t.notOk(existsSync(marker), 'the planted module did not run');
  t.ok(readFileSync(module).equals(Buffer.from(plantedText)), 'and nothing was written under its name');
  t.equal(run(protocolFile), 0, 'control: with the module\'s own protocol file the writer succeeds');
  t.notOk(existsSync(marker), 'without running the planted module');
  t.ok(readFileSync(module).equals(genuine), 'and replaces it with the genuine module');
});

t.test('the runtime\'s code-cache writer makes its warm-up module in its own work directory, not the shared validators directory', async (t) => {
  const tmp = mkdtempSync(join(base, 'tmp-'));
  const cache = mkdtempSync(join(base, 'runtime-cache-'));
  const out = execFileSync(process.execPath, [join(REPO_ROOT, 'dist/lib/code-cache-writer.js'), cache], { env: { PATH: process.env['PATH'] ?? '', TMPDIR: tmp }, encoding: 'utf8' });
  t.ok(out.startsWith(`${cache}/runtime-`) && existsSync(out), 'positive control: the writer warmed the runtime up and saved its cache');
  t.same(readdirSync(tmp), [], 'it wrote nothing in its TMPDIR (no validators directory, no work directory there)');
  t.same(readdirSync(cache), [out.slice(cache.length + 1)], 'and left only its cache file in the cache directory');
});
