/**
 * The mistakes a newcomer makes in their first hour, each fed to bulkhead as
 * they would make it, with an assertion on what the message says: the key at
 * fault and its JSON pointer, "did you mean" for a typo, the valid choices
 * when they are few, and an example value for a format error. No helper runs.
 */
import t, { type Test } from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Broker, CompiledProtocol } from 'bulkhead';
import { choiceList, closestName, editDistance } from '../lib/util/suggest.js';
import { resolveDaemonSettings } from '../lib/daemon/daemon-settings.js';
import { expectCode } from './helpers.js';

const GOOD = { name: 'com.acme.inspect', version: '1.0.0', methods: { list: { params: { type: 'object', properties: { limit: { type: 'integer', minimum: 1 } }, required: ['limit'] }, result: { type: 'array' } } } };

function protocolError(t: Test, document: unknown): { message: string; pointer: unknown } {
  const err = expectCode(t, () => CompiledProtocol.from(document, 'inspect.json'), 'ERR_INVALID_PROTOCOL');
  return { message: err?.message ?? '', pointer: err?.data['pointer'] };
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

t.test('edit distance and suggestions', async (t) => {
  t.equal(editDistance('requried', 'required'), 1, 'a swap of neighbours is one edit');
  t.equal(closestName('parms', ['params', 'result', 'description']), 'params');
  t.equal(closestName('zzz', ['params', 'result']), undefined, 'nothing near: no suggestion');
  t.equal(choiceList(['a', 'b', 'c']), '"a", "b" or "c"');
  t.equal(choiceList(Array.from({ length: 20 }, (_, i) => i)), undefined, 'long lists are not printed');
});

t.test('protocol: typo of a JSON Schema keyword inside params names the keyword, its pointer and the fix', async (t) => {
  const doc = clone(GOOD) as { methods: { list: { params: Record<string, unknown> } } };
  doc.methods.list.params['requried'] = doc.methods.list.params['required'];
  delete doc.methods.list.params['required'];
  const { message, pointer } = protocolError(t, doc);
  t.equal(pointer, '/methods/list/params/requried');
  t.match(message, /"requried" is not a JSON Schema keyword/);
  t.match(message, /Did you mean "required"\?/);
});

t.test('protocol: a nested typo points at the nested keyword', async (t) => {
  const doc = clone(GOOD) as { methods: { list: { params: { properties: { limit: Record<string, unknown> } } } } };
  doc.methods.list.params.properties.limit = { type: 'integer', minimun: 1 };
  const { message, pointer } = protocolError(t, doc);
  t.equal(pointer, '/methods/list/params/properties/limit/minimun');
  t.match(message, /Did you mean "minimum"\?/);
});

t.test('protocol: "parms" instead of "params" is named, with the fix', async (t) => {
  const doc = clone(GOOD) as { methods: { list: Record<string, unknown> } };
  doc.methods.list['parms'] = doc.methods.list['params'];
  delete doc.methods.list['params'];
  const { message, pointer } = protocolError(t, doc);
  t.match(String(pointer), /^\/methods\/list\/(params|parms)$/);
  t.match(message, /parms/, 'the misspelt key is named');
  t.match(message, /Did you mean "params"\?/);
});

t.test('protocol: "version": 1 shows a valid example', async (t) => {
  const { message, pointer } = protocolError(t, { ...clone(GOOD), version: 1 });
  t.equal(pointer, '/version');
  t.match(message, /must be string/);
  t.match(message, /for example "1\.0\.0"/);
});

t.test('protocol: an unknown top-level key suggests the right one', async (t) => {
  const { message, pointer } = protocolError(t, { ...clone(GOOD), event: {} });
  t.equal(pointer, '/event');
  t.match(message, /Did you mean "events"\?/);
});

function tempRoot(t: Test, files: Record<string, string | object>): string {
  const root = mkdtempSync(join(tmpdir(), 'bulkhead-first-hour-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  for (const [path, contents] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), typeof contents === 'string' ? contents : JSON.stringify(contents));
  }
  return root;
}

t.test('manifest: unknown profile lists the available ones and suggests the nearest', async (t) => {
  const root = tempRoot(t, { 'protocols/com.acme.inspect.json': GOOD, 'inspect.js': '// never launched\n' });
  const broker = new Broker({ root });
  t.teardown(() => broker.close());
  const err = expectCode(t, () => broker.register({ name: 'inspect', entry: './inspect.js', protocol: 'com.acme.inspect', sandbox: 'pure-compte' }), 'ERR_INVALID_MANIFEST');
  t.equal(err?.data['pointer'], '/sandbox');
  t.match(err?.message ?? '', /Did you mean "pure-compute"\?/);
  t.match(err?.message ?? '', /Available profiles: .*no-network.*pure-compute/);
});

t.test('manifest: a misspelt field is named with the fix', async (t) => {
  const root = tempRoot(t, { 'protocols/com.acme.inspect.json': GOOD, 'inspect.js': '// never launched\n' });
  const broker = new Broker({ root });
  t.teardown(() => broker.close());
  const err = expectCode(t, () => broker.register({ name: 'inspect', entry: './inspect.js', protocol: 'com.acme.inspect', sandbox: 'pure-compute', lauch: {} } as never), 'ERR_INVALID_MANIFEST');
  t.equal(err?.data['pointer'], '/lauch');
  t.match(err?.message ?? '', /Did you mean "launch"\?/);
});

t.test('manifest: a bad enum value lists the choices', async (t) => {
  const root = tempRoot(t, { 'protocols/com.acme.inspect.json': GOOD, 'inspect.js': '// never launched\n' });
  const broker = new Broker({ root });
  t.teardown(() => broker.close());
  const err = expectCode(t, () => broker.register({ name: 'inspect', entry: './inspect.js', protocol: 'com.acme.inspect', launch: { keepAlive: 'yes' } } as never), 'ERR_INVALID_MANIFEST');
  t.match(String(err?.data['pointer']), /^\/launch\/keepAlive/);
  t.match(err?.message ?? '', /got "yes"/);
});

t.test('daemon config: a misspelt key suggests the right one', async (t) => {
  const err = expectCode(t, () => resolveDaemonSettings({ sockePath: '/tmp/x.sock' }, '/etc', {}, '/etc/bulkhead.json'), 'ERR_INVALID_MANIFEST');
  t.equal(err?.data['pointer'], '/daemon/sockePath');
  t.match(err?.message ?? '', /Did you mean "socketPath"\?/);
});
