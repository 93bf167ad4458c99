/**
 * Compile-time tests of the public types. Every `@ts-expect-error` below must
 * meet an error, so `npm run build` (tsc over test/) fails if typing regresses
 * in either direction: a wrong call that starts compiling, or a right one that
 * stops. The code is type-checked, never run: nothing here launches a helper.
 */
import t from 'tap';
import {
  Broker,
  BulkheadError,
  ERROR_CODES,
  isBulkheadError,
  type AnyProtocol,
  type BulkheadErrorCode,
  type Connection,
  type EventPayload,
  type MethodName,
  type ParamsOf,
  type ProtocolShape,
  type ResultOf,
} from 'bulkhead';
import type { Handlers } from 'bulkhead/service';

/** A hand-written protocol shape, as `bulkhead types` would generate it. */
interface KvProtocol {
  methods: {
    get: { params: { key: string }; result: { value: string | null } };
    set: { params: { key: string; value: string }; result: null };
    list: { params: { prefix?: string }; result: string[] };
  };
  events: {
    changed: { key: string };
  };
}

/** Exact type equality (distinguishes any, unknown and optional members). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
function assertType<T extends true>(): T | undefined {
  return undefined;
}

// Type-level helpers resolve to the declared shapes.
assertType<Equal<MethodName<KvProtocol>, 'get' | 'set' | 'list'>>();
assertType<Equal<ParamsOf<KvProtocol, 'set'>, { key: string; value: string }>>();
assertType<Equal<ResultOf<KvProtocol, 'get'>, { value: string | null }>>();
assertType<Equal<EventPayload<KvProtocol, 'changed'>, { key: string }>>();
assertType<KvProtocol extends ProtocolShape ? true : false>();
// @ts-expect-error 'del' is not a method of KvProtocol
assertType<Equal<MethodName<KvProtocol>, 'get' | 'set' | 'list' | 'del'>>();

/** Typed calls: the right ones compile, the wrong ones are errors. */
export async function typedCalls(broker: Broker): Promise<void> {
  const kv: Connection<KvProtocol> = broker.connect<KvProtocol>('kv');
  const got = await kv.call('get', { key: 'a' });
  const value: string | null = got.value;
  const none: null = await kv.call('set', { key: 'a', value: 'b' });
  const keys: string[] = await kv.call('list', {});
  void [value, none, keys];

  // @ts-expect-error params of the wrong type
  await kv.call('get', { key: 42 });
  // @ts-expect-error missing required param
  await kv.call('set', { key: 'a' });
  // @ts-expect-error unknown method
  await kv.call('del', { key: 'a' });
  // @ts-expect-error unknown param (excess property)
  await kv.call('get', { key: 'a', extra: true });
  // @ts-expect-error reading a result field that does not exist
  got.missing;
  // @ts-expect-error the result is not a number
  const wrong: number = await kv.call('list', {});
  void wrong;

  kv.onEvent('changed', (payload) => {
    const key: string = payload.key;
    void key;
    // @ts-expect-error no such payload field
    void payload.value;
  });
  // @ts-expect-error unknown event
  kv.onEvent('deleted', () => undefined);
}

/** Without a type argument a connection is AnyProtocol: anything goes, results are any. */
export async function untypedCalls(broker: Broker): Promise<void> {
  const any: Connection<AnyProtocol> = broker.connect('kv');
  const result = await any.call('whatever', { anything: [1, 2] });
  void (result as { whatever: unknown }).whatever;
}

/** Handlers are checked against the same shape on the service side. */
export const handlers: Handlers<KvProtocol> = {
  get: ({ key }) => ({ value: key }),
  set: async (_params, ctx) => {
    ctx.emit('changed', { key: 'a' });
    return null;
  },
  list: ({ prefix }) => (prefix === undefined ? [] : [prefix]),
};

export const badHandlers: Handlers<KvProtocol> = {
  // @ts-expect-error result has the wrong shape
  get: () => ({ value: 1 }),
  set: (_params, ctx) => {
    // @ts-expect-error payload has the wrong type
    ctx.emit('changed', { key: 1 });
    // @ts-expect-error event not declared
    ctx.emit('deleted', { key: 'a' });
    return null;
  },
  list: () => [],
};

// @ts-expect-error a handler is missing
export const missingHandler: Handlers<KvProtocol> = { get: () => ({ value: null }), set: () => null };

/** Error codes are string literals, narrowed by the brand check. */
export function errorCodes(err: unknown): BulkheadErrorCode | undefined {
  if (isBulkheadError(err, 'ERR_DEADLINE')) {
    const code: 'ERR_DEADLINE' = err.code;
    // @ts-expect-error narrowed to ERR_DEADLINE: no overlap with ERR_CLOSED
    if (err.code === 'ERR_CLOSED') return undefined;
    return code;
  }
  // @ts-expect-error not a bulkhead error code
  isBulkheadError(err, 'ERR_NOT_A_CODE');
  // @ts-expect-error not a bulkhead error code
  void new BulkheadError('ERR_TYPO', 'message');
  return isBulkheadError(err) ? err.code : undefined;
}

t.test('public types compile (checked by tsc); the runtime exports exist', async (t) => {
  t.type(Broker, 'function');
  t.type(isBulkheadError, 'function');
  const err = new BulkheadError('ERR_DEADLINE', 'too slow', { method: 'get' });
  t.equal(errorCodes(err), 'ERR_DEADLINE');
  t.equal(errorCodes(new Error('plain')), undefined);
  t.ok(Object.hasOwn(ERROR_CODES, err.code));
});
