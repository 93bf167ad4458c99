// Direct calls are timed only while someone observes calls (docs/daemon.md, metrics): a helper
// serving direct channels counts every call and error exactly, but reads no clock for a call
// until the broker told it, on the hand-off pipe, that calls are observed (the first scrape
// here). The helper's batches (the broker's `calls` event) show it: before the scrape they carry
// counts and no durations, after it durations for every call.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../lib/daemon/daemon.js';
import { RemoteBroker } from '../lib/daemon/remote-broker.js';
import type { CallBatch } from '../lib/connection/call-meter.js';
import { FIXTURES } from './helpers.js';
import { seedStateDir, sharedIdentity } from './shared-ca.js';

const work = mkdtempSync(join(tmpdir(), 'bulkhead-direct-metrics-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const configPath = join(work, 'bulkhead.json');
writeFileSync(configPath, JSON.stringify({ root: FIXTURES, services: [
  { name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo', clients: ['*'], launch: { throttleMs: 0, exitTimeoutMs: 500 } },
] }));
await seedStateDir(join(work, 'state')); // the run's test CA (test/shared-ca.ts): no new keys for these daemons
const daemon = await Daemon.start({ config: configPath, settings: { socketPath: join(work, 'd.sock'), stateDir: join(work, 'state') }, log: () => {} });
t.teardown(() => daemon.close());

/** One series of the broker's metrics, undefined when absent. */
function series(text: string, line: string): number | undefined {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

/** The helper's batches as they arrive; `until(n)` resolves once they hold `n` calls in all. */
function batches(daemon: Daemon) {
  const seen: CallBatch[] = [];
  let wanted: { calls: number; resolve: () => void } | undefined;
  const total = () => seen.reduce((n, b) => n + b.calls, 0);
  daemon.broker.on('calls', (service, batch) => {
    if (service !== 'echo') return;
    seen.push(batch);
    if (wanted !== undefined && total() >= wanted.calls) wanted.resolve();
  });
  return {
    seen,
    total,
    until: (calls: number) => new Promise<void>((resolve) => {
      if (total() >= calls) resolve();
      else wanted = { calls, resolve };
    }),
  };
}

const timedIn = (list: CallBatch[]) => list.reduce((n, b) => n + b.buckets.reduce((m, x) => m + x, 0), 0);
const sumOf = (list: CallBatch[]) => list.reduce((n, b) => n + b.sum, 0);
const errorsOf = (list: CallBatch[], code: string) => list.reduce((n, b) => n + (b.errors[code] ?? 0), 0);

t.test('before the first scrape: direct calls counted and errors by code, none timed; after it every call timed', async (t) => {
  const reports = batches(daemon);
  const client = new RemoteBroker(daemon.socketPath, await sharedIdentity('app'), { protocolsDir: join(FIXTURES, 'protocols'), direct: true });
  t.teardown(() => client.close());
  const echo = client.connect('echo', { protocol: 'com.test.echo' });
  const failed = async () => echo.call('fail', {}).then(() => 'no error', (err: unknown) => (err as { code: string }).code);
  for (let i = 0; i < 30; i++) await echo.call('echo', { text: `n${i}` });
  const code = await failed();
  t.not(code, 'no error', 'the failing call failed');
  t.same(daemon.connectionStatus().clients.filter((c) => c.service === 'echo').map((c) => c.path), ['direct'], 'the calls went over a direct channel');
  await reports.until(31);
  const before = reports.seen.splice(0);
  t.equal(before.reduce((n, b) => n + b.calls, 0), 31, '31 calls reported');
  t.equal(errorsOf(before, code), 1, 'the failure, by its code');
  t.equal(timedIn(before), 0, 'no call timed: no duration in any bucket');
  t.equal(sumOf(before), 0, 'and no duration summed');

  const first = await daemon.broker.metrics(); // the first scrape: from now on calls are observed
  t.equal(series(first, 'bulkhead_calls_total{service="echo"}'), 31, 'every call counted before any scrape');
  t.equal(series(first, `bulkhead_call_errors_total{service="echo",code="${code}"}`), 1);
  t.equal(series(first, 'bulkhead_call_duration_seconds_count{service="echo"}'), undefined, 'nothing in the histogram');

  for (let i = 0; i < 20; i++) await echo.call('echo', { text: `m${i}` });
  t.equal(await failed(), code);
  await reports.until(21);
  const after = reports.seen;
  t.equal(after.reduce((n, b) => n + b.calls, 0), 21, '21 calls reported after the scrape');
  t.equal(timedIn(after), 21, 'every one of them timed');
  t.ok(sumOf(after) > 0, 'with their durations');
  t.equal(errorsOf(after, code), 1, 'errors still counted by code');
  const second = await daemon.broker.metrics();
  t.equal(series(second, 'bulkhead_calls_total{service="echo"}'), 52, 'counts exact across both phases');
  t.equal(series(second, `bulkhead_call_errors_total{service="echo",code="${code}"}`), 2);
  t.equal(series(second, 'bulkhead_call_duration_seconds_count{service="echo"}'), 21, 'the histogram holds the calls made after the first scrape');
  t.equal(series(second, 'bulkhead_call_duration_seconds_bucket{service="echo",le="+Inf"}'), 21);
});

t.test('a `call` listener: a helper already serving is told with its next report, a channel handed over later at once', async (t) => {
  const dir = mkdtempSync(join(work, 'listener-'));
  await seedStateDir(join(dir, 'state'));
  const app = await sharedIdentity('app');
  const second = await Daemon.start({ config: configPath, settings: { socketPath: join(dir, 'd.sock'), stateDir: join(dir, 'state') }, log: () => {} });
  t.teardown(() => second.close());
  const reports = batches(second);
  const connect = () => {
    const client = new RemoteBroker(second.socketPath, app, { protocolsDir: join(FIXTURES, 'protocols'), direct: true });
    t.teardown(() => client.close());
    return client.connect('echo', { protocol: 'com.test.echo' });
  };
  const echo = connect();
  for (let i = 0; i < 5; i++) await echo.call('echo', { text: 'unobserved' });
  await reports.until(5);
  t.equal(timedIn(reports.seen.splice(0)), 0, 'nobody observes: 5 calls, none timed');
  const listener = second.broker.on('call', () => {});
  t.teardown(() => listener.dispose());
  await echo.call('echo', { text: 'in flight when the listener came' });
  await reports.until(1); // the broker reads this report and tells the helper that calls are observed
  t.equal(timedIn(reports.seen.splice(0)), 0, 'the call answered before the helper was told: counted, not timed');
  for (let i = 0; i < 10; i++) await echo.call('echo', { text: 'observed' });
  await reports.until(10);
  t.equal(timedIn(reports.seen.splice(0)), 10, 'every call after the report timed');
  // A helper started while calls are observed is told before its first channel.
  await second.broker.stop('echo');
  const fresh = connect();
  for (let i = 0; i < 3; i++) await fresh.call('echo', { text: 'new helper' });
  await reports.until(3);
  t.equal(timedIn(reports.seen), 3, 'a new helper times its first calls');
  const text = await second.broker.metrics();
  t.equal(series(text, 'bulkhead_calls_total{service="echo"}'), 19, 'and every call counted');
});
