// Calls through a real broker to a real helper: validation, errors, deadlines,
// cancellation, events, on-demand launch.
import t from 'tap';
import { Broker, isBulkheadError, type BulkheadError } from 'bulkhead';
import { FIXTURES, rejection } from './helpers.js';


const broker = new Broker({ root: FIXTURES });
t.teardown(() => broker.close());
broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' });

t.test('nothing is spawned until the first call; the first call launches the helper', async (t) => {
  const launches: number[] = [];
  broker.on('launch', (_name, pid) => launches.push(pid));
  const echo = broker.connect('echo');
  t.equal(broker.status('echo').state, 'idle');
  t.equal(broker.status('echo').pid, null);
  t.equal(launches.length, 0);
  const result = await echo.call('echo', { text: 'hi' });
  t.equal(result.text, 'hi');
  t.equal(launches.length, 1);
  t.equal(result.pid, launches[0], 'the launched process is the one that answered');
  t.equal(broker.status('echo').pid, launches[0]);
  t.equal(broker.status('echo').state, 'running');
  t.equal(broker.status('echo').launches, 1);
});

t.test('handler sees the main app as its verified peer', async (t) => {
  const r = await broker.connect('echo').call('whoami', {});
  t.same(r.peer, { name: 'main-app' });
});

t.test('unknown method is refused locally and in the helper', async (t) => {
  const echo = broker.connect('echo');
  t.equal((await rejection(echo.call('nope', {}))).code, 'ERR_UNKNOWN_METHOD');
  const err = await rejection(echo.call('noHandler', {}));
  t.equal(err.code, 'ERR_UNKNOWN_METHOD', 'declared but not handled → refused by the helper');
  t.equal(err.data['method'], 'noHandler');
});

t.test('invalid params are rejected before the handler runs, with ajv details', async (t) => {
  const echo = broker.connect('echo');
  const err = await rejection(echo.call('echo', { text: 42 }));
  t.equal(err.code, 'ERR_INVALID_PARAMS');
  const errors = err.data['errors'] as Array<{ instancePath: string; keyword: string }>;
  t.equal(errors[0]?.instancePath, '/text');
  t.equal(errors[0]?.keyword, 'type');
  const extra = await rejection(echo.call('echo', { text: 'x', extra: true }));
  t.equal(extra.code, 'ERR_INVALID_PARAMS');
  const date = await rejection(echo.call('echo', { text: new Date() as unknown as string }));
  t.equal(date.code, 'ERR_INVALID_PARAMS', 'non-plain params never leave the process');
});

t.test('a result that fails its schema is rejected on receipt', async (t) => {
  const err = await rejection(broker.connect('echo').call('badResult', {}));
  t.equal(err.code, 'ERR_INVALID_RESULT');
  t.equal(err.data['part'], 'result');
  t.equal((err.data['errors'] as Array<{ instancePath: string }>)[0]?.instancePath, '/count');
});

t.test('a throwing handler gives ERR_SERVICE_ERROR with its message and code, no stack', async (t) => {
  const err = await rejection(broker.connect('echo').call('fail', { message: 'disk is full', code: 'E_FULL' }));
  t.equal(err.code, 'ERR_SERVICE_ERROR');
  t.equal(err.message, 'disk is full');
  t.equal(err.data['remoteCode'], 'E_FULL');
  t.equal(err.data['stack'], undefined);
  t.equal(err.data['service'], 'echo', 'data.service is the service name, not its protocol\'s (com.test.echo)');
  const plain = await rejection(broker.connect('echo').call('fail', {}));
  t.equal(plain.data['remoteCode'], undefined);
});

t.test('a broker run with BULKHEAD_DEBUG=1 passes it on (HELPER_ENV.debug): the helper then sends handler stacks', async (t) => {
  const saved = process.env['BULKHEAD_DEBUG'];
  process.env['BULKHEAD_DEBUG'] = '1';
  t.teardown(() => {
    if (saved === undefined) delete process.env['BULKHEAD_DEBUG'];
    else process.env['BULKHEAD_DEBUG'] = saved;
  });
  const debugBroker = new Broker({ root: FIXTURES });
  t.teardown(() => debugBroker.close());
  debugBroker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' });
  const err = await rejection(debugBroker.connect('echo').call('fail', { message: 'disk is full', code: 'E_FULL' }));
  t.equal(err.code, 'ERR_SERVICE_ERROR');
  t.match(err.data['stack'], /disk is full/, 'the stack of the handler\'s throw came across (the test above, without the variable, gets none)');
});

t.test('a deadline fails the call with ERR_DEADLINE and aborts the handler', async (t) => {
  const echo = broker.connect('echo');
  const err = await rejection(echo.call('sleep', { ms: 60_000 }, { timeoutMs: 50 }));
  t.equal(err.code, 'ERR_DEADLINE');
  t.equal(await echo.call('lastAbort', {}), 'ERR_DEADLINE', 'the handler saw ctx.signal abort for the deadline');
});

t.test('an AbortSignal cancels the call and the handler sees its own signal abort', async (t) => {
  const echo = broker.connect('echo');
  const controller = new AbortController();
  const call = echo.call('sleep', { ms: 60_000 }, { signal: controller.signal });
  const whoami = await echo.call('whoami', {}); // the sleep call is surely in the helper now
  t.ok(whoami.pid);
  controller.abort();
  t.equal((await rejection(call)).code, 'ERR_CANCELLED');
  t.equal(await echo.call('lastAbort', {}), 'ERR_CANCELLED');
  const already = new AbortController();
  already.abort();
  t.equal((await rejection(echo.call('echo', { text: 'x' }, { signal: already.signal }))).code, 'ERR_CANCELLED');
  t.equal(broker.status('echo').inFlight, 0, 'nothing left in flight');
});

t.test('events reach the caller that caused them; broadcasts reach every connection', async (t) => {
  const a = broker.connect('echo');
  const b = broker.connect('echo');
  const ticksA: number[] = [];
  const ticksB: number[] = [];
  a.onEvent('tick', (p: { i: number }) => ticksA.push(p.i));
  b.onEvent('tick', (p: { i: number }) => ticksB.push(p.i));
  t.same(await a.call('count', { n: 5 }), { sent: 5 });
  t.same(ticksA, [0, 1, 2, 3, 4], 'events arrive before the reply, in order');
  t.same(ticksB, [], 'other connections do not see them');

  const news = Promise.all([a, b].map((c) => new Promise((resolve) => c.onEvent('news', resolve))));
  await a.call('broadcast', { value: 7 });
  t.same(await news, [{ value: 7 }, { value: 7 }]);
});

t.test('an event that fails its schema is dropped and reported as ERR_INVALID_RESULT', async (t) => {
  const echo = broker.connect('echo');
  const errors: BulkheadError[] = [];
  const events: unknown[] = [];
  echo.on('error', (e) => errors.push(e));
  echo.on('event', (_name, payload) => events.push(payload));
  await echo.call('count', { n: 2, bad: true });
  t.equal(events.length, 0);
  t.equal(errors.length, 2);
  t.equal(errors[0]?.code, 'ERR_INVALID_RESULT');
  t.equal(errors[0]?.data['part'], 'event');
});

t.test('a __proto__ key in params reaches no prototype', async (t) => {
  const params = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Record<string, unknown>;
  const r = await broker.connect('echo').call('protoCheck', params);
  t.equal(r.foreignPrototype, false);
  t.equal(r.polluted, false);
  t.same(r.keys, ['__proto_', 'a'], 'cbor-x renames the key');
  t.equal(({} as { polluted?: unknown }).polluted, undefined, 'broker prototype untouched');
});

t.test('binary results cross as Buffers', async (t) => {
  const r = await broker.connect('echo').call('bytes', { size: 1 << 20 });
  t.ok(Buffer.isBuffer(r.data));
  t.equal(r.data.length, 1 << 20);
  t.equal(r.data[12345], 7);
});

t.test('calls on unknown services and closed connections fail with their codes', async (t) => {
  t.throws(() => broker.connect('nope'), { code: 'ERR_UNKNOWN_SERVICE' });
  const echo = broker.connect('echo');
  await echo.close();
  t.equal((await rejection(echo.call('echo', { text: 'x' }))).code, 'ERR_CLOSED');
  t.equal((await rejection(broker.connect('echo').call('echo', { text: 'x' }, { timeoutMs: -1 }))).code, 'ERR_INVALID_OPTION');
});

t.test('close() waits for the connection\'s calls; destroy() fails them now', async (t) => {
  const echo = broker.connect('echo');
  const slow = echo.call('sleep', { ms: 30 });
  await echo.close();
  t.same(await slow, { slept: 30 }, 'close drained the call');
  const other = broker.connect('echo');
  const hanging = other.call('sleep', { ms: 60_000 });
  await other.call('whoami', {});
  other.destroy();
  t.equal((await rejection(hanging)).code, 'ERR_CLOSED');
  t.equal(await broker.connect('echo').call('lastAbort', {}), 'ERR_CANCELLED', 'the helper was told to cancel');
});

t.test('bounded in-flight: a full queue refuses with ERR_BACKPRESSURE, nothing is lost', async (t) => {
  const kit = new Broker({ root: FIXTURES });
  t.teardown(() => kit.close());
  kit.register({ name: 'narrow', entry: './echo-service.js', protocol: 'com.test.echo', maxInFlight: 2, maxQueued: 3 });
  const narrow = kit.connect('narrow');
  await narrow.call('echo', { text: 'warm' });
  const calls = Array.from({ length: 5 }, (_, i) => narrow.call('sleep', { ms: 20 + i }));
  t.equal(kit.status('narrow').inFlight, 5);
  t.equal((await rejection(narrow.call('echo', { text: 'one too many' }))).code, 'ERR_BACKPRESSURE');
  const results = await Promise.all(calls);
  t.same(results.map((r) => r.slept), [20, 21, 22, 23, 24], 'every queued call completed');
});
