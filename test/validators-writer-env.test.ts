// The broker's validators cache writer runs a validators module unsandboxed (lib/broker/validators-code-cache.ts), so
// it must run only a module the broker itself made (lib/protocol/precompiled.ts): a manifest's env naming one of its own
// (BULKHEAD_VALIDATORS) is dropped when the broker has none, and a module path the broker did not make is never run,
// whoever put it in the launch's env. The planted module writes a marker file when it runs; the control, the broker's
// own module, does get its cache written.
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { withLoopOpen } from './helpers.js';

// This file's own TMPDIR (tap runs each file in its own process), set before the broker's modules make their caches.
const base = realpathSync(mkdtempSync(join(tmpdir(), 'bulkhead-validators-env-')));
process.env['TMPDIR'] = base;
t.teardown(() => rmSync(base, { recursive: true, force: true }));

const { helperLaunchInput } = await import('../lib/broker/helper-environment.js');
const { codeCacheWrites, runtimeCacheDir, warmPlannedCodeCache } = await import('../lib/broker/code-cache.js');
const { precompileValidators, validatorsDir } = await import('../lib/protocol/precompiled.js');
const { loadProtocolFile } = await import('../lib/protocol/registry.js');

const svc = join(base, 'svc');
mkdirSync(svc);
const entry = join(svc, 'main.js');
writeFileSync(entry, '');
const protocolFile = join(svc, 'p.json');
writeFileSync(protocolFile, JSON.stringify({ name: 'com.test.validators-env', version: '1.0.0', methods: { greet: { params: { type: 'object', properties: { name: { type: 'string', minLength: 2 } } }, result: { type: 'string' } } } }));
const marker = join(base, 'PLANTED-RAN');
const planted = join(svc, `${'a'.repeat(64)}-${'b'.repeat(16)}-d.cjs`);
writeFileSync(planted, `require('node:fs').writeFileSync(${JSON.stringify(marker)}, String(process.pid));\nmodule.exports.__keys = {};\n`);

const resolved = (env: Record<string, string>) => ({ manifest: { name: 'svc', env }, entry, serviceDir: svc, protocolFile, profile: undefined, sandboxPaths: {} }) as unknown as Parameters<typeof helperLaunchInput>[0];
const ctx = { implicitReads: [], nodePath: process.execPath, maxFrameBytes: 1 << 20, lookup: () => undefined } as unknown as Parameters<typeof helperLaunchInput>[1];
const plan = { command: process.execPath, args: [entry] };
// Another V8 flag set: caches the first tests' launches did not make.
const flagged = { command: process.execPath, args: ['--max-old-space-size=300', entry] };
const validatorsCaches = (): string[] => readdirSync(runtimeCacheDir(process.execPath)!).filter((name) => name.startsWith('validators-'));
// The writers' children do not hold the event loop open: keep it open until they are done.
const settle = (): Promise<void> => withLoopOpen(codeCacheWrites);
const validators = (get: () => string | undefined) => ({ get }) as unknown as Parameters<typeof helperLaunchInput>[2];

t.test('a manifest\'s BULKHEAD_VALIDATORS is dropped when the broker has no module, and never run', async (t) => {
  const input = helperLaunchInput(resolved({ BULKHEAD_VALIDATORS: planted }), ctx, validators(() => undefined), false);
  t.equal(input.env['BULKHEAD_VALIDATORS'], undefined, 'not in the helper\'s env');
  t.ok(input.brokerCaches?.dirs.includes(validatorsDir()), 'the validators directory is still one of the caches bound read-only');
  warmPlannedCodeCache(plan, input);
  await settle();
  t.notOk(existsSync(marker), 'the planted module did not run');
});

t.test('a module the broker did not make is never run by the writer, whoever named it', async (t) => {
  const input = helperLaunchInput(resolved({}), ctx, validators(() => undefined), false);
  warmPlannedCodeCache(plan, { ...input, env: { ...input.env, BULKHEAD_VALIDATORS: planted } });
  await settle();
  t.notOk(existsSync(marker), 'the planted module did not run');
  t.same(validatorsCaches(), [], 'and no validators cache was written');
});

const own = precompileValidators(loadProtocolFile(protocolFile));

t.test('a launch whose helper can write the caches (withheld from it) starts no writer', async (t) => {
  const input = helperLaunchInput(resolved({}), ctx, validators(() => own), false);
  const before = readdirSync(runtimeCacheDir(process.execPath)!);
  warmPlannedCodeCache({ ...flagged, withholdCaches: true }, input);
  await settle();
  t.same(readdirSync(runtimeCacheDir(process.execPath)!), before, 'neither the runtime\'s nor the validators\' cache was written');
});

t.test('control: the broker\'s own module gets its cache written', async (t) => {
  t.ok(own !== undefined && dirname(own) === validatorsDir(), `the broker made its module (${String(own)})`);
  const input = helperLaunchInput(resolved({ BULKHEAD_VALIDATORS: planted }), ctx, validators(() => own), false);
  t.equal(input.env['BULKHEAD_VALIDATORS'], own, 'the broker\'s module, not the manifest\'s');
  const runtimes = readdirSync(runtimeCacheDir(process.execPath)!).filter((name) => name.startsWith('runtime-')).length;
  warmPlannedCodeCache(flagged, input);
  await settle();
  t.equal(validatorsCaches().length, 1, 'the writer ran and saved its cache');
  t.equal(readdirSync(runtimeCacheDir(process.execPath)!).filter((name) => name.startsWith('runtime-')).length, runtimes + 1, 'and the runtime\'s, for these flags');
  t.notOk(existsSync(marker), 'and the planted module never ran');
});
