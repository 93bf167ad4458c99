// On a host where no OS layer keeps helpers from writing the broker's caches of code (no bubblewrap, no uid drop:
// simulated with the probe override), a hostile sandboxed helper whose write path reaches them plants a validators
// module under the broker's own name (and a file in the compile cache). No helper there is given any cache, so no
// victim, unsandboxed or sandboxed, runs the plant; and the broker starts no cache writer there (its writers run
// unsandboxed). Positive controls: the attacker's writes succeed; the planted module runs when loaded as helpers load
// one; and on the real host (bubblewrap, root), where the caches are used, a victim given the path does run it.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FIXTURES, REPO_ROOT, rejection, withLoopOpen } from './helpers.js';

// This file's own TMPDIR (tap runs each file in its own process), set before the broker's modules make their caches.
const base = realpathSync(mkdtempSync(join(tmpdir(), 'bulkhead-cache-trust-')));
process.env['TMPDIR'] = base;
t.teardown(() => rmSync(base, { recursive: true, force: true }));

const { startBroker } = await import('bulkhead/testing');
const { probeHost, setHostProbeOverride } = await import('../lib/sandbox/index.js');
const { codeCacheWrites } = await import('../lib/broker/code-cache.js');
const { compileCacheDir, compileCacheWrites } = await import('../lib/broker/compile-cache.js');

const NO_BWRAP = (await probeHost(process.execPath)).bwrap === null && 'no bubblewrap on this host';
const HAS_COMPILE_CACHE = Number(process.versions.node.split('.')[0]) >= 22;
const LOADER = pathToFileURL(join(REPO_ROOT, 'dist/lib/protocol/validators-loader.js')).href;
const PROTOCOL = 'com.test.cache-trust';
const ENTRY = './cache-trust-service.js';
const CACHE_VARS = { NODE_COMPILE_CACHE: null, BULKHEAD_CODE_CACHE: null, BULKHEAD_VALIDATORS: null };
const untrusted = (): void => setHostProbeOverride((p) => ({ ...p, bwrap: null, bwrapProblem: 'simulated', setpriv: null }));
t.teardown(() => setHostProbeOverride(undefined));

const profile = (write: string[], memoryMiB: number): object => ({
  description: 'best-effort, so that it launches on the simulated host without bubblewrap',
  network: 'none',
  fs: { read: [], write },
  processes: { children: false, workers: false },
  addons: false,
  limits: { memoryMiB },
  env: [],
  enforcement: 'best-effort',
});
const profiles = mkdtempSync(join(base, 'profiles-'));
// The attacker may write the broker's TMPDIR (allowed: only a write path above it is refused), where the caches live.
writeFileSync(join(profiles, 'planter.json'), JSON.stringify(profile(['${tmp}'], 512)));
// The sandboxed victim: other V8 flags than the unsandboxed one, so its launch would start a compile-cache writer of its own.
writeFileSync(join(profiles, 'victim.json'), JSON.stringify(profile([], 384)));

const kit = await startBroker({
  root: FIXTURES,
  profilesDir: profiles,
  services: [
    { name: 'planter', entry: ENTRY, protocol: PROTOCOL, sandbox: 'planter', sandboxPaths: { tmp: base }, launch: { throttleMs: 0 } },
    { name: 'victim', entry: ENTRY, protocol: PROTOCOL, launch: { throttleMs: 0 } },
    { name: 'boxed-victim', entry: ENTRY, protocol: PROTOCOL, sandbox: 'victim', launch: { throttleMs: 0 } },
  ],
});
t.teardown(() => kit.close());

interface Report { env: Record<string, string | null>; codeCache: string; validatorsCache: string; plantedRuns: number; ajvCompiler: boolean }
const report = (service: string): Promise<Report> => kit.broker.connect(service).call('report', {}) as Promise<Report>;
const settle = (): Promise<void> => withLoopOpen(async () => {
  await Promise.all([codeCacheWrites(), compileCacheWrites()]);
});
/** Node's own compile-cache subdirectories (`v24.…-x64-<flags>-<uid>`), each made by one writer run. */
const compileSubdirs = (): string[] => readdirSync(compileCacheDir()!).filter((name) => name.startsWith(`${process.version}-`)).sort();

let modulePath = '';
let genuine = Buffer.alloc(0);
const plantedText = (): string => `globalThis.__bulkheadPlantedRuns = (globalThis.__bulkheadPlantedRuns ?? 0) + 1;\n${genuine.toString('utf8')}`;

t.test('on the real host the victim is given the caches, and the broker\'s writers fill them', { skip: NO_BWRAP }, async (t) => {
  const first = await report('victim');
  modulePath = first.env['BULKHEAD_VALIDATORS'] ?? '';
  t.ok(existsSync(modulePath), 'it is given the broker\'s validators module');
  t.ok(first.env['NODE_COMPILE_CACHE'] !== null && first.env['BULKHEAD_CODE_CACHE'] !== null, 'and the code caches');
  t.equal(first.ajvCompiler, false, 'it loaded no ajv compiler (the check the victims below make sees one: see the last test)');
  genuine = readFileSync(modulePath);
  await settle();
  if (HAS_COMPILE_CACHE) t.equal(compileSubdirs().length, 1, 'the compile-cache writer ran for its flags');
});

t.test('no OS layer keeps helpers from writing the caches: a plant succeeds, and no victim runs it', { skip: NO_BWRAP }, async (t) => {
  untrusted();
  t.teardown(() => setHostProbeOverride(undefined));
  await kit.broker.stop('victim');
  const subdirsBefore = compileSubdirs();
  const planted = await kit.broker.connect('planter').call('plant', { files: [
    { file: modulePath, text: plantedText() },
    { file: join(compileCacheDir()!, 'planted-entry'), text: 'bytecode' },
  ] });
  t.same(planted, [null, null], 'positive control: the attacker, granted the broker\'s TMPDIR, swapped the module and planted in the compile cache');
  t.equal(readFileSync(modulePath, 'utf8'), plantedText(), 'the planted module is under the broker\'s name');
  for (const victim of ['victim', 'boxed-victim']) {
    const seen = await report(victim);
    t.same(seen.env, CACHE_VARS, `${victim}: given none of the cache variables`);
    t.equal(seen.plantedRuns, 0, `${victim}: the planted module never ran in it`);
    t.equal(seen.codeCache, 'off', `${victim}: its runtime compiled from source`);
    t.equal(seen.ajvCompiler, false, `${victim}: it loaded no ajv compiler: the broker gave it the module's text, which it generated itself`);
    const bad = await rejection(kit.broker.connect(victim).call('greet', { name: 'a' }));
    t.equal(bad.code, 'ERR_INVALID_PARAMS', `${victim}: it still validates (its own ajv compiled the schemas)`);
    t.equal(await kit.broker.connect(victim).call('greet', { name: 'ab' }), 'hello ab', `${victim}: and serves`);
  }
  await settle();
  t.same(compileSubdirs(), subdirsBefore, 'no compile-cache writer ran (the boxed victim\'s new flags would have started one)');
  t.equal(readFileSync(modulePath, 'utf8'), plantedText(), 'nor the validators writer (it would have replaced the plant)');
  await Promise.all(['victim', 'boxed-victim', 'planter'].map((s) => kit.broker.stop(s)));
});

t.test('positive control: the planted module runs when loaded as a helper loads a module', { skip: NO_BWRAP }, async (t) => {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', `import { loadValidatorsModule } from ${JSON.stringify(LOADER)};
loadValidatorsModule(${JSON.stringify(modulePath)}, undefined); process.stdout.write(String(globalThis.__bulkheadPlantedRuns));`], { encoding: 'utf8' });
  t.equal(out, '1', 'it ran once');
});

t.test('positive control: on the real host, where the caches are used, a victim given the path runs the plant', { skip: NO_BWRAP }, async (t) => {
  // (On this host no helper could have planted it: bubblewrap binds the caches read-only. The plant stands in for one.)
  const seen = await report('victim');
  t.equal(seen.env['BULKHEAD_VALIDATORS'], modulePath, 'given the module path');
  t.equal(seen.plantedRuns, 1, 'and the planted module ran in it: the simulated host\'s 0 above is the withholding, not a dud plant');
  await report('boxed-victim');
  await settle();
  if (HAS_COMPILE_CACHE) t.equal(compileSubdirs().length, 2, 'and the boxed victim\'s launch starts its compile-cache writer here');
});

t.test('the module\'s text is passed only by the broker: a manifest\'s env cannot pass one; a helper without it compiles its own', { skip: NO_BWRAP }, async (t) => {
  untrusted();
  t.teardown(() => setHostProbeOverride(undefined));
  const planted = plantedText();
  kit.broker.register({ name: 'env-victim', entry: ENTRY, protocol: PROTOCOL, env: { BULKHEAD_VALIDATORS_SOURCE: planted, BULKHEAD_VALIDATORS: modulePath }, launch: { throttleMs: 0 } });
  const seen = await report('env-victim');
  t.equal(seen.plantedRuns, 0, 'the text a manifest named never ran');
  t.same(seen.env, CACHE_VARS, 'nor was its module path kept');
  await kit.broker.stop('env-victim');
  // Control for the ajv check: a validators directory others may write is not used (lib/protocol/precompiled.ts), so
  // this helper gets no module at all and compiles its schemas with ajv, which the check sees.
  const { MAX_VALIDATORS_SOURCE_BYTES } = await import('../lib/broker/validators-by-value.js');
  t.ok(genuine.length < MAX_VALIDATORS_SOURCE_BYTES, `this protocol's module (${String(genuine.length)} bytes) fits in the environment`);
  setHostProbeOverride(undefined);
  const dir = dirname(modulePath);
  chmodSync(dir, 0o777);
  t.teardown(() => chmodSync(dir, 0o755));
  kit.broker.register({ name: 'no-module', entry: ENTRY, protocol: PROTOCOL, launch: { throttleMs: 0 } });
  const own = await report('no-module');
  t.equal(own.env['BULKHEAD_VALIDATORS'], null, 'no module');
  t.equal(own.ajvCompiler, true, 'positive control: it loaded ajv\'s compiler, and the check says so');
  await kit.broker.stop('no-module');
});
