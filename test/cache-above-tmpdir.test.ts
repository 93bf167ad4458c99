// A profile's write path strictly above the directory that holds the broker's caches of code (its TMPDIR) is refused
// (lib/sandbox/broker-caches.ts, refuseWritesAboveCaches): such a helper, as the broker's own uid, could rename TMPDIR
// away and rebuild the cache directories with code of its own, which no read-only bind over the old path stops. The
// helper tries exactly that and must never run; the control, a write path that is TMPDIR itself, launches, writes
// there, and cannot rename a cache directory (a mount point of its read-only bind: EBUSY).
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES } from './helpers.js';

// The broker's TMPDIR for this file (tap runs each file in its own process): set before the broker makes its caches.
const base = realpathSync(mkdtempSync(join(tmpdir(), 'bulkhead-above-tmpdir-')));
const app = join(base, 'app');
mkdirSync(app);
process.env['TMPDIR'] = app;
t.teardown(() => rmSync(base, { recursive: true, force: true }));

const { startBroker } = await import('bulkhead/testing');
const { probeHost, setHostProbeOverride } = await import('../lib/sandbox/index.js');
const { compileCacheDir } = await import('../lib/broker/compile-cache.js');

const isRoot = process.getuid?.() === 0;
const NO_BWRAP = (await probeHost(process.execPath)).bwrap === null && 'no bubblewrap on this host';
const PROTOCOL = 'com.test.cache-write-path';
const ENTRY = './cache-write-path-service.js';
const profile = (write: string) => ({
  description: 'A custom profile whose write path is around the broker\'s TMPDIR.',
  network: 'none', fs: { read: [], write: [write] }, processes: { children: false, workers: false }, addons: false, env: [], enforcement: 'best-effort',
});
const profiles = mkdtempSync(join(base, 'profiles-'));
writeFileSync(join(profiles, 'above.json'), JSON.stringify(profile('${above}')));
writeFileSync(join(profiles, 'at.json'), JSON.stringify(profile('${at}')));
// A root broker would drop the helper to a uid of its own, which cannot rename root's directories anyway: keep the broker's uid.
if (isRoot) setHostProbeOverride((p) => ({ ...p, setpriv: null }));
t.teardown(() => setHostProbeOverride(undefined));

const kit = await startBroker({
  root: FIXTURES,
  profilesDir: profiles,
  services: [
    { name: 'above', entry: ENTRY, protocol: PROTOCOL, sandbox: 'above', sandboxPaths: { above: base }, launch: { throttleMs: 0 } },
    { name: 'at', entry: ENTRY, protocol: PROTOCOL, sandbox: 'at', sandboxPaths: { at: app }, launch: { throttleMs: 0 } },
  ],
});
t.teardown(() => kit.close());

interface Attack { attempts: Record<string, { inPlace: string | null; plant: string | null }>; control: string | null }
const attack = (service: string, dir: string, control: string): Promise<Attack> => kit.broker.connect(service).call('attack', { targets: [{ name: 'rename:dir', dir, file: null }], control }) as Promise<Attack>;

t.test('a write path above the broker\'s TMPDIR: the launch is refused, and TMPDIR was never renamed', { skip: NO_BWRAP }, async (t) => {
  const cache = compileCacheDir();
  t.ok(cache?.startsWith(`${app}/`), `the broker's caches are under its TMPDIR (${String(cache)})`);
  const control = join(base, 'above-control');
  await t.rejects(attack('above', app, control), { code: 'ERR_INVALID_PROFILE', message: /lets the helper write .*Narrow the write path.*TMPDIR/ });
  t.notOk(existsSync(control), 'the helper never ran (its control file is not there)');
  t.ok(existsSync(app), 'TMPDIR is where it was');
  t.same(readdirSync(base).filter((name) => name.startsWith('app.moved')), [], 'and nothing was moved beside it');
});

t.test('control: a write path that is TMPDIR itself launches, writes there, and cannot rename a cache directory', { skip: NO_BWRAP }, async (t) => {
  const control = join(app, 'at-control');
  const result = await attack('at', compileCacheDir()!, control);
  t.equal(result.control, null, 'positive control: it writes in its write path');
  t.ok(existsSync(control), 'and the file is there');
  t.match(result.attempts['rename:dir']?.plant, /^(EBUSY|EROFS)$/, 'renaming the compile cache directory fails: it is a mount point');
  t.ok(existsSync(compileCacheDir()!), 'which is still there');
});
