// A reload reads sandbox profile files edited in place (lib/broker/reload-plan.ts). An operator
// tightens sandbox-profiles/<name>.json (a lower memory limit, a read path removed) and reloads the
// same config: the running helper under that profile is relaunched, its new launch has the new
// limit (its cgroup says so) and the file the profile no longer grants is refused; a service under
// that profile that did not run is not started, its next launch uses the new profile; a service
// under another profile is not touched. An edited profile that is invalid fails the reload with
// ERR_INVALID_PROFILE and changes nothing; one that parses but cannot launch is rolled back
// (ERR_RELOAD_FAILED). The same for a protocol file's schema edited in place (re-registered). Control: a reload with nothing changed (or the same
// profile, reformatted) relaunches nothing.
import t from 'tap';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isBulkheadError, type ServiceManifest } from 'bulkhead';
import { startBroker, type TestBroker } from 'bulkhead/testing';
import { probeHost } from '../lib/sandbox/index.js';
import { FIXTURES, recordUncaught } from './helpers.js';

const uncaught = recordUncaught();
const NO_BWRAP = (await probeHost(process.execPath)).bwrap === null && 'no bubblewrap on this host';

const PROTOCOL = 'com.test.sandbox-escape';
const ENTRY = './sandbox/escape-service.js';

// World-readable, so a refusal is the sandbox's doing, not Unix permissions'.
const outside = mkdtempSync(join(tmpdir(), 'bulkhead-reload-profile-'));
chmodSync(outside, 0o755);
const granted = join(outside, 'granted');
mkdirSync(granted, { mode: 0o755 });
const dataFile = join(granted, 'data.txt');
writeFileSync(dataFile, 'granted data\n', { mode: 0o644 });
const profiles = join(outside, 'profiles');
mkdirSync(profiles);
const profileFile = join(profiles, 'incident.json');
t.teardown(() => rmSync(outside, { recursive: true, force: true }));

const profile = (memoryMiB: number, read: string[]): Record<string, unknown> => ({
  description: 'Reads ${data}; tightened during an incident.',
  network: 'none',
  fs: { read, write: [] },
  processes: { children: false, workers: false },
  addons: false,
  limits: { memoryMiB, openFiles: 256 },
  env: [],
  enforcement: 'strict',
});
const LOOSE = profile(512, ['${data}']);
const TIGHT = profile(256, []);
writeFileSync(profileFile, JSON.stringify(LOOSE, null, 2));

const manifest = (name: string, sandbox: string): ServiceManifest => ({
  name, entry: ENTRY, protocol: PROTOCOL, sandbox, sandboxPaths: { data: granted }, launch: { throttleMs: 0, exitTimeoutMs: 2000 },
});
// reader and idle run under the edited profile; other under a shipped one it does not touch.
const SERVICES = [manifest('reader', 'incident'), manifest('idle', 'incident'), manifest('other', 'fs-reader')];

interface Attempt { ok: boolean; code: string | null; value?: unknown }
const tryRead = (kit: TestBroker, service: string): Promise<Attempt> => kit.broker.connect(service).call('tryRead', { path: dataFile }) as Promise<Attempt>;

/** The memory limit, in MiB, of the running helper's cgroup (v1 or v2), read from the kernel; undefined without one. */
function cgroupMemoryMiB(kit: TestBroker, service: string): number | undefined {
  const cgroup = kit.broker.status(service).sandbox?.cgroup;
  if (cgroup === undefined) return undefined;
  for (const dir of cgroup.paths) {
    for (const file of ['memory.limit_in_bytes', 'memory.max']) {
      if (existsSync(join(dir, file))) return Number(readFileSync(join(dir, file), 'utf8').trim()) / (1024 * 1024);
    }
  }
  return undefined;
}

/** What the running helper's sandbox report says of its memory limit. */
const memoryRule = (kit: TestBroker, service: string): string | undefined => kit.broker.status(service).sandbox?.rules.find((r) => r.rule === 'limits.memoryMiB')?.detail;

t.test('an edited profile, reloaded: the running helper is relaunched under it; the idle one is not started; the other is untouched', { skip: NO_BWRAP }, async (t) => {
  writeFileSync(profileFile, JSON.stringify(LOOSE, null, 2));
  const kit = await startBroker({ root: FIXTURES, profilesDir: profiles, services: SERVICES });
  t.teardown(() => kit.close());
  t.same(await tryRead(kit, 'reader'), { ok: true, code: null, value: 'granted data\n' }, 'positive control: the loose profile grants the file');
  await kit.broker.kickstart('other');
  const before = { reader: kit.broker.status('reader').pid, other: kit.broker.status('other').pid };
  t.match(memoryRule(kit, 'reader'), /^512 MiB/, 'launched with 512 MiB');
  const loosePaths = kit.broker.status('reader').sandbox?.cgroup?.paths;
  if (loosePaths !== undefined) t.equal(cgroupMemoryMiB(kit, 'reader'), 512, 'its cgroup says 512 MiB');

  writeFileSync(profileFile, JSON.stringify(TIGHT, null, 2)); // edited in place, same name: the manifests are unchanged
  const result = await kit.broker.reload({ services: SERVICES });
  t.same(result, { added: [], removed: [], replaced: ['idle', 'reader'], editedProfiles: ['idle', 'reader'], relaunched: ['reader'] });

  const after = kit.broker.status('reader');
  t.not(after.pid, before.reader, 'reader runs a new helper');
  t.equal(after.state, 'running');
  t.match(memoryRule(kit, 'reader'), /^256 MiB/, 'its new launch has the new memory limit');
  if (loosePaths !== undefined) t.equal(cgroupMemoryMiB(kit, 'reader'), 256, 'and its cgroup says 256 MiB');
  t.same(await tryRead(kit, 'reader'), { ok: false, code: 'ERR_ACCESS_DENIED' }, 'the file the edited profile no longer grants is refused');
  t.equal(kit.broker.status('other').pid, before.other, 'other (another profile) kept its helper');
  t.same(await tryRead(kit, 'other'), { ok: true, code: null, value: 'granted data\n' }, 'and still reads the file');

  t.equal(kit.broker.status('idle').pid, null, 'idle was not started by the reload');
  t.same(await tryRead(kit, 'idle'), { ok: false, code: 'ERR_ACCESS_DENIED' }, 'its next launch runs under the edited profile');
  t.match(memoryRule(kit, 'idle'), /^256 MiB/);
});

t.test('an invalid edited profile fails the reload with ERR_INVALID_PROFILE: nothing changes, the old helper keeps running', { skip: NO_BWRAP }, async (t) => {
  writeFileSync(profileFile, JSON.stringify(LOOSE, null, 2));
  const kit = await startBroker({ root: FIXTURES, profilesDir: profiles, services: SERVICES });
  t.teardown(() => kit.close());
  t.same(await tryRead(kit, 'reader'), { ok: true, code: null, value: 'granted data\n' });
  const pid = kit.broker.status('reader').pid;

  writeFileSync(profileFile, JSON.stringify(profile(16, []), null, 2)); // below the minimum
  const bad = await kit.broker.reload({ services: SERVICES }).then(() => undefined, (e: unknown) => e);
  t.ok(isBulkheadError(bad, 'ERR_INVALID_PROFILE'), `ERR_INVALID_PROFILE (${isBulkheadError(bad) ? bad.code : String(bad)})`);
  if (isBulkheadError(bad)) t.same((bad.data['problems'] as { pointer: string }[]).map((p) => p.pointer), ['/limits/memoryMiB'], 'naming the bad field');

  writeFileSync(profileFile, '{ "network": "none", '); // half-saved
  const broken = await kit.broker.reload({ services: SERVICES }).then(() => undefined, (e: unknown) => e);
  t.ok(isBulkheadError(broken, 'ERR_INVALID_PROFILE') && broken.data['source'] === profileFile, `not JSON: ERR_INVALID_PROFILE naming the file (${isBulkheadError(broken) ? `${broken.code} ${String(broken.data['source'])}` : String(broken)})`);

  t.equal(kit.broker.status('reader').pid, pid, 'the old helper keeps running');
  t.same(await tryRead(kit, 'reader'), { ok: true, code: null, value: 'granted data\n' }, 'under its old profile');
  t.match(memoryRule(kit, 'reader'), /^512 MiB/);

  // Fixed: the next reload applies it (the failed ones left nothing half-applied in between).
  writeFileSync(profileFile, JSON.stringify(TIGHT));
  const result = await kit.broker.reload({ services: SERVICES });
  t.same(result.relaunched, ['reader']);
  t.same(await tryRead(kit, 'reader'), { ok: false, code: 'ERR_ACCESS_DENIED' });
});

t.test('an edited profile that parses but cannot launch (an undefined placeholder): the staged helper fails, the reload is rolled back', { skip: NO_BWRAP }, async (t) => {
  writeFileSync(profileFile, JSON.stringify(LOOSE, null, 2));
  const kit = await startBroker({ root: FIXTURES, profilesDir: profiles, services: SERVICES });
  t.teardown(() => kit.close());
  t.same(await tryRead(kit, 'reader'), { ok: true, code: null, value: 'granted data\n' });
  const pid = kit.broker.status('reader').pid;
  writeFileSync(profileFile, JSON.stringify(profile(256, ['${nowhere}'])));
  const err = await kit.broker.reload({ services: SERVICES }).then(() => undefined, (e: unknown) => e);
  t.ok(isBulkheadError(err, 'ERR_RELOAD_FAILED') && err.data.service === 'reader' && err.data.cause === 'ERR_INVALID_MANIFEST', `ERR_RELOAD_FAILED naming reader, cause ERR_INVALID_MANIFEST (${isBulkheadError(err) ? `${err.code} ${String(err.data['service'])} ${String(err.data['cause'])}` : String(err)})`);
  t.equal(kit.broker.status('reader').pid, pid, 'the old helper keeps running');
  t.same(await tryRead(kit, 'reader'), { ok: true, code: null, value: 'granted data\n' }, 'under its old profile');
  t.match(memoryRule(kit, 'reader'), /^512 MiB/);
  // The file still holds the unlaunchable edit: idle launches, so it kept the document read before (nothing half-applied).
  t.same(await tryRead(kit, 'idle'), { ok: true, code: null, value: 'granted data\n' }, 'idle, not running, kept the old profile too: its launch reads the file');
});

t.test('the same class, another file: a protocol file whose schema is edited in place re-registers its services on reload', { skip: NO_BWRAP }, async (t) => {
  const protocols = join(outside, 'protocols');
  mkdirSync(protocols, { recursive: true });
  const protocolFile = join(protocols, `${PROTOCOL}.json`);
  const document = JSON.parse(readFileSync(join(FIXTURES, 'protocols', `${PROTOCOL}.json`), 'utf8')) as { methods: Record<string, { params: { properties: Record<string, unknown> } }> };
  writeFileSync(protocolFile, JSON.stringify(document));
  writeFileSync(profileFile, JSON.stringify(LOOSE, null, 2));
  const kit = await startBroker({ root: FIXTURES, profilesDir: profiles, protocolsDir: protocols, services: SERVICES });
  t.teardown(() => kit.close());
  const withEncoding = { path: dataFile, encoding: 'utf8' };
  const refused = await kit.broker.connect('reader').call('tryRead', withEncoding).then(() => undefined, (e: unknown) => e);
  t.ok(isBulkheadError(refused, 'ERR_INVALID_PARAMS'), 'positive control: the old schema refuses the new field');
  await kit.broker.kickstart('other');
  const pids = { reader: kit.broker.status('reader').pid, other: kit.broker.status('other').pid };
  document.methods['tryRead']!.params.properties['encoding'] = { type: 'string' };
  writeFileSync(protocolFile, JSON.stringify(document)); // in place, same name: the manifests are unchanged
  const result = await kit.broker.reload({ services: SERVICES });
  t.same(result, { added: [], removed: [], replaced: ['idle', 'other', 'reader'], editedProfiles: [], relaunched: ['other', 'reader'] });
  t.not(kit.broker.status('reader').pid, pids.reader, 'reader runs a new helper');
  t.not(kit.broker.status('other').pid, pids.other, 'so does other');
  t.same(await kit.broker.connect('reader').call('tryRead', withEncoding), { ok: true, code: null, value: 'granted data\n' }, 'the edited schema is the one checked');
});

t.test('control: a reload with nothing changed, or the same profile reformatted, relaunches nothing', { skip: NO_BWRAP }, async (t) => {
  writeFileSync(profileFile, JSON.stringify(LOOSE, null, 2));
  const kit = await startBroker({ root: FIXTURES, profilesDir: profiles, services: SERVICES });
  t.teardown(() => kit.close());
  await kit.broker.kickstart('reader');
  await kit.broker.kickstart('other');
  const pids = SERVICES.map((s) => kit.broker.status(s.name).pid);
  const nothing = { added: [], removed: [], replaced: [], editedProfiles: [], relaunched: [] };
  t.same(await kit.broker.reload({ services: SERVICES }), nothing, 'unchanged');
  // The same document with its keys in another order and other whitespace: not an edit.
  const reordered = Object.fromEntries(Object.entries(LOOSE).reverse());
  writeFileSync(profileFile, `${JSON.stringify(reordered)}\n`);
  t.same(await kit.broker.reload({ services: SERVICES }), nothing, 'reformatted');
  t.same(SERVICES.map((s) => kit.broker.status(s.name).pid), pids, 'every pid unchanged');
  t.same(await tryRead(kit, 'reader'), { ok: true, code: null, value: 'granted data\n' });
});

t.test('no uncaught exception', async (t) => {
  t.same(uncaught, []);
});
