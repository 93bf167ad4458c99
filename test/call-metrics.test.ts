/**
 * Per-call metrics only when observed: a broker nobody scrapes or listens to
 * counts every call (bulkhead_calls_total, bulkhead_call_errors_total) without
 * timing it; the duration histogram, the broker's `call` event and the
 * `bulkhead:call` channel get timed records while something reads them.
 */
import t from 'tap';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Broker, BrokerMetrics, DIAGNOSTICS_CHANNELS } from 'bulkhead';
import { countCall } from '../lib/broker/call-tally.js';
import type { ServiceStatus } from '../lib/broker/service-supervisor.js';
import { FIXTURES } from './helpers.js';

/** The value of one series line of a Prometheus text, or undefined when it is absent. */
function series(text: string, line: string): number | undefined {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

t.test('in memory: the tallies are read at render time; calls are timed from the first render on', async (t) => {
  const metrics = new BrokerMetrics({ status: () => [{ name: 'a' }, { name: 'b' }] as ServiceStatus[] });
  const { callTally, callsObserved } = metrics.callHooks;
  const a = callTally('a');
  t.equal(callTally('a'), a, 'one tally per service, shared by its helpers');
  t.equal(callsObserved(), false, 'nobody observes calls before the first render');
  for (let i = 0; i < 3; i++) countCall(a, null);
  countCall(a, 'ERR_HANDLER');
  countCall(callTally('b'), 'ERR_INTERRUPTED');
  const text = await metrics.render();
  t.equal(series(text, 'bulkhead_calls_total{service="a"}'), 4);
  t.equal(series(text, 'bulkhead_calls_total{service="b"}'), 1);
  t.equal(series(text, 'bulkhead_call_errors_total{service="a",code="ERR_HANDLER"}'), 1);
  t.equal(series(text, 'bulkhead_call_errors_total{service="b",code="ERR_INTERRUPTED"}'), 1);
  t.equal(series(text, 'bulkhead_call_duration_seconds_count{service="a"}'), undefined, 'nothing timed yet');
  t.equal(callsObserved(), true, 'after the first render calls are timed');
  countCall(a, null);
  metrics.timed('a', 0.002);
  metrics.call('b', 0.02, null);
  const after = await metrics.render();
  t.equal(series(after, 'bulkhead_calls_total{service="a"}'), 5, 'the tally bumped after a render shows at the next one');
  t.equal(series(after, 'bulkhead_calls_total{service="b"}'), 2, 'call() counts and times');
  t.equal(series(after, 'bulkhead_call_duration_seconds_bucket{service="a",le="0.0025"}'), 1);
  t.equal(series(after, 'bulkhead_call_duration_seconds_count{service="b"}'), 1);
  const watched = new BrokerMetrics({ status: () => [] });
  let listening = false;
  watched.timeCallsWhile(() => listening);
  t.equal(watched.callHooks.callsObserved(), false);
  listening = true;
  t.equal(watched.callHooks.callsObserved(), true, 'a listener makes calls timed before any render');
});

t.test('before the first scrape: every call and error counted exactly, none timed; after it, timed too', async (t) => {
  const broker = new Broker({ root: FIXTURES });
  t.teardown(() => broker.close());
  broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' });
  const echo = broker.connect('echo');
  for (let i = 0; i < 20; i++) await echo.call('echo', { text: `n${i}` });
  const failed = await echo.call('fail', {}).then(() => undefined, (err: unknown) => (err as { code: string }).code);
  t.type(failed, 'string', 'the failing call failed');
  // A crash with a call in flight: ERR_INTERRUPTED for the caller, counted under that code.
  const crashed = await echo.call('crash', { code: 3 }).then(() => undefined, (err: unknown) => (err as { code: string }).code);
  t.equal(crashed, 'ERR_INTERRUPTED');
  const first = await broker.metrics();
  t.equal(series(first, 'bulkhead_calls_total{service="echo"}'), 22, '20 replies, 1 error, 1 interrupted: all counted before any scrape');
  t.equal(series(first, `bulkhead_call_errors_total{service="echo",code="${failed!}"}`), 1, 'the handler error, by the code the caller got');
  t.equal(series(first, 'bulkhead_call_errors_total{service="echo",code="ERR_INTERRUPTED"}'), 1, 'the interrupted call');
  t.equal(series(first, 'bulkhead_call_duration_seconds_count{service="echo"}'), undefined, 'no call was timed before the first scrape');
  // From the first scrape on, calls are timed as well (the relaunched helper counts into the same series).
  for (let i = 0; i < 5; i++) await echo.call('echo', { text: 'after' });
  const second = await broker.metrics();
  t.equal(series(second, 'bulkhead_calls_total{service="echo"}'), 27);
  t.equal(series(second, 'bulkhead_call_duration_seconds_count{service="echo"}'), 5, 'the 5 calls after the first scrape are in the histogram');
  t.equal(series(second, 'bulkhead_call_duration_seconds_bucket{service="echo",le="+Inf"}'), 5);
  t.ok(series(second, 'bulkhead_call_duration_seconds_sum{service="echo"}')! > 0, 'with their durations');
});

t.test('a `call` listener or a bulkhead:call subscriber gets every call timed while it listens, and only then', async (t) => {
  const broker = new Broker({ root: FIXTURES });
  t.teardown(() => broker.close());
  broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' });
  const echo = broker.connect('echo');
  const events: Array<{ method: string; seconds: number; code: string | null }> = [];
  await echo.call('echo', { text: 'unobserved' });
  const listener = broker.on('call', (_service, call) => events.push(call));
  await echo.call('echo', { text: 'observed' });
  await echo.call('whoami', {});
  listener.dispose();
  await echo.call('echo', { text: 'unobserved again' });
  t.same(events.map((e) => [e.method, e.code]), [['echo', null], ['whoami', null]], 'exactly the calls made while listening');
  t.ok(events.every((e) => e.seconds > 0), 'each with its duration');
  const published: unknown[] = [];
  const onMessage = (message: unknown) => published.push(message);
  subscribe(DIAGNOSTICS_CHANNELS.call, onMessage);
  await echo.call('echo', { text: 'channel' });
  unsubscribe(DIAGNOSTICS_CHANNELS.call, onMessage);
  await echo.call('echo', { text: 'after unsubscribing' });
  t.equal(published.length, 1, 'the channel saw the one call made while subscribed');
  t.match(published[0], { service: 'echo', method: 'echo', code: null });
  const text = await broker.metrics();
  t.equal(series(text, 'bulkhead_calls_total{service="echo"}'), 6, 'every call counted, observed or not');
  t.equal(series(text, 'bulkhead_call_duration_seconds_count{service="echo"}'), 3, 'the histogram holds the 3 timed calls');
});
