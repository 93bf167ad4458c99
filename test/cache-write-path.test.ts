// The broker's caches of code inside a custom profile's write path (lib/sandbox/broker-caches.ts): a helper granted write
// on their parent (the broker's TMPDIR) tries to write each one (the runtime code cache, Node's compile cache, the
// precompiled validators) and is refused, while the same helper writes elsewhere in that path (the positive control) and
// another helper still loads the genuine cache. Without bubblewrap and without a uid drop, the helper is not given them.
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startBroker, type TestBroker } from 'bulkhead/testing';
import { codeCacheFile, runtimeBuildId } from '../lib/util/runtime-loader.js';
import { codeCacheWrites, RUNTIME_SCRIPT, runtimeCacheDir } from '../lib/broker/code-cache.js';
import { compileCacheDir, compileCacheWrites } from '../lib/broker/compile-cache.js';
import { probeHost, setHostProbeOverride } from '../lib/sandbox/index.js';
import { FIXTURES } from './helpers.js';

interface Target { name: string; dir: string; file: string | null }
interface Attack { attempts: Record<string, { inPlace: string | null; plant: string | null }>; control: string | null; env: Record<string, string | null>; codeCache: string; uid: number }

const isRoot = process.getuid?.() === 0;
const NO_BWRAP = (await probeHost(process.execPath)).bwrap === null && 'no bubblewrap on this host';
const PROTOCOL = 'com.test.cache-write-path';
const ENTRY = './cache-write-path-service.js';
// The same memory limit as pure-compute: the same V8 flags, so the writer attacks the very runtime cache the victim loads.
const WRITER_PROFILE = {
  description: 'A custom profile that may write the broker\'s TMPDIR, where the caches of code live.',
  network: 'none',
  fs: { read: [], write: ['${tmp}'] },
  processes: { children: false, workers: false },
  addons: false,
  limits: { memoryMiB: 512 },
  env: [],
  enforcement: 'best-effort',
};

const profiles = mkdtempSync(join(tmpdir(), 'bulkhead-cache-write-path-'));
writeFileSync(join(profiles, 'cache-writer.json'), JSON.stringify(WRITER_PROFILE));
t.teardown(() => rmSync(profiles, { recursive: true, force: true }));
t.teardown(() => setHostProbeOverride(undefined));

let kit: TestBroker;
t.before(async () => {
  kit = await startBroker({
    root: FIXTURES,
    profilesDir: profiles,
    services: [
      { name: 'victim', entry: ENTRY, protocol: PROTOCOL, sandbox: 'pure-compute', launch: { throttleMs: 0 } },
      { name: 'writer', entry: ENTRY, protocol: PROTOCOL, sandbox: 'cache-writer', sandboxPaths: { tmp: tmpdir() }, launch: { throttleMs: 0 } },
      { name: 'elsewhere', entry: ENTRY, protocol: PROTOCOL, sandbox: 'cache-writer', sandboxPaths: { tmp: profiles }, launch: { throttleMs: 0 } },
    ],
  });
});
t.teardown(() => kit.close());

const attack = (service: string, targets: Target[], control: string | null): Promise<Attack> => kit.broker.connect(service).call('attack', { targets, control }) as Promise<Attack>;
const digest = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

let targets: Target[] = [];
let victimValidators = '';

t.test('the victim (pure-compute) loads the genuine caches the broker wrote', async (t) => {
  await attack('victim', [], null);
  await Promise.all([codeCacheWrites(), compileCacheWrites()]);
  await kit.broker.stop('victim');
  const probe = await attack('victim', [], null);
  t.equal(probe.codeCache, 'accepted', 'its runtime came from the code cache');
  const dir = compileCacheDir()!;
  const runtimeDir = runtimeCacheDir(process.execPath)!;
  t.equal(probe.env['BULKHEAD_CODE_CACHE'], runtimeDir, 'it is given the runtime cache directory of its node binary');
  victimValidators = probe.env['BULKHEAD_VALIDATORS']!;
  t.ok(existsSync(victimValidators), 'and its precompiled validators');
  const runtime = codeCacheFile(runtimeDir, runtimeBuildId(readFileSync(RUNTIME_SCRIPT))!, ['--max-old-space-size=256']);
  t.ok(existsSync(runtime), 'the runtime cache file it loads (the pure-compute flags)');
  // Node's compile cache (Node ≥ 22): a file of this node's own subdirectory, the broker's uid.
  const sub = readdirSync(dir).find((name) => name.startsWith(`${process.version}-`) && name.endsWith(`-${String(process.getuid?.() ?? 0)}`) && lstatSync(join(dir, name)).isDirectory());
  const compiled = sub === undefined ? undefined : readdirSync(join(dir, sub))[0];
  if (Number(process.versions.node.split('.')[0]) >= 22) t.ok(compiled, `Node's compile cache has an entry (${String(sub)})`);
  targets = [
    { name: 'runtime code cache', dir: runtimeDir, file: runtime },
    { name: 'compile cache', dir: sub === undefined ? dir : join(dir, sub), file: sub === undefined || compiled === undefined ? null : join(dir, sub, compiled) },
    { name: 'validators', dir: dirname(victimValidators), file: victimValidators },
  ];
});

/** The writer attacks every target; the control file in its write path must be written. */
async function tryEscape(t: Test, refusal: RegExp): Promise<Attack> {
  const before = targets.flatMap((x) => (x.file === null ? [] : [[x.file, digest(x.file)] as const]));
  const control = join(tmpdir(), `bulkhead-cache-write-path-control-${String(process.pid)}-${String(Date.now())}`);
  t.teardown(() => rmSync(control, { force: true }));
  const result = await attack('writer', targets, control);
  t.equal(result.control, null, 'positive control: it writes elsewhere in its write path');
  t.ok(existsSync(control), 'and the control file is there');
  for (const { name, file } of targets) {
    const { inPlace, plant } = result.attempts[name]!;
    if (file !== null) t.match(inPlace, refusal, `${name}: writing ${file} in place is refused (${String(inPlace)})`);
    t.match(plant, refusal, `${name}: planting a file beside it is refused (${String(plant)})`);
  }
  for (const [file, hash] of before) t.equal(digest(file), hash, `${file} is unchanged`);
  await kit.broker.stop('writer');
  return result;
}

t.test('a helper with write on the caches\' parent cannot write them (this host\'s layers)', { skip: NO_BWRAP }, async (t) => {
  // As root the helper also runs as a uid of its own (EACCES or EROFS, whichever the kernel checks first); not root, only the read-only bind.
  const result = await tryEscape(t, isRoot ? /^(EROFS|EACCES)$/ : /^EROFS$/);
  t.equal(result.env['BULKHEAD_CODE_CACHE'], runtimeCacheDir(process.execPath), 'it is given the caches (bound read-only)');
});

t.test('the same helper as the broker\'s own uid: only the read-only bind stands, and it holds', { skip: NO_BWRAP || (!isRoot && 'needs root (a broker that does not drop the helper\'s uid)') }, async (t) => {
  // No setpriv: a root broker cannot drop the uid, so the helper is root (capabilities dropped) and owns the cache files.
  setHostProbeOverride((p) => ({ ...p, setpriv: null }));
  t.teardown(() => setHostProbeOverride(undefined));
  const result = await tryEscape(t, /^EROFS$/);
  t.equal(result.uid, 0, 'it ran as the broker\'s uid, the owner of the cache files');
});

t.test('without bubblewrap or a uid drop, the helper is not given the caches, and the report says why', async (t) => {
  setHostProbeOverride((p) => ({ ...p, bwrap: null, bwrapProblem: 'simulated', setpriv: null }));
  t.teardown(() => setHostProbeOverride(undefined));
  // No writes attempted: on this host nothing but Node's permission model (which grants the whole write path) would stop them.
  const result = await attack('writer', [], null);
  t.same(result.env, { NODE_COMPILE_CACHE: null, BULKHEAD_CODE_CACHE: null, BULKHEAD_VALIDATORS: null }, 'none of the cache variables');
  t.equal(result.codeCache, 'off', 'its runtime compiled from source');
  const rule = kit.broker.status('writer').sandbox?.rules.find((r) => r.rule === 'fs.write');
  t.match(rule?.detail, /broker's caches of code .*this helper can write them, so it is not given them/, 'the fs.write rule says so');
  await kit.broker.stop('writer');
  // The same profile on the same simulated host, its write path elsewhere: not given them either, since on such a host
  // another helper (of this broker or another of its uid) could have planted code there (lib/sandbox/cache-trust.ts).
  const elsewhere = await attack('elsewhere', [], null);
  t.same(elsewhere.env, { NODE_COMPILE_CACHE: null, BULKHEAD_CODE_CACHE: null, BULKHEAD_VALIDATORS: null }, 'a helper whose write paths miss the caches is not given them either');
  await kit.broker.stop('elsewhere');
  // Control: on the real host (with bubblewrap), the same helper is given them.
  setHostProbeOverride(undefined);
  if (NO_BWRAP !== false) return;
  const real = await attack('elsewhere', [], null);
  t.equal(real.env['BULKHEAD_CODE_CACHE'], runtimeCacheDir(process.execPath), 'control: on this host (its layers keep the caches read-only) it is given them');
  t.equal(real.env['BULKHEAD_VALIDATORS'], victimValidators, 'validators too');
  await kit.broker.stop('elsewhere');
});

t.test('after the attempts, the victim still loads the genuine caches', async (t) => {
  await kit.broker.stop('victim');
  const probe = await attack('victim', [], null);
  t.equal(probe.codeCache, 'accepted', 'the runtime code cache is accepted');
  t.equal(probe.env['BULKHEAD_VALIDATORS'], victimValidators, 'the same validators');
});
