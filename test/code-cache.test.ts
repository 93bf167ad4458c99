// V8's code cache of the helper runtime (lib/util/runtime-loader.ts, lib/broker/code-cache.ts): the broker alone
// writes it, after a warm-up; helpers load the runtime from it (unsandboxed and under every shipped profile), cannot write it,
// and never run a stale one: a runtime changed at the same length compiles from source, as does a corrupt cache.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startBroker, type TestBroker } from 'bulkhead/testing';
import { cachedDataFor, codeCacheContents, codeCacheFile, CODE_CACHE_MAGIC, runtimeBuildId } from '../lib/util/runtime-loader.js';
import { codeCacheWrites, RUNTIME_SCRIPT, runtimeCacheDir } from '../lib/broker/code-cache.js';
import { compileCacheDir } from '../lib/broker/compile-cache.js';
import { FIXTURES, nextSpare, REPO_ROOT } from './helpers.js';

const LOADER = pathToFileURL(join(REPO_ROOT, 'dist/lib/util/runtime-loader.js')).href;
const WRITER = join(REPO_ROOT, 'dist/lib/code-cache-writer.js');

t.test('cache files: a source copy that must equal the runtime byte for byte, names keyed by build, node and flags', async (t) => {
  const source = Buffer.from('/*bulkhead-runtime:0123456789abcdef*/(function(){ return "a"; })');
  const data = Buffer.from('v8 data');
  const file = codeCacheContents(source, data);
  t.ok(file.subarray(0, CODE_CACHE_MAGIC.length).toString('latin1') === CODE_CACHE_MAGIC);
  t.same(cachedDataFor(file, source), data, 'the same source: its data');
  t.equal(cachedDataFor(file, Buffer.from(source.toString().replace('"a"', '"b"'))), undefined, 'same length, other content: none');
  t.equal(cachedDataFor(file, Buffer.concat([source, Buffer.from(' ')])), undefined, 'other length: none');
  t.equal(cachedDataFor(file.subarray(0, file.length - data.length), source), undefined, 'no data: none');
  t.equal(cachedDataFor(file.subarray(0, 30), source), undefined, 'truncated: none');
  t.equal(cachedDataFor(Buffer.from('garbage'), source), undefined, 'garbage: none');
  t.equal(runtimeBuildId(source), '0123456789abcdef');
  t.equal(runtimeBuildId(Buffer.from('(function(){})')), undefined);
  const plain = codeCacheFile('/c', 'id', ['--permission', '--allow-fs-read=/x']);
  t.equal(plain, codeCacheFile('/c', 'id', []), 'permission flags do not change it (not V8 flags)');
  t.not(codeCacheFile('/c', 'id', ['--max-old-space-size=64']), plain, 'a V8 flag does');
  t.match(plain, new RegExp(`^/c/runtime-id-${process.version}-${process.arch}-[0-9a-f]{8}\\.v8cache$`));
});

/** Loads `runtime` in a fresh node process with the loader and reports its state and one constant of its code. */
function load(runtime: string, cacheDir: string, flags: string[] = []): { codeCache: string; protocolFile: string } {
  const script = `import { loadRuntime } from ${JSON.stringify(LOADER)};
const r = loadRuntime(${JSON.stringify(runtime)}, ${JSON.stringify(cacheDir)});
process.stdout.write(JSON.stringify({ codeCache: r.codeCache, protocolFile: r.exports.HELPER_ENV.protocolFile }));`;
  return JSON.parse(execFileSync(process.execPath, [...flags, '--input-type=module', '-e', script], { env: { PATH: process.env['PATH'] ?? '' }, encoding: 'utf8' })) as { codeCache: string; protocolFile: string };
}

t.test('the loader uses a cache only for the runtime it was made from; stale or corrupt ones compile from source', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-code-cache-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cacheDir = join(dir, 'cache');
  execFileSync('mkdir', [cacheDir]);
  const file = execFileSync(process.execPath, [WRITER, cacheDir], { env: { PATH: process.env['PATH'] ?? '' }, encoding: 'utf8' });
  t.equal(file, codeCacheFile(cacheDir, runtimeBuildId(readFileSync(RUNTIME_SCRIPT))!, []), 'the writer names the file for this runtime, node and flags');
  t.equal(statSync(file).mode & 0o777, 0o644, 'readable by helpers of other uids, writable by the broker only');
  const cache = readFileSync(file);

  // Positive control: the runtime it was made from loads from it.
  t.same(load(RUNTIME_SCRIPT, cacheDir), { codeCache: 'accepted', protocolFile: 'BULKHEAD_PROTOCOL_FILE' }, 'V8 takes the cache for its own runtime');
  t.same(load(RUNTIME_SCRIPT, join(dir, 'nowhere')), { codeCache: 'missing', protocolFile: 'BULKHEAD_PROTOCOL_FILE' }, 'no cache file: compiled from source');
  t.equal(load(RUNTIME_SCRIPT, cacheDir, ['--max-old-space-size=300']).codeCache, 'missing', 'other V8 flags look for a file of their own');

  // A runtime changed at the same length, build id line and all: the same cache file name.
  const tampered = join(dir, 'service.runtime.cjs');
  const text = readFileSync(RUNTIME_SCRIPT, 'latin1');
  const changed = text.replace("'BULKHEAD_PROTOCOL_FILE'", "'BULKHEAD_PROTOCOL_FILX'").replace('"BULKHEAD_PROTOCOL_FILE"', '"BULKHEAD_PROTOCOL_FILX"');
  t.not(changed, text, 'the tamper changed the source');
  t.equal(changed.length, text.length, 'at the same length');
  writeFileSync(tampered, changed, 'latin1');
  t.same(load(tampered, cacheDir), { codeCache: 'stale', protocolFile: 'BULKHEAD_PROTOCOL_FILX' }, 'the changed runtime is compiled and its own code runs');
  // Why the loader compares the source: V8 itself takes this cache for the changed source and runs the old code.
  const v8 = JSON.parse(execFileSync(process.execPath, ['-e', `const vm = require('node:vm'); const fs = require('node:fs');
const s = new vm.Script(fs.readFileSync(${JSON.stringify(tampered)}, 'latin1'), { cachedData: fs.readFileSync(${JSON.stringify(file)}).subarray(${String(cache.length - cachedDataFor(cache, readFileSync(RUNTIME_SCRIPT))!.length)}) });
const m = { exports: {} }; s.runInThisContext()(m, require, 'file:///x');
process.stdout.write(JSON.stringify([s.cachedDataRejected, m.exports.HELPER_ENV.protocolFile]));`], { encoding: 'utf8' })) as [boolean, string];
  t.same(v8, [false, 'BULKHEAD_PROTOCOL_FILE'], 'V8 alone accepts the stale cache and runs the old constant (the check V8 does not make)');

  // Corrupt caches: never used, never fatal.
  const data = cachedDataFor(cache, readFileSync(RUNTIME_SCRIPT))!;
  const head = cache.length - data.length;
  const mangled = Buffer.from(cache);
  mangled.fill(0xa5, head, head + 16); // V8's own header: magic, version and flag hashes
  writeFileSync(file, mangled);
  t.same(load(RUNTIME_SCRIPT, cacheDir), { codeCache: 'rejected', protocolFile: 'BULKHEAD_PROTOCOL_FILE' }, 'a mangled V8 header: V8 refuses it, compiled from source');
  writeFileSync(file, cache.subarray(0, head + 100));
  t.equal(load(RUNTIME_SCRIPT, cacheDir).codeCache, 'rejected', 'truncated V8 data: refused');
  writeFileSync(file, cache.subarray(0, 1000));
  t.equal(load(RUNTIME_SCRIPT, cacheDir).codeCache, 'stale', 'truncated inside the source copy: not used');
  writeFileSync(file, 'garbage');
  t.equal(load(RUNTIME_SCRIPT, cacheDir).codeCache, 'stale', 'garbage: not used');
  copyFileSync(RUNTIME_SCRIPT, file);
  t.equal(load(RUNTIME_SCRIPT, cacheDir).codeCache, 'stale', 'another file in its place: not used');
});

t.test('bulkhead/service outside a helper: no cache, and stacks name the runtime script', async (t) => {
  const facade = pathToFileURL(join(REPO_ROOT, 'dist/lib/service.bundle.js')).href;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', `import { serve, runtimeLoad } from ${JSON.stringify(facade)};
try { serve('x', {}); } catch (err) { process.stdout.write(JSON.stringify([runtimeLoad.codeCache, err.code, err.stack])); }`], { env: { PATH: process.env['PATH'] ?? '' }, encoding: 'utf8' });
  const [state, code, stack] = JSON.parse(out) as [string, string, string];
  t.equal(state, 'off', 'no BULKHEAD_CODE_CACHE: compiled from source');
  t.equal(code, 'ERR_LAUNCH_FAILED', 'the runtime ran (serve() outside a helper)');
  t.match(stack, /dist\/lib\/service\.runtime\.cjs:\d+:\d+/, 'its stack names the runtime script with line and column');
});

interface Probe { codeCache: string; validatorsCache: string; validatorsFile: string | null; validatorsOverwrite: string | null; dir: string | null; files: string[]; overwrite: string | null; plant: string | null }

const PROFILES = ['pure-compute', 'no-network', 'network-client', 'fs-reader'] as const;

let kit: TestBroker;
t.before(async () => {
  const data = mkdtempSync(join(tmpdir(), 'bulkhead-code-cache-data-'));
  t.teardown(() => rmSync(data, { recursive: true, force: true }));
  kit = await startBroker({
    root: FIXTURES,
    services: [
      { name: 'plain', entry: './code-cache-service.js', protocol: 'com.test.code-cache', launch: { throttleMs: 0 } },
      ...PROFILES.map((sandbox) => ({ name: sandbox, entry: './code-cache-service.js', protocol: 'com.test.code-cache', sandbox, launch: { throttleMs: 0 }, ...(sandbox === 'fs-reader' ? { sandboxPaths: { data } } : {}) })),
    ],
  });
});
t.teardown(() => kit.close());

/** Launches `service` once (which starts the cache writer if needed), waits for the writer, then probes a fresh launch. */
async function probeWarm(service: string, write: boolean, own = false): Promise<Probe> {
  await kit.broker.connect(service).call('probe', { write: false });
  await codeCacheWrites();
  await kit.broker.stop(service);
  return (await kit.broker.connect(service).call('probe', { write, own })) as Probe;
}

t.test('unsandboxed: a relaunched helper loads the runtime from the broker-written cache', async (t) => {
  // own: the writes go to files of the helper's own (removed again), never a real cache file other tests load.
  const probe = await probeWarm('plain', true, true);
  t.equal(probe.dir, runtimeCacheDir(process.execPath), 'the helper is told the broker\'s cache directory for its node binary');
  t.equal(dirname(probe.dir!), compileCacheDir(), 'inside the compile-cache directory (read-only under every profile)');
  t.equal(probe.codeCache, 'accepted', 'V8 took the cache (positive control for the sandboxed case)');
  t.equal(probe.validatorsCache, 'accepted', 'and the cache of its precompiled validators module');
  // Positive control for the refused writes below: where nothing forbids it, the same writes work.
  t.equal(probe.overwrite, null, 'an unsandboxed helper (the broker\'s uid, no sandbox) can overwrite a file there in place');
  t.equal(probe.plant, null, 'and plant one');
});

for (const profile of PROFILES) t.test(`${profile}: the helper loads the runtime from the cache and cannot write it`, async (t) => {
  const probe = await probeWarm(profile, true);
  t.equal(probe.codeCache, 'accepted', 'V8 took the cache under the sandbox (read through the sandbox, same V8 flags as the writer)');
  t.ok(probe.files.length > 0, 'the helper sees the cache files');
  t.match(probe.overwrite, /^(EROFS|EACCES|EPERM|ERR_ACCESS_DENIED)$/, `overwriting a cache file in place is refused (${String(probe.overwrite)})`);
  t.match(probe.plant, /^(EROFS|EACCES|EPERM|ERR_ACCESS_DENIED)$/, `planting a file is refused (${String(probe.plant)})`);
  t.notOk(existsSync(join(probe.dir!, 'planted.v8cache.tmp')), 'nothing was planted');
  t.equal(probe.validatorsCache, 'accepted', 'V8 took the validators module\'s cache under the sandbox');
  t.match(probe.validatorsOverwrite, /^(EROFS|EACCES|EPERM|ERR_ACCESS_DENIED)$/, `overwriting that cache in place is refused (${String(probe.validatorsOverwrite)})`);
  await kit.broker.stop(profile);
  const next = (await kit.broker.connect(profile).call('probe', { write: false })) as Probe;
  t.equal(next.codeCache, 'accepted', 'the next launch still loads from the unchanged cache');
  t.equal(next.validatorsCache, 'accepted', 'and from the unchanged validators cache');
});

t.test('a prewarmed spare (pure-compute) loads the runtime from the cache, and its service module gets that one instance', async (t) => {
  await codeCacheWrites(); // the pure-compute launches above made the file for these flags
  const spare = nextSpare(kit, 'spare');
  kit.broker.register({ name: 'spare', entry: './code-cache-service.js', protocol: 'com.test.code-cache', sandbox: 'pure-compute', launch: { prewarm: true, throttleMs: 0 } });
  const pid = await spare;
  const probe = (await kit.broker.connect('spare').call('probe', { write: false })) as Probe;
  t.equal(kit.status('spare').pid, pid, 'the call was answered by the spare');
  t.equal(probe.codeCache, 'accepted', 'the spare\'s runtime came from the cache, and the service module saw its state (one runtime instance)');
});
