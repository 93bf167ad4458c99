// Compatible evolution rules (issue 16), in memory: each case is one change to one part of
// a protocol, judged from the schemas; and `bulkhead protocol diff` with its exit codes.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diffProtocols } from '../lib/protocol/protocol-diff.js';
import { compareSchemas } from '../lib/protocol/schema-compat.js';
import type { ProtocolDocument } from '../lib/protocol/document.js';
import { runCli } from './helpers.js';

const obj = (properties: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ type: 'object', properties, ...extra });

/** [what, old, new, breaking when the service receives it (widen), breaking when the client receives it (narrow)] */
const cases: Array<[string, unknown, unknown, boolean, boolean]> = [
  ['identical', obj({ a: { type: 'string' } }), obj({ a: { type: 'string' } }), false, false],
  ['new optional property', obj({ a: { type: 'string' } }), obj({ a: { type: 'string' }, b: { type: 'integer' } }), false, false],
  ['new required property', obj({ a: { type: 'string' } }), obj({ a: { type: 'string' }, b: { type: 'integer' } }, { required: ['b'] }), true, false],
  ['property no longer required', obj({ a: { type: 'string' } }, { required: ['a'] }), obj({ a: { type: 'string' } }), false, true],
  ['property removed', obj({ a: { type: 'string' }, b: {} }), obj({ a: { type: 'string' } }), false, false],
  ['property removed, new closes extras', obj({ a: {}, b: {} }), obj({ a: {} }, { additionalProperties: false }), true, false],
  ['property added where old closed extras', obj({ a: {} }, { additionalProperties: false }), obj({ a: {}, b: {} }), false, true],
  ['integer → number', { type: 'integer' }, { type: 'number' }, false, true],
  ['number → integer', { type: 'number' }, { type: 'integer' }, true, false],
  ['string → string|null', { type: 'string' }, { type: ['string', 'null'] }, false, true],
  ['type dropped (anything)', { type: 'string' }, {}, false, true],
  ['enum widened', { enum: ['a', 'b'] }, { enum: ['a', 'b', 'c'] }, false, true],
  ['enum narrowed', { enum: ['a', 'b'] }, { enum: ['a'] }, true, false],
  ['const → enum holding it', { const: 'a' }, { enum: ['a', 'b'] }, false, true],
  ['maximum raised', { type: 'integer', maximum: 10 }, { type: 'integer', maximum: 20 }, false, true],
  ['minimum raised', { type: 'integer', minimum: 0 }, { type: 'integer', minimum: 1 }, true, false],
  ['maxLength removed', { type: 'string', maxLength: 5 }, { type: 'string' }, false, true],
  ['pattern added', { type: 'string' }, { type: 'string', pattern: '^a' }, true, false],
  ['pattern changed', { type: 'string', pattern: '^a' }, { type: 'string', pattern: '^b' }, true, true],
  ['items widened', { type: 'array', items: { type: 'integer' } }, { type: 'array', items: { type: 'number' } }, false, true],
  ['anyOf gains a branch', { anyOf: [{ type: 'string' }] }, { anyOf: [{ type: 'string' }, { type: 'integer' }] }, false, true],
  ['plain → anyOf including it', { type: 'string' }, { anyOf: [{ type: 'string' }, { type: 'null' }] }, false, true],
  ['nested property retyped', obj({ a: obj({ b: { type: 'string' } }) }), obj({ a: obj({ b: { type: 'integer' } }) }), true, true],
  ['true → schema', true, { type: 'string' }, true, false],
  ['schema → true', { type: 'string' }, true, false, true],
  ['description only', { type: 'string', description: 'x' }, { type: 'string', description: 'y' }, false, false],
  ['unknown keyword changed', { type: 'string', not: { const: 'a' } }, { type: 'string', not: { const: 'b' } }, true, true],
];

t.test('schema rules: the receiver\'s side may widen, the sender\'s side narrow', async (t) => {
  for (const [what, before, after, widenBreaks, narrowBreaks] of cases) {
    const widen = compareSchemas(before, after, '/s', 'widen');
    const narrow = compareSchemas(before, after, '/s', 'narrow');
    t.equal(widen.some((c) => c.breaking), widenBreaks, `${what}: as params (service receives) ${widenBreaks ? 'breaking' : 'compatible'} ${JSON.stringify(widen)}`);
    t.equal(narrow.some((c) => c.breaking), narrowBreaks, `${what}: as a result (client receives) ${narrowBreaks ? 'breaking' : 'compatible'} ${JSON.stringify(narrow)}`);
    if (what !== 'identical') t.ok(widen.length > 0 && narrow.length > 0, `${what}: the change is reported`);
  }
});

const base = (): ProtocolDocument => ({
  name: 'com.example.store',
  version: '1.0.0',
  methods: {
    get: { params: obj({ key: { type: 'string' } }, { required: ['key'] }), result: obj({ value: { type: 'string' }, kind: { enum: ['text', 'blob'] } }, { required: ['value'] }) },
    tail: { params: obj({}), yields: { type: 'string' } },
    put: { params: obj({}), accepts: { type: 'string' }, result: { type: 'integer' } },
  },
  events: { changed: { payload: obj({ key: { type: 'string' } }) } },
});

t.test('protocol rules: methods and events added, not removed or retyped; pointers name the change', async (t) => {
  const same = diffProtocols(base(), base());
  t.same(same.changes, [], 'no change, nothing reported');

  const grown = base();
  grown.version = '1.1.0';
  grown.methods['list'] = { params: obj({}), result: { type: 'array' } };
  grown.events!['deleted'] = { payload: obj({}) };
  grown.errors = { NOT_FOUND: { description: 'no such key' } };
  const g = diffProtocols(base(), grown);
  t.equal(g.firstBreaking, undefined, 'additions are compatible');
  t.same(g.changes.map((c) => c.pointer), ['/version', '/methods/list', '/events/deleted', '/errors/NOT_FOUND']);

  const breaking: Array<[string, (d: ProtocolDocument) => void, string]> = [
    ['method removed', (d) => delete d.methods['get'], '/methods/get'],
    ['event removed', (d) => delete d.events!['changed'], '/events/changed'],
    ['a method becomes a stream', (d) => { d.methods['get']!.yields = {}; }, '/methods/get/yields'],
    ['a stream stops accepting', (d) => { delete d.methods['put']!.accepts; }, '/methods/put/accepts'],
    ['result enum widened', (d) => { (d.methods['get']!.result as { properties: Record<string, unknown> }).properties['kind'] = { enum: ['text', 'blob', 'link'] }; }, '/methods/get/result/properties/kind/enum'],
    ['yields widened', (d) => { d.methods['tail']!.yields = { type: ['string', 'null'] }; }, '/methods/tail/yields/type'],
    ['accepts narrowed', (d) => { d.methods['put']!.accepts = { type: 'string', maxLength: 10 }; }, '/methods/put/accepts/maxLength'],
    ['event payload widened', (d) => { d.events!['changed']!.payload = obj({ key: { type: ['string', 'integer'] } }); }, '/events/changed/payload/properties/key/type'],
    ['a stream gets a result it did not have', (d) => { d.methods['tail']!.result = { type: 'integer' }; }, '/methods/tail/result/type'],
    ['renamed protocol', (d) => { d.name = 'com.example.other'; }, '/name'],
  ];
  for (const [what, change, pointer] of breaking) {
    const next = base();
    change(next);
    const { firstBreaking } = diffProtocols(base(), next);
    t.equal(firstBreaking?.pointer, pointer, `${what}: breaking at ${pointer} (${firstBreaking?.change ?? 'none'})`);
  }

  const compatible: Array<[string, (d: ProtocolDocument) => void]> = [
    ['result enum narrowed', (d) => { (d.methods['get']!.result as { properties: Record<string, unknown> }).properties['kind'] = { enum: ['text'] }; }],
    ['params gain an optional field', (d) => { (d.methods['get']!.params as { properties: Record<string, unknown> }).properties['at'] = { type: 'integer' }; }],
    ['accepts widened', (d) => { d.methods['put']!.accepts = { type: ['string', 'null'] }; }],
    ['yields narrowed', (d) => { d.methods['tail']!.yields = { type: 'string', maxLength: 100 }; }],
  ];
  for (const [what, change] of compatible) {
    const next = base();
    change(next);
    const diff = diffProtocols(base(), next);
    t.equal(diff.firstBreaking, undefined, `${what}: compatible (${diff.changes.map((c) => c.change).join('; ')})`);
    t.ok(diff.changes.length > 0, `${what}: reported`);
  }
});

t.test('bulkhead protocol diff: 0 compatible, 1 breaking, 2 usage error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-pdiff-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, value: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value));
    return path;
  };
  const v1 = write('v1.json', base());
  const grown = base();
  grown.methods['list'] = { params: obj({}), result: { type: 'array' } };
  const v2 = write('v2.json', grown);
  const shrunk = base();
  delete shrunk.methods['get'];
  const v3 = write('v3.json', shrunk);

  const ok = await runCli(['protocol', 'diff', v1, v2]);
  t.equal(ok.code, 0, 'compatible: exit 0');
  t.match(ok.stdout, 'compatible  /methods/list  method "list" added');
  const same = await runCli(['protocol', 'diff', v1, v1]);
  t.equal(same.code, 0, 'identical: exit 0');
  t.match(same.stdout, 'no changes');
  const bad = await runCli(['protocol', 'diff', v1, v3]);
  t.equal(bad.code, 1, 'breaking: exit 1');
  t.match(bad.stdout, 'breaking    /methods/get  method "get" removed');
  const json = await runCli(['protocol', 'diff', v1, v3, '--json']);
  t.equal(json.code, 1);
  t.same((JSON.parse(json.stdout) as { breaking: boolean }).breaking, true, '--json says breaking');

  const missing = await runCli(['protocol', 'diff', v1, join(dir, 'nope.json')]);
  t.equal(missing.code, 2, 'a missing file: exit 2');
  t.match(missing.stderr, 'nope.json');
  const notJson = await runCli(['protocol', 'diff', write('x.json', '{ nope'), v1]);
  t.equal(notJson.code, 2, 'not JSON: exit 2');
  const notProtocol = await runCli(['protocol', 'diff', v1, write('pkg.json', { name: 'x', version: '1.0.0' })]);
  t.equal(notProtocol.code, 2, 'not a protocol: exit 2');
  t.match(notProtocol.stderr, 'ERR_INVALID_PROTOCOL');
  const usage = await runCli(['protocol', 'diff', v1]);
  t.equal(usage.code !== 0 && usage.code !== 1, true, `a missing argument is a usage error (exit ${usage.code})`);
});
