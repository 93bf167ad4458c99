// A helper reads its own code and nothing else, in the README's layout: the helper beside main.js,
// .env, config/credentials.json, another service's code, a private package and a 0666 socket in
// the app tree, bulkhead linked into node_modules from this checkout (as `npm link` does). Under
// every shipped profile a hostile helper tries each one; every attempt fails with its exact error,
// and what the profile grants still works. test/sandbox-read-set-packed.test.ts runs the same
// attempts with bulkhead installed from `npm pack`.
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, type TestBroker } from 'bulkhead/testing';
import { REPO_ROOT } from './helpers.js';
import { attemptEscapes, hostileManifest, layOutApp, SHIPPED_PROFILES, type Attempt, type ReadSetApp, type ShippedProfile } from './read-set-app.js';

const dir = mkdtempSync(join(tmpdir(), 'bulkhead-readme-app-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(join(dir, 'node_modules'), { mode: 0o755 });
symlinkSync(REPO_ROOT, join(dir, 'node_modules', 'bulkhead'));

let app: ReadSetApp;
let kit: TestBroker;
t.before(async () => {
  app = await layOutApp(dir);
  // A profile of the app's own that grants one more directory: how a plugin loaded by computed path is allowed.
  mkdirSync(join(dir, 'sandbox-profiles'), { mode: 0o755 });
  writeFileSync(join(dir, 'sandbox-profiles', 'with-plugins.json'), JSON.stringify({ network: 'none', fs: { read: ['${serviceDir}/lib'], write: [] }, limits: { memoryMiB: 512 } }));
  kit = await startBroker({
    root: dir,
    services: [...Object.keys(SHIPPED_PROFILES).map((profile) => hostileManifest(profile, app)), { ...hostileManifest('with-plugins', app), name: 'plugins' }],
  });
});
t.teardown(async () => {
  await kit?.close();
  await app?.close();
});

for (const profile of Object.keys(SHIPPED_PROFILES) as ShippedProfile[]) {
  t.test(`${profile}: the helper reads its module graph, not the app around it`, async (t) => {
    const call = (method: string, params: object = {}) => kit.broker.connect(profile).call(method, params);
    await call('ownCode');
    const grants = kit.broker.status(profile).sandbox!.grants!;
    await attemptEscapes(t, call, app, profile, {
      moreDenied: [join(REPO_ROOT, 'node_modules', 'typescript', 'package.json'), join(REPO_ROOT, 'node_modules', 'tap', 'package.json'), join(REPO_ROOT, 'test', 'helpers.ts')],
      grants,
    });
  });
}

t.test('a profile that grants a directory: import() by computed path works there, and status lists the grant', async (t) => {
  const call = (method: string, params: object) => kit.broker.connect('plugins').call(method, params) as Promise<Attempt>;
  t.same(await call('tryImport', { specifier: app.secrets.unimportedSibling }), { ok: true, code: null, value: 'notImported' }, 'lib/unimported.js, granted by fs.read ${serviceDir}/lib');
  t.same(await call('tryRead', { path: app.secrets.env }), { ok: false, code: 'ERR_ACCESS_DENIED' }, 'still no .env');
  t.same(kit.broker.status('plugins').sandbox!.grants!.read, [join(dir, 'lib')]);
});
