/**
 * Manifests and config files: every bad field fails registration with a coded
 * error whose `data.pointer` names the field. No helper is ever launched here.
 */
import t, { type Test } from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Broker, type BulkheadErrorCode, type ServiceManifest } from 'bulkhead';
import { refinePointer } from '../lib/cli/problems.js';
import { FIXTURES } from './helpers.js';

const ECHO_PROTOCOL = readFileSync(join(FIXTURES, 'protocols', 'com.test.echo.json'), 'utf8');

/** The pointer ajv gives a missing or unknown field is its parent's; see the report. */

/** A temp broker root holding `files` (path → text or JSON), removed at teardown. */
function tempRoot(t: Test, files: Record<string, string | object> = {}): string {
  const root = mkdtempSync(join(tmpdir(), 'bulkhead-manifest-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const all: Record<string, string | object> = { 'protocols/com.test.echo.json': ECHO_PROTOCOL, 'service.js': '// never launched\n', ...files };
  for (const [path, contents] of Object.entries(all)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), typeof contents === 'string' ? contents : JSON.stringify(contents));
  }
  return root;
}

function broker(t: Test, root: string): Broker {
  const b = new Broker({ root });
  t.teardown(() => b.close());
  return b;
}

/** Runs `fn` and returns what it threw (a failed assertion if nothing). */
function thrown(t: Test, fn: () => unknown): { code?: unknown; data?: Record<string, unknown> } {
  try {
    fn();
  } catch (err) {
    return err as { code?: unknown; data?: Record<string, unknown> };
  }
  t.fail('expected a throw');
  return {};
}

/** Asserts the error's code and pointer; `todo` marks a pointer the code does not give yet. */
function expectError(t: Test, err: { code?: unknown; data?: Record<string, unknown> }, code: BulkheadErrorCode, pointer?: string, todo?: string): void {
  t.equal(err.code, code, `code ${code}`);
  if (pointer === undefined) return;
  if (todo === undefined) {
    t.equal(err.data?.['pointer'], pointer, `pointer ${pointer}`);
    return;
  }
  t.equal(err.data?.['pointer'], pointer, `pointer ${pointer}`, { todo });
  // What `bulkhead validate` prints today, from ajv's own error in data.errors.
  t.equal(refinePointer(String(err.data?.['pointer']), err.data ?? {}), pointer, `bulkhead validate reports ${pointer}`);
}

const GOOD: ServiceManifest = { name: 'echo', entry: './service.js', protocol: 'com.test.echo' };

t.test('register(): each bad field names its pointer', async (t) => {
  const root = tempRoot(t, { 'a-directory/.keep': '' });
  const b = broker(t, root);
  const cases: Array<{ name: string; manifest: unknown; pointer: string; todo?: string }> = [
    { name: 'missing name', manifest: { entry: GOOD.entry, protocol: GOOD.protocol }, pointer: '/name' },
    { name: 'bad name pattern', manifest: { ...GOOD, name: '../escape' }, pointer: '/name' },
    { name: 'unknown field', manifest: { ...GOOD, colour: 'red' }, pointer: '/colour' },
    { name: 'unknown launch field', manifest: { ...GOOD, launch: { throttle: 1 } }, pointer: '/launch/throttle' },
    { name: 'entry missing', manifest: { ...GOOD, entry: './nope.js' }, pointer: '/entry' },
    { name: 'entry is a directory', manifest: { ...GOOD, entry: './a-directory' }, pointer: '/entry' },
    { name: 'unknown sandbox profile', manifest: { ...GOOD, sandbox: 'no-such-profile' }, pointer: '/sandbox' },
    { name: 'launch.throttleMs not an integer', manifest: { ...GOOD, launch: { throttleMs: '1s' } }, pointer: '/launch/throttleMs' },
    { name: 'negative timeoutMs', manifest: { ...GOOD, timeoutMs: -1 }, pointer: '/timeoutMs' },
    { name: 'nodeArgs not flags', manifest: { ...GOOD, nodeArgs: ['script.js'] }, pointer: '/nodeArgs/0' },
  ];
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      expectError(t, thrown(t, () => b.register(c.manifest as ServiceManifest)), 'ERR_INVALID_MANIFEST', c.pointer, c.todo);
    });
  }
  await t.test('duplicate name', async (t) => {
    b.register(GOOD);
    expectError(t, thrown(t, () => b.register(GOOD)), 'ERR_INVALID_MANIFEST', '/name');
  });
  t.same(b.serviceNames(), ['echo'], 'no bad manifest was registered');
});

t.test('register(): protocol problems', async (t) => {
  const root = tempRoot(t, {
    'protocols/com.bad.schema.json': { name: 'com.bad.schema', version: '1.0.0', methods: { echo: { params: { type: 'strng' }, result: true } } },
    'protocols/com.bad.noversion.json': { name: 'com.bad.noversion', methods: {} },
    'protocols/com.bad.nojson.json': '{ "name": ',
    'protocols/com.bad.renamed.json': { name: 'com.bad.other', version: '1.0.0', methods: {} },
  });
  const b = broker(t, root);
  const register = (protocol: string) => thrown(t, () => b.register({ ...GOOD, name: protocol, protocol }));
  expectError(t, register('com.test.nothing'), 'ERR_UNKNOWN_PROTOCOL');
  expectError(t, register('com.bad.schema'), 'ERR_INVALID_PROTOCOL', '/methods/echo/params');
  expectError(t, register('com.bad.noversion'), 'ERR_INVALID_PROTOCOL', '/version');
  expectError(t, register('com.bad.nojson'), 'ERR_INVALID_PROTOCOL', '/');
  expectError(t, register('com.bad.renamed'), 'ERR_INVALID_PROTOCOL', '/name');
  t.same(b.serviceNames(), []);
});

t.test('connect() to an unknown service, and a root that does not exist', async (t) => {
  const b = broker(t, tempRoot(t));
  expectError(t, thrown(t, () => b.connect('nobody')), 'ERR_UNKNOWN_SERVICE');
  const err = thrown(t, () => new Broker({ root: '/nonexistent/bulkhead-root' }));
  expectError(t, err, 'ERR_INVALID_OPTION');
  t.equal(err.data?.['option'], 'root');
});

t.test('Broker.fromConfig: config-level problems', async (t) => {
  const root = tempRoot(t, {
    'not-json.json': '{ "services": [',
    'not-array.json': { services: { echo: GOOD } },
    'not-object.json': '[]',
    'unknown-key.json': { services: [], servics: [] },
  });
  const cases: Array<[string, string]> = [
    ['not-json.json', '/'],
    ['missing.json', '/'],
    ['not-array.json', '/services'],
    ['not-object.json', '/services'],
    ['unknown-key.json', '/servics'],
  ];
  for (const [file, pointer] of cases) {
    const err = thrown(t, () => Broker.fromConfig(join(root, file)));
    expectError(t, err, 'ERR_INVALID_MANIFEST', pointer);
    t.equal(err.data?.['source'], join(root, file), `${file}: source is the config file`);
  }
});

t.test('Broker.fromConfig: a bad manifest names its index in data.source and the field in data.pointer', async (t) => {
  const cases: Array<{ name: string; services: unknown[]; index: number; pointer: string; todo?: string }> = [
    { name: 'missing name', services: [{ entry: GOOD.entry, protocol: GOOD.protocol }], index: 0, pointer: '/name' },
    { name: 'bad name pattern', services: [GOOD, { ...GOOD, name: 'has space' }], index: 1, pointer: '/name' },
    { name: 'unknown field', services: [{ ...GOOD, colour: 'red' }], index: 0, pointer: '/colour' },
    { name: 'entry not a file', services: [{ ...GOOD, entry: './nope.js' }], index: 0, pointer: '/entry' },
    { name: 'unknown sandbox profile', services: [{ ...GOOD, sandbox: 'no-such-profile' }], index: 0, pointer: '/sandbox' },
    { name: 'bad launch.throttleMs type', services: [{ ...GOOD, launch: { throttleMs: true } }], index: 0, pointer: '/launch/throttleMs' },
    { name: 'duplicate name', services: [GOOD, { ...GOOD }], index: 1, pointer: '/name' },
  ];
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const root = tempRoot(t, { 'bulkhead.json': { services: c.services } });
      const file = join(root, 'bulkhead.json');
      const err = thrown(t, () => Broker.fromConfig(file));
      expectError(t, err, 'ERR_INVALID_MANIFEST', c.pointer, c.todo);
      t.equal(err.data?.['source'], `${file} /services/${c.index}`);
    });
  }
});

t.test('Broker.fromConfig: a good config registers every service, root relative to the file', async (t) => {
  const root = tempRoot(t, {
    'etc/bulkhead.json': { root: '..', services: [GOOD, { ...GOOD, name: 'sandboxed', sandbox: 'pure-compute', launch: { throttleMs: 10 } }] },
  });
  const b = Broker.fromConfig(join(root, 'etc', 'bulkhead.json'));
  t.teardown(() => b.close());
  t.equal(b.root, root);
  t.same(b.serviceNames(), ['echo', 'sandboxed']);
  t.equal(b.status('echo').state, 'idle', 'nothing launched');
});
