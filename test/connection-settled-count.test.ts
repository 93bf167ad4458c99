/**
 * A Connection counts its calls in flight (`inFlight`, what close() waits for). Every way a
 * call can end must count it exactly once: a reply, a service error, an invalid result,
 * a refusal at once, the deadline, the caller's signal, an interruption, destroy(). And a
 * call whose rejection is awaited only later (after other awaits) must not surface as an
 * unhandled rejection: the count's `.then` marks it handled (bench/README.md, round seven).
 * In memory (test/memory-pair.ts): a Connection over the RpcClient of an in-memory pair.
 */
import t from 'tap';
import { Connection, type ServiceEndpoint } from '../lib/connection/connection.js';
import type { HandlerContext } from '../lib/connection/rpc-server.js';
import type { RpcClientOptions } from '../lib/connection/rpc-client.js';
import { bulkheadError } from '../lib/errors.js';
import type { ProtocolShape } from '../lib/protocol/types.js';
import { deferred, memoryProtocol, rpcPair } from './memory-pair.js';
import { recordUncaught, rejection } from './helpers.js';

const uncaught = recordUncaught();

/** A Connection over an in-memory pair whose `wait` handler answers only when released. */
function setUp(client: RpcClientOptions = {}) {
  const gates: Array<() => void> = [];
  const pair = rpcPair({
    client,
    handlers: {
      echo: (p: { text: string }) => ({ text: p.text }),
      wait: (p: { tag?: number }, ctx: HandlerContext) => new Promise((resolve, reject) => {
        gates.push(() => resolve(p));
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), { once: true });
      }),
      wrongResult: () => ({ count: 'not a number' }),
      unhandled: () => {
        throw new Error('the handler failed');
      },
    },
  });
  const endpoint: ServiceEndpoint = {
    service: 'memory',
    protocol: memoryProtocol(),
    current: () => pair.client,
    acquire: () => Promise.resolve(pair.client),
    callMeta: undefined,
    detach: () => undefined,
  };
  const conn = new Connection<ProtocolShape>(endpoint);
  t.teardown(() => pair.clientEnd.destroy());
  const released = async (n: number) => {
    while (gates.length < n) await new Promise((resolve) => setImmediate(resolve));
    for (const open of gates.splice(0, n)) open();
  };
  return { pair, conn, released };
}

t.test('replies: counted down once each, before the caller resumes', async (t) => {
  const { conn } = setUp();
  const calls = Array.from({ length: 100 }, (_, i) => conn.call('echo', { text: String(i) }));
  t.equal(conn.inFlight, 100, 'all 100 counted while in flight');
  const seen: number[] = [];
  await Promise.all(calls.map(async (call) => {
    await call;
    seen.push(conn.inFlight);
  }));
  t.equal(conn.inFlight, 0, 'none left, never below zero');
  t.equal(seen[0]! < 100, true, 'the first caller to resume already sees its call settled');
  t.same([...seen].sort((a, b) => b - a), seen, 'the count only falls');
  await conn.close();
});

t.test('service error, invalid result, refusal at once: each counted once', async (t) => {
  const { conn, released } = setUp({ maxInFlight: 1, maxQueued: 0 });
  t.equal((await rejection(conn.call('unhandled', {}))).code, 'ERR_SERVICE_ERROR');
  t.equal(conn.inFlight, 0, 'after a service error');
  t.equal((await rejection(conn.call('wrongResult', {}))).code, 'ERR_INVALID_RESULT');
  t.equal(conn.inFlight, 0, 'after an invalid result');
  const held = conn.call('wait', { tag: 1 });
  const refused = conn.call('wait', { tag: 2 });
  t.equal((await rejection(refused)).code, 'ERR_BACKPRESSURE', 'the second call is refused at once (no slot, no queue)');
  t.equal(conn.inFlight, 1, 'the refused call is no longer counted; the held one is');
  await released(1);
  t.same(await held, { tag: 1 });
  t.equal(conn.inFlight, 0);
});

t.test('deadline and signal: counted once, and close() does not wait for them', async (t) => {
  const { conn } = setUp();
  const late = conn.call('wait', {}, { timeoutMs: 5 });
  const abort = new AbortController();
  const cancelled = conn.call('wait', {}, { signal: abort.signal });
  t.equal(conn.inFlight, 2);
  abort.abort();
  t.equal((await rejection(cancelled)).code, 'ERR_CANCELLED');
  t.equal((await rejection(late)).code, 'ERR_DEADLINE');
  t.equal(conn.inFlight, 0);
  await conn.close();
});

t.test('interruption and destroy(): every call counted once', async (t) => {
  const { pair, conn } = setUp();
  const interrupted = Array.from({ length: 5 }, () => conn.call('wait', {}));
  t.equal(conn.inFlight, 5);
  const closing = conn.close();
  pair.client.interrupt(bulkheadError('ERR_INTERRUPTED', 'the helper died'));
  for (const call of interrupted) t.equal((await rejection(call)).code, 'ERR_INTERRUPTED');
  t.equal(conn.inFlight, 0, 'interrupted calls counted down');
  await closing; // resolves only because the count reached zero

  const second = setUp();
  const destroyed = Array.from({ length: 3 }, () => second.conn.call('wait', {}));
  second.conn.destroy();
  for (const call of destroyed) t.equal((await rejection(call)).code, 'ERR_CLOSED');
  t.equal(second.conn.inFlight, 0, 'destroyed calls counted down');
});

t.test('the idle waiters of close() run once the last call settles', async (t) => {
  const { conn, released } = setUp();
  const calls = [conn.call('wait', { tag: 1 }), conn.call('wait', { tag: 2 })];
  const done = deferred<string>();
  void conn.close().then(() => done.resolve('closed'));
  await released(1);
  await calls[0];
  t.equal(conn.inFlight, 1, 'one call left: close() still waits');
  await released(1);
  await calls[1];
  t.equal(await done.promise, 'closed');
  t.equal(conn.isOpen, false);
});

t.test('a call that fails while its caller awaits something else is not an unhandled rejection', async (t) => {
  const { pair, conn } = setUp();
  const pending = conn.call('wait', {});
  pair.client.interrupt(bulkheadError('ERR_INTERRUPTED', 'the helper died'));
  // Several macrotasks pass before anyone handles `pending` (Node reports unhandled rejections after the microtasks).
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
  t.same(uncaught, [], 'nothing reported while nobody handled it yet');
  t.equal((await rejection(pending)).code, 'ERR_INTERRUPTED');
});

t.test('no uncaught errors', (t) => {
  t.plan(1);
  t.same(uncaught, []);
});
