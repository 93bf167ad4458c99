// The read-set escapes of test/sandbox-read-set.test.ts in an app that installed bulkhead the way
// users do: `npm pack` of this built checkout, installed offline into a temp app (its node_modules
// then holds bulkhead's runtime dependencies beside the app's own packages). The broker is the
// installed copy, so the helper runtime it grants is the installed one.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as Testing from 'bulkhead/testing';
import { REPO_ROOT } from './helpers.js';
import { attemptEscapes, hostileManifest, installPackedBulkhead, layOutApp, SHIPPED_PROFILES, type ReadSetApp, type ShippedProfile } from './read-set-app.js';
import { compileCacheDir } from '../lib/broker/compile-cache.js';

const dir = mkdtempSync(join(tmpdir(), 'bulkhead-packed-app-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

let app: ReadSetApp;
let kit: Testing.TestBroker;
t.before(async () => {
  await installPackedBulkhead(dir);
  app = await layOutApp(dir);
  const installed = (await import(pathToFileURL(join(dir, 'node_modules', 'bulkhead', 'dist', 'lib', 'testing.js')).href)) as typeof Testing;
  kit = await installed.startBroker({ root: dir, services: Object.keys(SHIPPED_PROFILES).map((profile) => hostileManifest(profile, app)) });
});
t.teardown(async () => {
  await kit?.close();
  await app?.close();
});

for (const profile of Object.keys(SHIPPED_PROFILES) as ShippedProfile[]) {
  t.test(`${profile}: installed from a tarball, the helper reads its module graph and bulkhead's runtime only`, async (t) => {
    const call = (method: string, params: object = {}) => kit.broker.connect(profile).call(method, params);
    await call('ownCode');
    const grants = kit.broker.status(profile).sandbox!.grants!;
    const modules = join(dir, 'node_modules');
    await attemptEscapes(t, call, app, profile, {
      // bulkhead's own dependencies that its helper runtime does not load, and the checkout's dev dependencies.
      moreDenied: [join(modules, 'node-forge', 'package.json'), join(modules, 'json-schema-to-typescript', 'package.json'), join(modules, 'bulkhead', 'dist', 'lib', 'broker', 'broker.js'), join(REPO_ROOT, 'node_modules', 'typescript', 'package.json')],
      grants,
    });
    // Besides the installed copy: the precompiled validators and V8's compile cache (both written by the broker, read-only to the helper).
      t.same(grants.runtime.filter((path) => !path.startsWith(`${dir}/`) && !path.includes('-validators/') && path !== compileCacheDir()), [], 'the runtime granted is the installed copy\'s, not the checkout\'s');
    t.ok(grants.runtime.includes(join(modules, 'bulkhead', 'dist', 'lib', 'service.bundle.js')), 'the helper runtime bundle is granted file by file');
  });
}

t.test('a prewarmed spare (launch.prewarm) of the installed copy gets the same read set', async (t) => {
  const prewarmed = new Promise<void>((resolve) => {
    const sub = kit.broker.on('prewarmed', (service) => {
      if (service === 'spare') {
        sub.dispose();
        resolve();
      }
    });
  });
  kit.broker.register({ ...hostileManifest('pure-compute', app), name: 'spare', launch: { prewarm: true, throttleMs: 0 } });
  await prewarmed;
  const call = (method: string, params: object = {}) => kit.broker.connect('spare').call(method, params);
  t.same(await call('ownCode'), { local: 'from lib/util.js', pkg: 'from public-pkg', pid: 2 }, 'the spare loaded the service and its imports');
  t.same(await call('tryRead', { path: app.secrets.env }), { ok: false, code: 'ERR_ACCESS_DENIED' }, '.env');
  t.same(await call('tryRead', { path: app.secrets.unimportedSibling }), { ok: false, code: 'ERR_ACCESS_DENIED' }, 'a sibling outside its graph');
  const grants = kit.broker.status('spare').sandbox!.grants!;
  t.ok(grants.code.includes(join(dir, 'hostile.js')), 'the service entry\'s graph is granted to the spare');
  t.ok(grants.runtime.includes(join(dir, 'node_modules', 'bulkhead', 'dist', 'lib', 'prewarm.js')), 'and the prewarm entry, from the runtime');
});

t.test('the installed copy ships its parent-death stage, built, and uses it for unsandboxed helpers', async (t) => {
  const installedStage = (await import(pathToFileURL(join(dir, 'node_modules', 'bulkhead', 'dist', 'lib', 'broker', 'parent-death.js')).href)) as typeof import('../lib/broker/parent-death.js');
  const stage = join(dir, 'node_modules', 'bulkhead', 'dist', 'native', 'parent-death');
  t.equal(installedStage.nativeParentDeathStage(), stage, 'the packed binary is found and its ELF header fits this host');
  t.equal(installedStage.withParentDeathSignal({ command: process.execPath, args: [] }).command, stage, 'an unsandboxed plan is wrapped by it');
});
