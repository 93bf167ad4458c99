// A prewarmed service with --preserve-symlinks and bulkhead installed through a link (lib/broker/prewarm-runtime.ts):
// the service would import a second runtime instance and its spare could never serve (seen before this check: no spare
// ever reported warm, every launch a plain one, no error). Refused at registration; either half alone works.
import t from 'tap';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, type TestBroker } from 'bulkhead/testing';
import { FIXTURES, nextSpare, REPO_ROOT } from './helpers.js';

// An app whose node_modules/bulkhead is a link to this package (as `npm link` makes it).
const app = mkdtempSync(join(tmpdir(), 'bulkhead-linked-app-'));
t.teardown(() => rmSync(app, { recursive: true, force: true }));
mkdirSync(join(app, 'protocols'));
mkdirSync(join(app, 'node_modules'));
copyFileSync(join(FIXTURES, 'protocols', 'com.test.echo.json'), join(app, 'protocols', 'com.test.echo.json'));
copyFileSync(join(FIXTURES, 'echo-service.js'), join(app, 'echo-service.js'));
symlinkSync(REPO_ROOT, join(app, 'node_modules', 'bulkhead'));

let kit: TestBroker;
t.before(async () => {
  kit = await startBroker({ root: app });
});
t.teardown(() => kit.close());

const manifest = (name: string, extra: Record<string, unknown>) => ({ name, entry: './echo-service.js', protocol: 'com.test.echo', ...extra });

t.test('prewarm with --preserve-symlinks through a linked bulkhead: ERR_INVALID_MANIFEST at registration', async (t) => {
  let caught: unknown;
  try {
    kit.broker.register(manifest('flag', { nodeArgs: ['--preserve-symlinks'], launch: { prewarm: true } }));
  } catch (err) {
    caught = err;
  }
  t.match(caught, { code: 'ERR_INVALID_MANIFEST', data: { pointer: '/nodeArgs' } }, 'refused, pointing at nodeArgs');
  t.match((caught as Error).message, /two runtime instances.*Drop --preserve-symlinks/);
  let byEnv: unknown;
  try {
    kit.broker.register(manifest('variable', { env: { NODE_PRESERVE_SYMLINKS: '1' }, launch: { prewarm: true } }));
  } catch (err) {
    byEnv = err;
  }
  t.match(byEnv, { code: 'ERR_INVALID_MANIFEST', data: { pointer: '/env' } }, 'the variable too, pointing at env');
});

t.test('control: prewarm alone through the link, and the spare answers', async (t) => {
  const spare = nextSpare(kit, 'warm');
  kit.broker.register(manifest('warm', { launch: { prewarm: true, throttleMs: 0 } }));
  const pid = await spare;
  t.equal(((await kit.broker.connect('warm').call('echo', { text: 'x' })) as { pid: number }).pid, pid, 'the call was answered by the spare');
});

t.test('control: --preserve-symlinks alone through the link, and the helper answers', async (t) => {
  kit.broker.register(manifest('linked', { nodeArgs: ['--preserve-symlinks'], launch: { throttleMs: 0 } }));
  t.same(await kit.broker.connect('linked').call('echo', { text: 'y' }), { text: 'y', pid: kit.status('linked').pid });
});
