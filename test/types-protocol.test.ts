/**
 * End-to-end type test: the real `bulkhead types` CLI generates types for the
 * echo fixture protocol, then `tsc --noEmit` checks a small app against them.
 * The correct program must compile cleanly; each wrong use must fail with the
 * expected TypeScript error code (and only that one).
 */
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, FIXTURES } from './helpers.js';
import { repoTempDir, runNode, typeCheck, type BadProgram } from './type-check.js';

const ECHO_PROTOCOL = join(FIXTURES, 'protocols', 'com.test.echo.json');

const PRELUDE = `import { Broker } from 'bulkhead';
import type { Handlers } from 'bulkhead/service';
import type { ComTestEchoProtocol } from './com.test.echo.js';
export declare const broker: Broker;
const echo = broker.connect<ComTestEchoProtocol>('echo');
`;

/** The correct program: every line must type-check. */
const GOOD = `import { Broker, type Connection } from 'bulkhead';
import type { Handlers } from 'bulkhead/service';
import type { ComTestEchoProtocol, EchoParams, EchoResult, TickEvent, LastAbortResult } from './com.test.echo.js';

export async function main(broker: Broker): Promise<string> {
  const echo: Connection<ComTestEchoProtocol> = broker.connect<ComTestEchoProtocol>('echo');
  const params: EchoParams = { text: 'hi' };
  const r: EchoResult = await echo.call('echo', params);
  const text: string = r.text;
  const pid: number | undefined = r.pid;
  const last: LastAbortResult = await echo.call('lastAbort', {});
  const nothing: null = await echo.call('crash', { code: 3 });
  const counted = await echo.call('count', { n: 2, bad: false }, { timeoutMs: 1000 });
  const open = await echo.call('bytes', { size: 1 });
  const anything: unknown = open['data'];
  const sub = echo.onEvent('tick', (p: TickEvent) => { const i: number = p.i; void i; });
  sub.dispose();
  return \`\${text}\${pid}\${last}\${nothing}\${counted.sent}\${String(anything)}\`;
}

export const handlers: Pick<Handlers<ComTestEchoProtocol>, 'echo' | 'count' | 'lastAbort'> = {
  echo: ({ text }) => ({ text, pid: process.pid }),
  count: ({ n }, ctx) => {
    for (let i = 0; i < n; i++) ctx.emit('tick', { i });
    return { sent: n };
  },
  lastAbort: async () => null,
};
`;

/** Wrong uses, one per file, with the one error code each must produce. */
const BAD: BadProgram[] = [
  { name: 'param-type', code: 'TS2322', body: `export const p = echo.call('echo', { text: 42 });` },
  { name: 'unknown-method', code: 'TS2345', body: `export const p = echo.call('nope', {});` },
  { name: 'missing-param', code: 'TS2345', body: `export const p = echo.call('echo', {});` },
  { name: 'extra-param', code: 'TS2353', body: `export const p = echo.call('echo', { text: 'hi', extra: 1 });` },
  { name: 'result-field', code: 'TS2339', body: `export const p = echo.call('echo', { text: 'hi' }).then((r) => r.nope);` },
  { name: 'result-type', code: 'TS2322', body: `export const p = echo.call('echo', { text: 'hi' }).then((r) => { const n: number = r.text; return n; });` },
  { name: 'event-field', code: 'TS2339', body: `export const d = echo.onEvent('tick', (p) => p.nope);` },
  { name: 'unknown-event', code: 'TS2345', body: `export const d = echo.onEvent('nope', () => {});` },
  { name: 'handler-result', code: 'TS2322', body: `export const h: Pick<Handlers<ComTestEchoProtocol>, 'echo'> = { echo: () => ({ text: 1 }) };` },
  { name: 'handler-emit', code: 'TS2322', body: `export const h: Pick<Handlers<ComTestEchoProtocol>, 'count'> = { count: ({ n }, ctx) => { ctx.emit('tick', { i: 'x' }); return { sent: n }; } };` },
];

t.test('bulkhead types output type-checks an app, and rejects wrong calls', async (t) => {
  const dir = repoTempDir(t, 'types-');
  const generated = await runNode(CLI, ['types', ECHO_PROTOCOL, '-o', dir]);
  t.equal(generated.code, 0, `bulkhead types exits 0 (stderr: ${generated.stderr})`);
  t.match(generated.stdout, 'ComTestEchoProtocol');
  const source = readFileSync(join(dir, 'com.test.echo.ts'), 'utf8');
  t.match(source, /export interface ComTestEchoProtocol \{/);
  t.match(source, /export interface EchoParams \{/);
  t.match(source, /export interface TickEvent \{/);

  const { code, errors } = await typeCheck(dir, { good: GOOD, prelude: PRELUDE, bad: BAD });
  t.same(errors.get('good.ts') ?? [], [], 'the correct program compiles with 0 errors');
  t.same(errors.get('com.test.echo.ts') ?? [], [], 'the generated file itself compiles');
  for (const bad of BAD) t.same(errors.get(`bad-${bad.name}.ts`), [bad.code], `${bad.name} fails with ${bad.code}`);
  t.equal(code, 2, 'tsc exits 2 (errors found) because of the bad programs only');
});

t.test('bulkhead types --check reports stale output', async (t) => {
  const dir = repoTempDir(t, 'types-');
  const missing = await runNode(CLI, ['types', ECHO_PROTOCOL, '-o', dir, '--check']);
  t.equal(missing.code, 1, 'missing output is stale');
  t.match(missing.stdout, 'missing');
  t.equal((await runNode(CLI, ['types', ECHO_PROTOCOL, '-o', dir])).code, 0);
  t.equal((await runNode(CLI, ['types', ECHO_PROTOCOL, '-o', dir, '--check'])).code, 0, 'fresh output passes');
  writeFileSync(join(dir, 'com.test.echo.ts'), '// edited by hand\n');
  const stale = await runNode(CLI, ['types', ECHO_PROTOCOL, '-o', dir, '--check']);
  t.equal(stale.code, 1);
  t.match(stale.stdout, 'out of date');
});

t.test('bulkhead types refuses an invalid protocol with its pointer', async (t) => {
  const dir = repoTempDir(t, 'types-');
  const bad = join(FIXTURES, 'cli', 'bad', 'protocols', 'com.bad.schema.json');
  const result = await runNode(CLI, ['types', bad, '-o', dir]);
  t.equal(result.code, 1);
  t.match(result.stderr, `${bad}: /methods/echo/params:`);
  t.match(result.stderr, '(ERR_INVALID_PROTOCOL)');
});
