// The manifest's maxInFlight / maxQueued across direct channels (SECURITY.md gap 11): a real
// daemon hands three clients a direct channel each to one helper; the helper's call gate
// (lib/connection/call-gate.ts) bounds the handlers it runs at once across all of them (and
// the routed path), queues the excess, refuses past the queue with ERR_BACKPRESSURE, and the
// direct calls and their errors reach the broker's metrics in the helper's batched report.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../lib/daemon/daemon.js';
import { RemoteBroker } from '../lib/daemon/remote-broker.js';
import type { IssuedIdentity } from '../lib/identity/index.js';
import { FIXTURES } from './helpers.js';
import { seedStateDir, sharedIdentity } from './shared-ca.js';

const work = mkdtempSync(join(tmpdir(), 'bulkhead-gate-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const configPath = join(work, 'bulkhead.json');
const launch = { throttleMs: 0, exitTimeoutMs: 500 };
writeFileSync(configPath, JSON.stringify({ root: FIXTURES, services: [
  { name: 'refusing', entry: './gate-service.js', protocol: 'com.test.gate', clients: ['*'], maxInFlight: 2, maxQueued: 4, launch },
  { name: 'queueing', entry: './gate-service.js', protocol: 'com.test.gate', clients: ['*'], maxInFlight: 2, maxQueued: 100, launch },
  // Positive control: the default bound (1024) lets all 30 run at once, so the handler's count can see more than 2.
  { name: 'unbounded', entry: './gate-service.js', protocol: 'com.test.gate', clients: ['*'], launch },
] }));
await seedStateDir(join(work, 'state')); // the run's test CA (test/shared-ca.ts): no new keys for this daemon
const daemon = await Daemon.start({ config: configPath, settings: { socketPath: join(work, 'd.sock'), stateDir: join(work, 'state') }, log: () => {} });
t.teardown(() => daemon.close());
const protocolsDir = join(FIXTURES, 'protocols');

/** Certificates by index, issued once per run (each is an RSA key pair, 0.2–0.9 s on Node 20): the tests only need distinct clients (names other files use too). */
const identities: IssuedIdentity[] = await Promise.all(['app', 'app-a', 'app-b', 'app-c'].map((name) => sharedIdentity(name)));

/** `n` clients of `service`, each with its own identity and its own channel (direct unless `routed`). */
function clients(t: Test, service: string, n: number, routed = 0) {
  return Array.from({ length: n + routed }, (_, i) => {
    const client = new RemoteBroker(daemon.socketPath, identities[i]!, { protocolsDir, direct: i < n });
    t.teardown(() => client.close());
    return client.connect(service, { protocol: 'com.test.gate' });
  });
}

/** Resolves once `check` holds (the helper reports its counts every 50 ms: there is no event), bounded. */
async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = performance.now() + 20_000;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const paths = (service: string) => daemon.connectionStatus().clients.filter((c) => c.service === service && c.pid === process.pid).map((c) => c.path).sort();

/** One series of the broker's metrics, 0 when absent. */
async function metric(name: string, labels: string): Promise<number> {
  const line = (await daemon.broker.metrics()).split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

type Outcome = { ok: true; peak: number } | { ok: false; code: string };

/** Fires 10 `hold` calls on each connection at once; outcomes in firing order, and a count of those settled. */
function fire(connections: ReturnType<typeof clients>) {
  let settled = 0;
  const all = connections.flatMap((c) => Array.from({ length: 10 }, () => c.call('hold', {}, { timeoutMs: 60_000 }).then(
    (r): Outcome => ({ ok: true, peak: r.peak as number }),
    (e: { code: string }): Outcome => ({ ok: false, code: e.code }),
  ).finally(() => settled++)));
  return { all: Promise.all(all), settled: () => settled };
}

/** Starts the service's helper and returns its pid (SIGUSR2 to it lets every `hold` answer). */
async function warm(connection: ReturnType<typeof clients>[number], service: string): Promise<number> {
  await connection.call('fail', { code: 'E_WARM' }).catch(() => undefined);
  return daemon.broker.status(service).pid!;
}

t.test('maxInFlight 2, maxQueued 100: 3 direct clients and 1 routed, 10 calls each: never more than 2 handlers run at once, all 40 complete', async (t) => {
  const connections = clients(t, 'queueing', 3, 1);
  const pid = await warm(connections[0]!, 'queueing');
  for (const c of connections.slice(1)) await c.call('fail', { code: 'E_WARM' }).catch(() => undefined);
  t.same(paths('queueing'), ['direct', 'direct', 'direct', 'routed'], 'three direct channels and one routed connection');
  const run = fire(connections);
  // All 40 reached the helper: 2 running, 38 waiting in its gate (the tallies and the routed count say so).
  await until(() => daemon.broker.status('queueing').inFlight === 40, 'all 40 calls in flight at the helper');
  t.equal(run.settled(), 0, 'none was refused: the queue holds them');
  process.kill(pid, 'SIGUSR2');
  const outcomes = await run.all;
  t.equal(outcomes.filter((o) => o.ok).length, 40, 'every call completed');
  const peak = Math.max(...outcomes.map((o) => (o.ok ? o.peak : 0)));
  t.equal(peak, 2, 'the handler never saw more than 2 running at once');
});

t.test('maxInFlight 2, maxQueued 4: 3 direct clients, 10 calls each: 6 accepted, 24 refused with ERR_BACKPRESSURE; metrics show them', async (t) => {
  // A scrape first: helpers time direct calls only once calls are observed (docs/daemon.md), and this test counts durations too.
  await daemon.broker.metrics();
  const connections = clients(t, 'refusing', 3);
  const pid = await warm(connections[0]!, 'refusing');
  for (const c of connections.slice(1)) await c.call('fail', { code: 'E_WARM' }).catch(() => undefined);
  t.same(paths('refusing'), ['direct', 'direct', 'direct']);
  await until(async () => (await metric('bulkhead_calls_total', 'service="refusing"')) === 3, 'the warm-up calls in the metrics');
  const run = fire(connections);
  await until(() => run.settled() === 24, 'the 24 refusals');
  process.kill(pid, 'SIGUSR2');
  const outcomes = await run.all;
  const refused = outcomes.filter((o) => !o.ok);
  t.equal(refused.length, 24, '24 refused');
  t.same([...new Set(refused.map((o) => (o.ok ? '' : o.code)))], ['ERR_BACKPRESSURE'], 'with the exact code');
  t.equal(outcomes.filter((o) => o.ok).length, 6, '2 running + 4 queued completed');
  t.equal(Math.max(...outcomes.map((o) => (o.ok ? o.peak : 0))), 2, 'never more than 2 at once');
  // The direct calls' report reaches the broker (batched with the helper's tally).
  await until(async () => (await metric('bulkhead_calls_total', 'service="refusing"')) === 33, 'the 30 direct calls in bulkhead_calls_total');
  t.equal(await metric('bulkhead_call_errors_total', 'service="refusing",code="ERR_BACKPRESSURE"'), 24, 'the 24 refusals, by code');
  t.equal(await metric('bulkhead_call_errors_total', 'service="refusing",code="ERR_SERVICE_ERROR"'), 3, 'the warm-up failures, as their callers got them');
  t.equal(await metric('bulkhead_call_duration_seconds_count', 'service="refusing"'), 33, 'every direct call timed');
  t.ok(await metric('bulkhead_call_duration_seconds_sum', 'service="refusing"') > 0);
});

t.test('positive control: with the default bound the same 30 direct calls all run at once', async (t) => {
  const connections = clients(t, 'unbounded', 3);
  const pid = await warm(connections[0]!, 'unbounded');
  for (const c of connections.slice(1)) await c.call('fail', { code: 'E_WARM' }).catch(() => undefined);
  const run = fire(connections);
  await until(() => daemon.broker.status('unbounded').inFlight === 30, 'all 30 in flight');
  process.kill(pid, 'SIGUSR2');
  const outcomes = await run.all;
  t.equal(Math.max(...outcomes.map((o) => (o.ok ? o.peak : 0))), 30, 'the handler saw all 30 running: the count observes concurrency');
});
