// A profile that reads a path inside a path it writes (`read: ${data}/cfg`, `write: ${data}`: "the service keeps its
// state in data, its config there is read-only"). The helper can replace that path with a symbolic link to anything
// the broker can read; the broker used to resolve the link at the next launch and bind its target read-only at the
// read path (round fourteen, audit15): the app's `.env` was the helper's. Now such a read path is not bound (nor its
// target granted): the helper sees only its own link. Controls: with a plain file there, the read works and stays
// read-only; the .env is readable by the broker's uid, so a refusal is the sandbox's.
import t from 'tap';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeHost } from '../lib/sandbox/index.js';
import { linkedBelowWrite, withRealPath } from '../lib/sandbox/paths.js';
import { startBroker } from 'bulkhead/testing';
import { FIXTURES, REPO_ROOT } from './helpers.js';

interface Attempt { ok: boolean; code: string | null; value?: unknown }

const probe = await probeHost();
const skip = probe.bwrap === null ? 'needs bubblewrap' : false;

// The app's layout: its secrets beside main.js, data dirs the helpers write; one holds its config, one has none yet.
const app = mkdtempSync(join(tmpdir(), 'bulkhead-write-link-'));
chmodSync(app, 0o755);
const env = join(app, '.env');
writeFileSync(env, 'API_KEY=not-for-helpers\n', { mode: 0o644 });
const dataDir = (name: string): string => {
  const dir = join(app, name);
  mkdirSync(dir);
  chmodSync(dir, 0o777); // a root broker's helper runs as a uid of its own
  return dir;
};
const [configured, fresh] = [dataDir('configured'), dataDir('fresh')];
writeFileSync(join(configured, 'cfg'), 'config the helper may read\n', { mode: 0o644 });
t.teardown(() => rmSync(app, { recursive: true, force: true }));

const profiles = join(app, 'profiles');
mkdirSync(profiles);
// no-network's: it may run children (ln), which Node's own permission model does not cover.
const BASE = JSON.parse(readFileSync(join(REPO_ROOT, 'sandbox-profiles', 'no-network.json'), 'utf8')) as Record<string, unknown>;
writeFileSync(join(profiles, 'data-writer.json'), JSON.stringify({ ...BASE, fs: { read: ['${data}/cfg'], write: ['${data}'] } }));
const service = (name: string, data: string) => ({ name, entry: './sandbox/escape-service.js', protocol: 'com.test.sandbox-escape', sandbox: 'data-writer', sandboxPaths: { data }, launch: { throttleMs: 0 } });

t.test('a link the helper puts at a read path inside its write path does not reach the link\'s target', { skip }, async (t) => {
  const kit = await startBroker({ root: FIXTURES, profilesDir: profiles, services: [service('configured', configured), service('fresh', fresh)] });
  t.teardown(() => kit.close());
  const call = (name: string, method: string, params: object): Promise<Attempt> => kit.broker.connect(name).call(method, params) as Promise<Attempt>;

  // Controls: a config there is read and stays read-only; the helper writes its data dir; the .env is out of reach.
  const cfg = join(configured, 'cfg');
  t.same(await call('configured', 'tryRead', { path: cfg }), { ok: true, code: null, value: 'config the helper may read\n' }, 'control: the granted config is read');
  t.equal((await call('configured', 'tryWrite', { path: cfg })).ok, false, 'control: and stays read-only');
  t.same(await call('configured', 'tryWrite', { path: join(configured, 'state.txt') }), { ok: true, code: null, value: join(configured, 'state.txt') }, 'control: the data dir is written');
  t.equal((await call('configured', 'tryRead', { path: env })).ok, false, 'control: the .env is out of reach');

  // The attack: no config yet, so the helper puts a link to the .env where the profile's read path is, and crashes.
  const link = join(fresh, 'cfg');
  t.same(await call('fresh', 'tryLink', { path: link, target: env }), { ok: true, code: null, value: link }, 'the helper made its link');
  const pid = kit.broker.status('fresh').pid!;
  await kit.broker.stop('fresh');
  const read = await call('fresh', 'tryRead', { path: link });
  t.not(kit.broker.status('fresh').pid, pid, 'positive control: a new helper answered');
  t.equal(read.ok, false, 'the link does not reach the .env');
  t.notMatch(String(read.value ?? ''), /API_KEY/, 'no byte of it');
  t.equal((await call('fresh', 'tryRead', { path: env })).ok, false, 'nor does the .env\'s own path');
});

t.test('linkedBelowWrite: only a link below the write path counts, not one the write path itself is', async (t) => {
  const linked = (path: string, writes: string[]): boolean => linkedBelowWrite(path, withRealPath(path).at(-1)!, writes);
  const real = dataDir('real');
  writeFileSync(join(real, 'cfg'), 'x');
  mkdirSync(join(real, 'dir'));
  const via = join(app, 'via');
  symlinkSync(real, via); // the admin's link: the write path itself
  symlinkSync(env, join(real, 'env-link'));
  symlinkSync(join(real, 'dir'), join(real, 'dir-link'));
  t.notOk(linked(join(via, 'cfg'), [via]), 'a plain file under a write path that is a link');
  t.ok(linked(join(via, 'dir', 'missing'), [via]), 'a missing path below a write path that is a link counts too: it cannot be resolved (and there is nothing to bind)');
  t.notOk(linked(join(real, 'dir', 'missing'), [real]), 'a missing path below a plain write path does not');
  t.notOk(linked(join(app, 'configured', 'cfg'), [via]), 'a path outside every write path');
  t.ok(linked(join(via, 'env-link'), [via]), 'a link below it');
  t.ok(linked(join(real, 'env-link'), [via, real]), 'a link below its real form');
  t.ok(linked(join(via, 'dir-link', 'x'), [via]), 'a path through a linked directory below it');
});
