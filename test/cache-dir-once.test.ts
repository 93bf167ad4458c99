// One launch's broker-side cache work (its input, then the compile-cache and code-cache writers' checks) stats the
// node binary once and checks its runtime cache directory at most once: the directory is found when the launch's
// input is made and passed down (lib/broker/helper-environment.ts). Counted by wrapping node:fs's own functions
// (the real calls still run), with the writers really started, on the first launch and on a later one.
import t from 'tap';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withLoopOpen } from './helpers.js';

const base = realpathSync(mkdtempSync(join(tmpdir(), 'bulkhead-cache-dir-once-')));
process.env['TMPDIR'] = base;
t.teardown(() => rmSync(base, { recursive: true, force: true }));

const { helperLaunchInput, ValidatorCache } = await import('../lib/broker/helper-environment.js');
const { codeCacheWrites, warmPlannedCodeCache } = await import('../lib/broker/code-cache.js');
const { compileCacheWrites, warmPlannedCompileCache } = await import('../lib/broker/compile-cache.js');
const { loadProtocolFile } = await import('../lib/protocol/registry.js');

const svc = join(base, 'svc');
mkdirSync(svc);
const entry = join(svc, 'main.js');
writeFileSync(entry, '');
const protocolFile = join(svc, 'p.json');
writeFileSync(protocolFile, JSON.stringify({ name: 'com.test.cache-dir-once', version: '1.0.0', methods: { ping: { params: { type: 'object' }, result: { type: 'string' } } } }));
const resolved = { manifest: { name: 'svc', env: {} }, entry, serviceDir: svc, protocolFile, profile: undefined, sandboxPaths: {} } as unknown as Parameters<typeof helperLaunchInput>[0];
const ctx = { implicitReads: [], nodePath: process.execPath, maxFrameBytes: 1 << 20, lookup: () => undefined } as unknown as Parameters<typeof helperLaunchInput>[1];
const validators = new ValidatorCache(loadProtocolFile(protocolFile));

/** Runs one launch's cache work with node:fs's statSync and existsSync counted by path. */
function countedLaunch(): { stats: number; dirChecks: number; runtimeCache: string | undefined } {
  const fs = process.getBuiltinModule('node:fs') as { statSync: typeof import('node:fs').statSync; existsSync: typeof import('node:fs').existsSync };
  const { statSync, existsSync } = fs;
  const seen: string[] = [];
  fs.statSync = ((path: string, ...rest: unknown[]) => {
    seen.push(`stat:${String(path)}`);
    return (statSync as (...a: unknown[]) => unknown)(path, ...rest);
  }) as typeof statSync;
  fs.existsSync = ((path: string) => {
    seen.push(`exists:${String(path)}`);
    return existsSync(path);
  }) as typeof existsSync;
  syncBuiltinESMExports(); // the ESM named imports of node:fs see the wrappers too
  try {
    const input = helperLaunchInput(resolved, ctx, validators, false);
    const plan = { command: process.execPath, args: [entry] };
    warmPlannedCompileCache(plan, input);
    warmPlannedCodeCache(plan, input);
    return { stats: seen.filter((s) => s === `stat:${process.execPath}`).length, dirChecks: seen.filter((s) => input.runtimeCache !== undefined && s === `exists:${input.runtimeCache}`).length, runtimeCache: input.runtimeCache };
  } finally {
    fs.statSync = statSync;
    fs.existsSync = existsSync;
    syncBuiltinESMExports();
  }
}

t.test('the first launch (writers start) and a later one each stat the binary once', async (t) => {
  const first = countedLaunch();
  t.ok(first.runtimeCache !== undefined, 'positive control: the launch has a runtime cache directory, so every step used it');
  t.equal(first.stats, 1, 'first launch: the node binary stat\'ed once');
  t.ok(first.dirChecks <= 1, `first launch: its directory checked at most once (${String(first.dirChecks)})`);
  await withLoopOpen(async () => {
    await Promise.all([codeCacheWrites(), compileCacheWrites()]);
  });
  const later = countedLaunch();
  t.equal(later.stats, 1, 'a later launch: once');
  t.equal(later.dirChecks, 1, 'and its directory checked once (still there: made again when evicted)');
  t.equal(later.runtimeCache, first.runtimeCache, 'the same directory');
});
