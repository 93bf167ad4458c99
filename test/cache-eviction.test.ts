// Eviction of the broker's code caches (lib/util/cache-eviction.ts), with real files: other node binaries' runtime
// directories and the old layout's files no broker used for a week go, at most KEEP_OTHER_BINARIES other directories
// stay, links are never followed nor removed as their targets, and two brokers evicting at once both succeed.
// Also: the broker marks what it uses (runtimeCacheDir touches its directory) and re-reads the binary's identity per
// call (an in-place upgrade of node gets a directory of its own).
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, lutimesSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, withLoopOpen } from './helpers.js';

// This file's own TMPDIR (tap runs each file in its own process), set before the broker's modules make their caches.
const base = realpathSync(mkdtempSync(join(tmpdir(), 'bulkhead-cache-eviction-')));
process.env['TMPDIR'] = base;
t.teardown(() => rmSync(base, { recursive: true, force: true }));

const { evictInBinaryDir, evictNodeCompileCaches, evictOtherBinaries, evictValidatorsModules, EVICT_AFTER_MS, KEEP_OTHER_BINARIES, WARM_UP_PREFIX } = await import('../lib/util/cache-eviction.js');
const { runtimeCacheDir } = await import('../lib/broker/code-cache.js');

const DAY = 24 * 3600 * 1000;
const ago = (ms: number): Date => new Date(Date.now() - ms);
const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

/** How an evictor child ended: its exit code and what it wrote after "ready". */
interface EvictorEnd {
  code: number | null;
  out: string;
}

/**
 * Runs `script` (an ES module that writes "ready\n", then evicts when stdin says go) in two children at once: each
 * loads the module and says so, and both are told go only once both are ready. Their exit codes and what they
 * wrote after "ready".
 */
async function twoEvictorsAtOnce(script: string): Promise<[EvictorEnd, EvictorEnd]> {
  const start = (): { ready: Promise<void>; go: () => void; done: Promise<EvictorEnd> } => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    let readied: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (readied = resolve));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.startsWith('ready\n')) readied();
    });
    const done = new Promise<EvictorEnd>((resolve) => child.once('close', (code) => resolve({ code, out: out.slice('ready\n'.length) })));
    return { ready, go: () => child.stdin.end('go'), done };
  };
  const a = start();
  const b = start();
  await Promise.all([a.ready, b.ready]);
  a.go();
  b.go();
  return Promise.all([a.done, b.done]);
}

t.test('other binaries\' directories and old-layout files: a week unused goes, the current and recent stay, links are left', async (t) => {
  const root = mkdtempSync(join(base, 'root-'));
  const outside = mkdtempSync(join(base, 'outside-'));
  writeFileSync(join(outside, 'keep-me'), 'x');
  const current = `runtime-${hex8(1)}`;
  const old = `runtime-${hex8(2)}`;
  const recent = `runtime-${hex8(3)}`;
  const link = `runtime-${hex8(4)}`;
  for (const name of [current, old, recent]) {
    mkdirSync(join(root, name));
    writeFileSync(join(root, name, 'runtime-0000000000000001-v0-x64-00000000.v8cache'), 'x');
  }
  // Inside an evicted directory: unlinked, never followed.
  symlinkSync(outside, join(root, old, 'a-dir-link'));
  symlinkSync(join(outside, 'keep-me'), join(root, old, 'a-file-link'));
  symlinkSync(outside, join(root, link));
  const oldFile = `runtime-${'a'.repeat(16)}-v20.0.0-x64-00000000.v8cache`;
  const recentFile = `runtime-${'b'.repeat(16)}-v20.0.0-x64-00000000.v8cache`;
  writeFileSync(join(root, oldFile), 'x');
  writeFileSync(join(root, recentFile), 'x');
  writeFileSync(join(root, 'notes.txt'), 'x');
  mkdirSync(join(root, 'v22.0.0-x64-12345678-0')); // node's own compile cache: not ours to evict
  for (const name of [current, old, oldFile, 'notes.txt', 'v22.0.0-x64-12345678-0']) utimesSync(join(root, name), ago(8 * DAY), ago(8 * DAY));
  lutimesSync(join(root, link), ago(8 * DAY), ago(8 * DAY));
  const removed = evictOtherBinaries(root, current);
  t.same(removed.sort(), [old, oldFile].sort(), 'only the week-old other binary and old-layout file');
  const left = readdirSync(root);
  t.ok(left.includes(current), 'the current binary\'s directory stays, however old');
  t.ok(left.includes(recent) && left.includes(recentFile), 'recent ones stay (another app of this uid may use them)');
  t.ok(left.includes('notes.txt') && left.includes('v22.0.0-x64-12345678-0'), 'other names stay');
  t.ok(lstatSync(join(root, link)).isSymbolicLink() && existsSync(join(outside, 'keep-me')), 'a link of the pattern: neither it nor what it points at removed');
  t.same(readdirSync(outside), ['keep-me'], 'nothing outside was touched through the link inside the evicted directory');
});

t.test(`at most ${String(KEEP_OTHER_BINARIES)} other binaries' directories stay, the most recently used`, async (t) => {
  const root = mkdtempSync(join(base, 'root-'));
  const names = Array.from({ length: KEEP_OTHER_BINARIES + 3 }, (_, i) => `runtime-${hex8(0x100 + i)}`);
  names.forEach((name, i) => {
    mkdirSync(join(root, name));
    utimesSync(join(root, name), ago(i * 3600 * 1000), ago(i * 3600 * 1000)); // names[0] used last
  });
  const current = `runtime-${hex8(0xfff)}`;
  mkdirSync(join(root, current));
  evictOtherBinaries(root, current);
  t.same(readdirSync(root).sort(), [current, ...names.slice(0, KEEP_OTHER_BINARIES)].sort(), 'the current one and the most recent others');
});

t.test('inside a binary\'s directory: cache files unused for a week and a killed writer\'s work directory go', async (t) => {
  const dir = mkdtempSync(join(base, 'bin-'));
  const outside = join(base, 'target-file');
  writeFileSync(outside, 'x');
  const kept = `runtime-${'c'.repeat(16)}-v20.0.0-x64-00000000.v8cache`;
  const oldRuntime = `runtime-${'d'.repeat(16)}-v20.0.0-x64-00000000.v8cache`;
  const oldValidators = `validators-${'1'.repeat(64)}-${'2'.repeat(16)}-d-w00000000-v20.0.0-x64-00000000.v8cache`;
  const usedValidators = `validators-${'3'.repeat(64)}-${'2'.repeat(16)}-d-w00000000-v20.0.0-x64-00000000.v8cache`;
  const linkName = `validators-${'4'.repeat(64)}-${'2'.repeat(16)}-d-w00000000-v20.0.0-x64-00000000.v8cache`;
  for (const name of [kept, oldRuntime, oldValidators, usedValidators]) writeFileSync(join(dir, name), 'x');
  symlinkSync(outside, join(dir, linkName));
  const oldWork = `${WARM_UP_PREFIX}aaaaaa`;
  const liveWork = `${WARM_UP_PREFIX}bbbbbb`;
  mkdirSync(join(dir, oldWork));
  mkdirSync(join(dir, liveWork));
  for (const name of [kept, oldRuntime, oldValidators]) utimesSync(join(dir, name), ago(EVICT_AFTER_MS + DAY), ago(EVICT_AFTER_MS + DAY));
  utimesSync(join(dir, oldWork), ago(2 * 3600 * 1000), ago(2 * 3600 * 1000));
  lutimesSync(join(dir, linkName), ago(8 * DAY), ago(8 * DAY));
  t.same(evictInBinaryDir(dir, [kept]).sort(), [oldRuntime, oldValidators, oldWork].sort());
  t.same(readdirSync(dir).sort(), [kept, liveWork, linkName, usedValidators].sort(), 'the kept file, the live work directory, the recent cache and the link stay');
  t.ok(existsSync(outside), 'the link\'s target is untouched');
});

t.test('Node\'s compile-cache subdirectories and the broker\'s links to them: a week unused goes, links unlinked never followed', async (t) => {
  const root = mkdtempSync(join(base, 'compile-'));
  const outside = mkdtempSync(join(base, 'outside-'));
  writeFileSync(join(outside, 'keep-me'), 'x');
  const oldDir = 'v22.23.0-x64-964aae3f-0';
  const recentDir = 'v24.22.3-x64-964aae3f-0';
  const nightly = 'v26.0.0-nightly20250101abcdef-arm64-0123abcd-0';
  const oldLink = 'v24.22.3-x64-964aae3f-65534'; // a dropped uid's link to the recent directory: old itself, target recent
  const recentLink = 'v24.22.3-x64-964aae3f-65535';
  const outsideLink = 'v20.0.0-x64-00000000-1000'; // a link out of the tree
  for (const name of [oldDir, recentDir, nightly]) {
    mkdirSync(join(root, name));
    writeFileSync(join(root, name, '1a2b3c4d'), 'bytecode');
  }
  symlinkSync(outside, join(root, oldDir, 'inner-link')); // inside an evicted directory: unlinked, never followed
  symlinkSync(recentDir, join(root, oldLink));
  symlinkSync(recentDir, join(root, recentLink));
  symlinkSync(outside, join(root, outsideLink));
  mkdirSync(join(root, `runtime-${hex8(1)}`)); // the runtime caches: evictOtherBinaries' business
  writeFileSync(join(root, 'notes.txt'), 'x');
  for (const name of [oldDir, nightly, `runtime-${hex8(1)}`, 'notes.txt']) utimesSync(join(root, name), ago(8 * DAY), ago(8 * DAY));
  for (const name of [oldLink, outsideLink]) lutimesSync(join(root, name), ago(8 * DAY), ago(8 * DAY));
  // The recent directory's files are old, the directory itself was marked used (the broker touches it after its writer ran).
  utimesSync(join(root, recentDir, '1a2b3c4d'), ago(30 * DAY), ago(30 * DAY));
  t.same(evictNodeCompileCaches(root).sort(), [nightly, oldDir, oldLink, outsideLink].sort(), 'the week-old directories and links');
  t.same(readdirSync(root).sort(), [recentDir, recentLink, `runtime-${hex8(1)}`, 'notes.txt'].sort(), 'the recent directory and link, and other names, stay');
  t.same(readdirSync(join(root, recentDir)), ['1a2b3c4d'], 'the old link\'s target is untouched');
  t.same(readdirSync(outside), ['keep-me'], 'nothing outside was touched through a link');
  t.same(evictNodeCompileCaches(root), [], 'a second run finds nothing more');
});

t.test('validators modules: a week unused goes, the kept one and recent ones stay, links and other names are left', async (t) => {
  const dir = mkdtempSync(join(base, 'validators-'));
  const outside = join(base, 'validators-target');
  writeFileSync(outside, 'x');
  const name = (h: string, format = '-d'): string => `${h.repeat(64)}-${'2'.repeat(16)}${format}.cjs`;
  const kept = name('a');
  const old = name('b');
  const oldFormat = name('c', ''); // the format before `-d`
  const recent = name('d');
  const link = name('e');
  const tmp = `${name('f')}.123.tmp`; // not a module name
  for (const file of [kept, old, oldFormat, recent, tmp]) writeFileSync(join(dir, file), 'module.exports = {};');
  symlinkSync(outside, join(dir, link));
  mkdirSync(join(dir, name('9'))); // a directory under a module's name: not a module
  for (const file of [kept, old, oldFormat, tmp, name('9')]) utimesSync(join(dir, file), ago(8 * DAY), ago(8 * DAY));
  lutimesSync(join(dir, link), ago(8 * DAY), ago(8 * DAY));
  t.same(evictValidatorsModules(dir, [kept]).sort(), [old, oldFormat].sort(), 'the week-old modules of both formats');
  t.same(readdirSync(dir).sort(), [kept, recent, link, tmp, name('9')].sort(), 'the kept module (however old), the recent one, the link, other names stay');
  t.ok(existsSync(outside), 'the link\'s target is untouched');
});

t.test('two evictors of compile caches and validators modules at once both finish, and everything old is gone', async (t) => {
  const root = mkdtempSync(join(base, 'race2-'));
  const mods = mkdtempSync(join(base, 'race2-mods-'));
  for (let i = 0; i < 200; i++) {
    const sub = `v22.${String(i)}.0-x64-${hex8(i)}-0`;
    mkdirSync(join(root, sub));
    for (let j = 0; j < 3; j++) writeFileSync(join(root, sub, hex8(j)), 'x');
    utimesSync(join(root, sub), ago(8 * DAY), ago(8 * DAY));
    const mod = join(mods, `${hex8(i).repeat(8)}-${'2'.repeat(16)}-d.cjs`);
    writeFileSync(mod, 'x');
    utimesSync(mod, ago(8 * DAY), ago(8 * DAY));
  }
  const url = pathToFileURL(join(REPO_ROOT, 'dist/lib/util/cache-eviction.js')).href;
  const script = `import { evictNodeCompileCaches, evictValidatorsModules } from ${JSON.stringify(url)}; process.stdout.write('ready\\n');
process.stdin.once('data', () => { const n = evictNodeCompileCaches(${JSON.stringify(root)}).length + evictValidatorsModules(${JSON.stringify(mods)}, []).length; process.stdout.write(String(n)); process.exit(0); });`;
  const results = await twoEvictorsAtOnce(script);
  t.same(results.map((r) => r.code), [0, 0], 'both finished');
  t.same(readdirSync(root), [], 'every old compile-cache directory is gone');
  t.same(readdirSync(mods), [], 'every old module is gone');
});

t.test('the broker\'s writers evict them: a launch\'s cache writers leave the recent and remove the week-old', async (t) => {
  const { compileCacheDir } = await import('../lib/broker/compile-cache.js');
  const { validatorsDir } = await import('../lib/protocol/precompiled.js');
  const root = compileCacheDir()!;
  const stale = 'v18.0.0-x64-00000000-0';
  mkdirSync(join(root, stale), { recursive: true });
  utimesSync(join(root, stale), ago(8 * DAY), ago(8 * DAY));
  mkdirSync(validatorsDir(), { recursive: true, mode: 0o755 });
  const staleModule = join(validatorsDir(), `${'7'.repeat(64)}-${'2'.repeat(16)}-d.cjs`);
  writeFileSync(staleModule, 'x');
  utimesSync(staleModule, ago(8 * DAY), ago(8 * DAY));
  // The runtime's writer and a validators writer, as a launch starts them (it is their own processes that evict).
  const svc = mkdtempSync(join(base, 'svc-'));
  const protocolFile = join(svc, 'p.json');
  writeFileSync(protocolFile, JSON.stringify({ name: 'com.test.evict', version: '1.0.0', methods: { ping: { params: { type: 'object' }, result: { type: 'string' } } } }));
  const entry = join(svc, 'main.js');
  writeFileSync(entry, '');
  const { helperLaunchInput, ValidatorCache } = await import('../lib/broker/helper-environment.js');
  const { codeCacheWrites, warmPlannedCodeCache } = await import('../lib/broker/code-cache.js');
  const { loadProtocolFile } = await import('../lib/protocol/registry.js');
  const resolved = { manifest: { name: 'svc', env: {} }, entry, serviceDir: svc, protocolFile, profile: undefined, sandboxPaths: {} } as unknown as Parameters<typeof helperLaunchInput>[0];
  const ctx = { implicitReads: [], nodePath: process.execPath, maxFrameBytes: 1 << 20, lookup: () => undefined } as unknown as Parameters<typeof helperLaunchInput>[1];
  const input = helperLaunchInput(resolved, ctx, new ValidatorCache(loadProtocolFile(protocolFile)), false);
  const module = input.env['BULKHEAD_VALIDATORS']!;
  t.ok(existsSync(module), 'positive control: the launch has a validators module, so a validators writer runs');
  utimesSync(module, ago(8 * DAY), ago(8 * DAY)); // last used long ago: the launch marks it used again
  warmPlannedCodeCache({ command: process.execPath, args: ['--max-old-space-size=200', entry] }, input);
  await withLoopOpen(codeCacheWrites);
  t.notOk(existsSync(join(root, stale)), 'the week-old compile-cache directory is gone');
  t.notOk(existsSync(staleModule), 'the week-old validators module is gone');
  t.ok(existsSync(module), 'the launch\'s own module stays');
  t.ok(Date.now() - lstatSync(module).mtimeMs < DAY, 'marked used by the launch');
});

t.test('the broker marks its compile-cache subdirectory used each time its writer runs (once per process, again daily)', { skip: Number(process.versions.node.split('.')[0]) < 22 && 'no compile cache before Node 22' }, async (t) => {
  const { compileCacheDir, compileCacheWrites, forgetCompileCaches, warmCompileCache } = await import('../lib/broker/compile-cache.js');
  const root = compileCacheDir()!;
  const own = (): string[] => readdirSync(root).filter((name) => name.startsWith(`${process.version}-`) && lstatSync(join(root, name)).isDirectory());
  const flags = ['--max-old-space-size=300'];
  void warmCompileCache(process.execPath, flags);
  await withLoopOpen(compileCacheWrites);
  const before = own();
  t.ok(before.length > 0, 'the writer filled a subdirectory');
  for (const name of before) utimesSync(join(root, name), ago(8 * DAY), ago(8 * DAY));
  void warmCompileCache(process.execPath, flags);
  await withLoopOpen(compileCacheWrites);
  t.ok(before.every((name) => Date.now() - lstatSync(join(root, name)).mtimeMs > 7 * DAY), 'the same broker process does not run the writer again');
  forgetCompileCaches(); // what the daily recheck does
  void warmCompileCache(process.execPath, flags);
  await withLoopOpen(compileCacheWrites);
  t.ok(own().some((name) => Date.now() - lstatSync(join(root, name)).mtimeMs < DAY), 'after forgetting, its writer ran again and marked its subdirectory used');
});

const DIRS = 300;

t.test('two brokers evicting the same tree at once both finish, and everything old is gone', async (t) => {
  const root = mkdtempSync(join(base, 'race-'));
  for (let i = 0; i < DIRS; i++) {
    const name = `runtime-${hex8(0x1000 + i)}`;
    mkdirSync(join(root, name));
    for (let j = 0; j < 3; j++) writeFileSync(join(root, name, `validators-${String(j).repeat(64)}-${'2'.repeat(16)}-d-w0-v0-x64-0.v8cache`), 'x');
    utimesSync(join(root, name), ago(8 * DAY), ago(8 * DAY));
  }
  const current = `runtime-${hex8(0xffff)}`;
  mkdirSync(join(root, current));
  const url = pathToFileURL(join(REPO_ROOT, 'dist/lib/util/cache-eviction.js')).href;
  const script = `import { evictOtherBinaries } from ${JSON.stringify(url)}; process.stdout.write('ready\\n');
process.stdin.once('data', () => { process.stdout.write(String(evictOtherBinaries(${JSON.stringify(root)}, ${JSON.stringify(current)}).length)); process.exit(0); });`;
  const [ra, rb] = await twoEvictorsAtOnce(script);
  t.equal(ra.code, 0, 'the first finished');
  t.equal(rb.code, 0, 'the second finished');
  t.comment(`they listed ${ra.out} and ${rb.out} of ${String(DIRS)} old directories to remove, each finding gone what the other removed first`);
  t.same(readdirSync(root), [current], 'every old directory is gone, the current one stays');
});

t.test('the broker marks a binary\'s directory used, and re-reads the binary\'s identity on every call', async (t) => {
  const nodePath = join(base, 'node-bin');
  copyFileSync('/bin/sh', nodePath);
  const first = runtimeCacheDir(nodePath)!;
  t.ok(first !== undefined, 'a directory for the binary');
  utimesSync(first, ago(8 * DAY), ago(8 * DAY));
  t.equal(runtimeCacheDir(nodePath), first, 'the same binary: the same directory');
  // An in-place upgrade: a new file renamed over the path (what a package manager does).
  const next = join(base, 'node-bin.new');
  copyFileSync('/bin/sh', next);
  renameSync(next, nodePath);
  const second = runtimeCacheDir(nodePath)!;
  t.ok(second !== undefined && second !== first, 'the upgraded binary gets a directory of its own');
  t.ok(Date.now() - lstatSync(second).mtimeMs < DAY, 'marked used when handed out');
  t.ok(Date.now() - lstatSync(first).mtimeMs > 7 * DAY, 'the old binary\'s directory is no longer marked (eviction takes it after a week)');
});
