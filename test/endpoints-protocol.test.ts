// The endpoint keyword in protocols: a malformed declaration is a typed error
// at load time with its pointer; the receiver's validators (ajv, and the
// precompiled standalone ones helpers use) check an endpoint's exact shape;
// `bulkhead types` emits a branded Endpoint<'S'> that tsc holds code to.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CompiledProtocol, isBulkheadError } from 'bulkhead';
import { loadPrecompiled, precompileValidators } from '../lib/protocol/precompiled.js';
import { CLI, FIXTURES } from './helpers.js';
import { repoTempDir, runNode, typeCheck, type BadProgram } from './type-check.js';

const ISSUER_PROTOCOL = join(FIXTURES, 'protocols', 'com.test.issuer.json');
const TOKEN = 'A'.repeat(43);

function withResult(result: unknown): unknown {
  return { name: 'com.test.ep', version: '1.0.0', methods: { m: { params: { type: 'object' }, result } } };
}

function pointerOf(document: unknown): string {
  try {
    CompiledProtocol.from(document, 'test');
  } catch (err) {
    if (isBulkheadError(err, 'ERR_INVALID_PROTOCOL')) return String(err.data.pointer);
    throw err;
  }
  return 'loaded';
}

t.test('a malformed endpoint declaration is ERR_INVALID_PROTOCOL at its pointer', async (t) => {
  const field = (schema: unknown) => withResult({ type: 'object', properties: { ep: schema } });
  t.equal(pointerOf(field({ 'x-bulkhead-endpoint': 5 })), '/methods/m/result/properties/ep/x-bulkhead-endpoint', 'not a string');
  t.equal(pointerOf(field({ 'x-bulkhead-endpoint': '../etc' })), '/methods/m/result/properties/ep/x-bulkhead-endpoint', 'not a service name');
  t.equal(pointerOf(field({ 'x-bulkhead-endpoint': 'echo', type: 'string' })), '/methods/m/result/properties/ep/type', 'a validation keyword beside it');
  t.equal(pointerOf(withResult({ type: 'array', items: { anyOf: [{ type: 'null' }, { 'x-bulkhead-endpoint': '' }] } })), '/methods/m/result/items/anyOf/1/x-bulkhead-endpoint', 'found deep in items and anyOf');
  t.equal(pointerOf({ name: 'com.test.ep', version: '1.0.0', methods: {}, events: { e: { payload: { 'x-bulkhead-endpoint': null } } } }), '/events/e/payload/x-bulkhead-endpoint', 'in an event payload');
  t.equal(pointerOf(field({ 'x-bulkhead-endpoint': 'echo', description: 'd', title: 'T' })), 'loaded', 'annotations may stand beside it');
  t.equal(pointerOf(withResult({ type: 'object', properties: { 'x-bulkhead-endpoint': { type: 'string' } } })), 'loaded', 'a property merely named like the keyword is no declaration');
});

t.test('the receiver validates an endpoint field exactly: ajv and the precompiled validators agree', async (t) => {
  const protocol = CompiledProtocol.from(JSON.parse(readFileSync(ISSUER_PROTOCOL, 'utf8')), ISSUER_PROTOCOL);
  const file = precompileValidators(protocol);
  t.ok(file, 'the standalone module was written');
  const standalone = CompiledProtocol.from(protocol.document, 'standalone', { trusted: true, validators: loadPrecompiled(file!).validators });
  const cases: Array<[unknown, boolean, string]> = [
    [{ service: 'echo', token: TOKEN }, true, 'the exact shape'],
    [{ service: 'other', token: TOKEN }, false, 'an endpoint for another service'],
    [{ service: 'echo', token: `${TOKEN}A` }, false, 'a token of the wrong length'],
    [{ service: 'echo', token: `${TOKEN.slice(1)}/` }, false, 'a character outside base64url'],
    [{ service: 'echo', token: TOKEN, extra: true }, false, 'an extra key'],
    [{ service: 'echo' }, false, 'no token'],
    ['echo', false, 'a string'],
  ];
  for (const [endpoint, valid, what] of cases) {
    for (const [label, p] of [['ajv', protocol], ['precompiled', standalone]] as const) {
      const error = p.check('result', 'issue', { ok: true, endpoint });
      t.equal(error?.code, valid ? undefined : 'ERR_INVALID_RESULT', `${label}: ${what} is ${valid ? 'valid' : 'invalid (ERR_INVALID_RESULT)'}`);
    }
  }
});

const PRELUDE = `import { Broker, type Endpoint } from 'bulkhead';
import type { ComTestIssuerProtocol, IssueResult } from './com.test.issuer.js';
import type { ComTestEchoProtocol } from './com.test.echo.js';
export declare const broker: Broker;
export declare const forOther: Endpoint<'other'>;
`;

const GOOD = `${PRELUDE}
import { mintEndpoint, type Handlers } from 'bulkhead/service';
export async function main(): Promise<string> {
  const r: IssueResult = await broker.connect<ComTestIssuerProtocol>('issuer').call('issue', { service: 'echo' });
  if (r.endpoint === undefined) return 'none';
  const service: 'echo' = r.endpoint.service;
  const echo = broker.connectEndpoint<ComTestEchoProtocol>(r.endpoint);
  return (await echo.call('echo', { text: service })).text;
}
export const handlers: Pick<Handlers<ComTestIssuerProtocol>, 'issue'> = {
  issue: async ({ service }, ctx) => ({ ok: true, endpoint: await mintEndpoint('echo', ctx.peer), code: service }),
};
`;

const BAD: BadProgram[] = [
  { name: 'plain-object', code: 'TS2741', body: `export const r: IssueResult = { ok: true, endpoint: { service: 'echo', token: 'x' } };` },
  { name: 'other-service', code: 'TS2322', body: `export const r: IssueResult = { ok: true, endpoint: forOther };` },
  { name: 'open-a-string', code: 'TS2345', body: `export const c = broker.connectEndpoint('echo');` },
];

t.test('bulkhead types emits a branded Endpoint<S> for an endpoint field; tsc enforces it', async (t) => {
  const dir = repoTempDir(t, 'endpoint-types-');
  for (const protocol of [ISSUER_PROTOCOL, join(FIXTURES, 'protocols', 'com.test.echo.json')]) {
    const generated = await runNode(CLI, ['types', protocol, '-o', dir]);
    t.equal(generated.code, 0, `bulkhead types exits 0 (stderr: ${generated.stderr})`);
  }
  const source = readFileSync(join(dir, 'com.test.issuer.ts'), 'utf8');
  t.match(source, /^import type \{ Endpoint as BulkheadEndpoint \} from 'bulkhead';$/m, 'the module imports the brand');
  t.match(source, /endpoint\?: BulkheadEndpoint<"echo">;/, 'the field is Endpoint<"echo">');
  t.match(source, /export interface GrantedEvent \{[^}]*endpoint\?: BulkheadEndpoint<"echo">/s, 'in event payloads too');
  t.notMatch(readFileSync(join(dir, 'com.test.echo.ts'), 'utf8'), /BulkheadEndpoint/, 'a protocol without endpoints imports nothing');
  const { errors } = await typeCheck(dir, { good: GOOD, prelude: PRELUDE, bad: BAD });
  t.same(errors.get('good.ts') ?? [], [], 'the correct program compiles');
  t.same(errors.get('com.test.issuer.ts') ?? [], [], 'the generated file compiles');
  for (const bad of BAD) t.same(errors.get(`bad-${bad.name}.ts`), [bad.code], `${bad.name} fails with ${bad.code}`);
});
