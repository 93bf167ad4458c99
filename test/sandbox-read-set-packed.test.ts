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
      nodePath: process.execPath,
      // bulkhead's own dependencies that its helper runtime does not load, and the checkout's dev dependencies.
      moreDenied: [join(modules, 'node-forge', 'package.json'), join(modules, 'json-schema-to-typescript', 'package.json'), join(modules, 'bulkhead', 'dist', 'lib', 'broker', 'broker.js'), join(REPO_ROOT, 'node_modules', 'typescript', 'package.json')],
      grants,
    });
    t.same(grants.runtime.filter((path) => !path.startsWith(`${dir}/`) && !path.includes('-validators/')), [], 'the runtime granted is the installed copy\'s, not the checkout\'s');
    t.ok(grants.runtime.includes(join(modules, 'bulkhead', 'dist', 'lib', 'service.bundle.js')), 'the helper runtime bundle is granted file by file');
  });
}
