/**
 * Stream types end to end (issue 16): `bulkhead types` generates item types
 * (`<Method>Item` for yields, `<Method>Input` for accepts), and `tsc` checks an
 * app's conn.stream() items, input and .result, and a helper's async generator
 * handlers and ctx.input, against them. Each wrong use fails with one error.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, FIXTURES } from './helpers.js';
import { repoTempDir, runNode, typeCheck, type BadProgram } from './type-check.js';

const PROTOCOL = join(FIXTURES, 'protocols', 'com.test.streams.json');

const PRELUDE = `import { Broker } from 'bulkhead';
import type { Handlers } from 'bulkhead/service';
import type { ComTestStreamsProtocol } from './com.test.streams.js';
export declare const broker: Broker;
const conn = broker.connect<ComTestStreamsProtocol>('streams');
`;

const GOOD = `import { Broker, type StreamCall } from 'bulkhead';
import type { Handlers } from 'bulkhead/service';
import type { ComTestStreamsProtocol, CountItem, CountResult, SumInput, SumResult, EchoItemsResult } from './com.test.streams.js';

export async function main(broker: Broker): Promise<number> {
  const conn = broker.connect<ComTestStreamsProtocol>('streams');
  const stream: StreamCall<CountItem, CountResult> = conn.stream('count', { n: 10 }, { timeoutMs: 1000 });
  let total = 0;
  for await (const item of stream) total += item.i;
  const result: CountResult = await stream.result;
  async function* numbers(): AsyncGenerator<SumInput> { yield 1; yield 2.5; }
  const sum: SumResult = await conn.stream('sum', {}, { input: numbers() }).result;
  const sum2 = await conn.stream('sum', {}, { input: [1, 2, 3] }).result;
  const nothing: EchoItemsResult = await conn.stream('echoItems', {}, { input: [1] }).result;
  return total + result.count + sum.sum + sum2.count + (nothing === null ? 0 : 1);
}

export const handlers: Pick<Handlers<ComTestStreamsProtocol>, 'count' | 'sum' | 'echoItems'> = {
  async *count({ n }, ctx) {
    for (let i = 0; i < n && !ctx.signal.aborted; i++) yield { i };
    return { count: n };
  },
  async sum(_params, ctx) {
    let sum = 0;
    let count = 0;
    for await (const x of ctx.input) { sum += x; count++; }
    return { sum, count };
  },
  async *echoItems(_params, ctx) {
    for await (const x of ctx.input) yield x * 2;
    return null;
  },
};
`;

const BAD: BadProgram[] = [
  { name: 'item-field', code: 'TS2339', body: `export async function f() { for await (const item of conn.stream('count', { n: 1 })) item.nope; }` },
  { name: 'item-type', code: 'TS2322', body: `export async function f() { for await (const item of conn.stream('count', { n: 1 })) { const s: string = item.i; void s; } }` },
  { name: 'input-type', code: 'TS2322', body: `export const s = conn.stream('sum', {}, { input: ['one'] });` },
  { name: 'stream-params', code: 'TS2322', body: `export const s = conn.stream('count', { n: 'ten' });` },
  { name: 'result-type', code: 'TS2322', body: `export async function f() { const r: string = await conn.stream('count', { n: 1 }).result; return r; }` },
  { name: 'handler-yield', code: 'TS2322', body: `export const h: Pick<Handlers<ComTestStreamsProtocol>, 'count'> = { async *count() { yield { i: 'x' }; return { count: 0 }; } };` },
  { name: 'handler-input', code: 'TS2322', body: `export const h: Pick<Handlers<ComTestStreamsProtocol>, 'sum'> = { async sum(_p, ctx) { for await (const x of ctx.input) { const s: string = x; void s; } return { sum: 0, count: 0 }; } };` },
];

t.test('bulkhead types: stream item types check an app and a helper; wrong uses fail', async (t) => {
  const dir = repoTempDir(t, 'types-streams-');
  const generated = await runNode(CLI, ['types', PROTOCOL, '-o', dir]);
  t.equal(generated.code, 0, `bulkhead types exits 0 (stderr: ${generated.stderr})`);
  const source = readFileSync(join(dir, 'com.test.streams.ts'), 'utf8');
  t.match(source, /count: \{\s*params: CountParams;\s*result: CountResult;\s*yields: CountItem;/, 'count: params, result, yields');
  t.match(source, /sum: \{\s*params: SumParams;\s*result: SumResult;\s*accepts: SumInput;/, 'sum: params, result, accepts');
  t.match(source, /export type EchoItemsResult = null;/, 'a stream without a result ends with null');

  const { errors } = await typeCheck(dir, { good: GOOD, prelude: PRELUDE, bad: BAD, lib: ['ES2023', 'ESNext.Disposable', 'ESNext.AsyncIterable'] });
  t.same(errors.get('good.ts') ?? [], [], 'the correct program compiles with 0 errors');
  t.same(errors.get('com.test.streams.ts') ?? [], [], 'the generated file itself compiles');
  for (const bad of BAD) t.same(errors.get(`bad-${bad.name}.ts`), [bad.code], `${bad.name} fails with ${bad.code}`);
});
