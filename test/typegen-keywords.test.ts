// The keyword lists a schema walk uses (lib/protocol/schema-keywords.ts) are shared by the
// endpoint-field finder and `bulkhead types`. Golden files written by the typegen from before
// they were shared hold its output for a protocol that uses every subschema keyword (tuples
// with and without a rest, $defs and $ref, pattern and dependent schemas, if/then/else, not,
// contains, endpoints in items, prefixItems and oneOf): the output must stay byte for byte.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateProtocolTypes } from '../lib/cli/typegen.js';
import { endpointFields } from '../lib/protocol/endpoint-keyword.js';
import { FIXTURES } from './helpers.js';

const dir = join(FIXTURES, 'typegen');
const doc = JSON.parse(readFileSync(join(dir, 'com.test.keywords.json'), 'utf8')) as { methods: Record<string, Record<string, unknown>> };

t.test('bulkhead types: the output for every subschema keyword is unchanged (strict and loose objects)', async (t) => {
  t.equal(await generateProtocolTypes(doc, { source: 'com.test.keywords' }), readFileSync(join(dir, 'com.test.keywords.golden.txt'), 'utf8'));
  t.equal(await generateProtocolTypes(doc, { source: 'com.test.keywords', looseObjects: true }), readFileSync(join(dir, 'com.test.keywords.loose.golden.txt'), 'utf8'));
});

t.test('endpoint fields are found under every subschema keyword, items in both its forms', async (t) => {
  const fault = (pointer: string, detail: string): never => {
    throw new Error(`${pointer} ${detail}`);
  };
  const found = (schema: unknown, at: string) => [...endpointFields(schema, at, fault)];
  t.same(found(doc.methods['nest']!['params'], '/p'), [['/p/properties/e', 'com.x.y'], ['/p/properties/f/items', 'com.x.z'], ['/p/properties/g/oneOf/0', 'com.x.w'], ['/p/properties/s/items', 'com.x.s']]);
  t.same(found(doc.methods['nest']!['result'], '/r'), [['/r/prefixItems/0', 'com.x.t']]);
  // The draft-04 tuple form of items (an array), which a 2020-12 protocol cannot hold but the walk still visits.
  t.same(found({ type: 'array', items: [{ 'x-bulkhead-endpoint': 'com.a.b' }, { items: { 'x-bulkhead-endpoint': 'com.a.c' } }] }, '/a'), [['/a/items/0', 'com.a.b'], ['/a/items/1/items', 'com.a.c']]);
  t.same(found({ not: { 'x-bulkhead-endpoint': 'com.n' }, $defs: { d: { 'x-bulkhead-endpoint': 'com.d' } }, if: { 'x-bulkhead-endpoint': 'com.i' } }, ''), [['/not', 'com.n'], ['/$defs/d', 'com.d'], ['/if', 'com.i']]);
});
