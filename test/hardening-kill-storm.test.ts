// Hardening (issue 7, item 3): a kill storm. Under a steady load of calls from several
// connections, the helper is SIGKILLed 100 times at random points (while running with
// calls in flight, and while launching). Every call settles with its own answer or a
// typed error before its deadline, no answer reaches the wrong call, no helper process
// survives, and the broker's fds and memory return to their baseline.
import t from 'tap';
import { readdirSync } from 'node:fs';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isBulkheadError } from 'bulkhead';
import { startBroker } from 'bulkhead/testing';
import { FIXTURES, recordUncaught, gone } from './helpers.js';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;

const KILLS = 100;
/** Two services storm in parallel (KILLS / 2 kills each), so helper start-up latencies overlap. */
const SERVICES = ['storm-a', 'storm-b'];
const CONNECTIONS = 2; // per service
const CALLS_PER_CONNECTION = 8; // concurrent, so 32 calls are in flight at any time
const DEADLINE_MS = 3000;
/** How late past its deadline a call may settle (timer and event-loop slack under load). */
const SLACK_MS = 1000;
const SEED = Number(process.env['BULKHEAD_STORM_SEED'] ?? 7);

const uncaught = recordUncaught();

function random(seed: number) {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) % n;
  };
}

const fdCount = () => readdirSync('/proc/self/fd').length;
function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}


t.test(`${KILLS} random SIGKILLs under load: every call settles correctly, nothing leaks`, async (t) => {
  const rand = random(SEED);
  const brokerOptions = {
    root: FIXTURES,
    services: SERVICES.map((name) => ({ name, entry: './hardening/storm-service.js', protocol: 'com.test.hardening-storm', launch: { throttleMs: 0, maxRestarts: 1000, restartWindowMs: 600_000, exitTimeoutMs: 500 } })),
  };
  // The memory baseline is taken after a warm-up broker ran the same code paths once (a call, a kill, a relaunch, a
  // close): what the first use loads and keeps (compiled code, validators, module state) was ~6 MiB of the growth
  // below, so a leak per kill had to pass 20 KB to show, and one load spike (+8.19 MiB on Node 20 in CI) failed it.
  const warm = await startBroker(brokerOptions);
  for (const name of SERVICES) {
    await warm.broker.connect(name).call('echo', { token: 'warm-up', ms: 0 });
    warm.broker.kill(name);
    await warm.broker.connect(name).call('echo', { token: 'warm-up', ms: 0 }).catch(() => undefined);
    await warm.broker.connect(name).call('echo', { token: 'warm-up', ms: 0 });
  }
  await warm.close();
  const baselineFds = fdCount();
  const baselineHeap = heapAfterGc();
  const kit = await startBroker(brokerOptions);
  let closed = false;
  t.teardown(() => (closed ? undefined : kit.close()));
  const broker = kit.broker;
  const launched: number[] = [];
  const launchedBy = new Map<string, number[]>(SERVICES.map((name) => [name, []]));
  broker.on('launch', (name, pid) => {
    launched.push(pid);
    launchedBy.get(name)!.push(pid);
  });

  // ---- load: CONNECTIONS × CALLS_PER_CONNECTION concurrent call loops, each call with a unique token.
  const outcomes = new Map<string, number>();
  const problems: string[] = [];
  const inFlight = new Map<string, number>(); // token → start time
  let issued = 0;
  let maxLatency = 0;
  const okSinceMark = new Map<string, number>();
  const okWaiter = new Map<string, { count: number; resolve: () => void }>();
  let stop = false;

  const loop = async (service: string, conn: ReturnType<typeof broker.connect>, c: number, w: number) => {
    for (let n = 0; !stop && n < 1_000_000; n++) {
      const token = `${service}.${c}.${w}.${n}`;
      const started = performance.now();
      inFlight.set(token, started);
      issued++;
      let outcome: string;
      try {
        const r = (await conn.call('echo', { token, ms: rand(15) }, { timeoutMs: DEADLINE_MS })) as { token: string; pid: number };
        outcome = 'ok';
        if (r.token !== token) problems.push(`call ${token} got the answer for ${r.token}`);
        if (!launchedBy.get(service)!.includes(r.pid)) problems.push(`call ${token} was answered by pid ${r.pid}, which the broker never launched for ${service}`);
        const seen = (okSinceMark.get(service) ?? 0) + 1;
        okSinceMark.set(service, seen);
        const waiter = okWaiter.get(service);
        if (waiter !== undefined && seen >= waiter.count) {
          okWaiter.delete(service);
          waiter.resolve();
        }
      } catch (err) {
        outcome = isBulkheadError(err) ? err.code : `non-bulkhead error: ${String(err)}`;
      }
      const latency = performance.now() - started;
      maxLatency = Math.max(maxLatency, latency);
      if (latency > DEADLINE_MS + SLACK_MS) problems.push(`call ${token} settled after ${latency.toFixed(0)} ms (deadline ${DEADLINE_MS})`);
      inFlight.delete(token);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      if (outcome !== 'ok' && outcome !== 'ERR_INTERRUPTED' && outcome !== 'ERR_LAUNCH_FAILED') {
        problems.push(`call ${token} failed with ${outcome}`);
        return; // never spin on an unexpected failure
      }
    }
  };
  const loops = SERVICES.flatMap((service) => Array.from({ length: CONNECTIONS }, (_, c) => {
    const conn = broker.connect(service);
    return Array.from({ length: CALLS_PER_CONNECTION }, (_, w) => loop(service, conn, c, w));
  }).flat());

  /** Resolves after `count` more calls to `service` succeeded. */
  const successes = (service: string, count: number) => new Promise<void>((resolve) => {
    okSinceMark.set(service, 0);
    if (count === 0) resolve();
    else okWaiter.set(service, { count, resolve });
  });

  // ---- the storm: each service is killed KILLS / SERVICES.length times, both at once.
  const started = performance.now();
  let whileRunning = 0;
  let whileLaunching = 0;
  const storm = async (service: string, kills: number) => {
    for (let k = 0; k < kills && problems.length === 0; k++) {
      const now = broker.status(service);
      if (rand(2) === 0 && now.state !== 'running') {
        // Kill the helper while it launches, before its hello: calls waiting for it fail with ERR_LAUNCH_FAILED.
        const exit = kit.nextExit(service);
        if (now.state === 'launching' && now.pid !== null) {
          broker.kill(service);
        } else {
          // The load's next call launches one: kill it the moment it is spawned.
          await new Promise<void>((resolve) => {
            const sub = broker.on('launch', (name) => {
              if (name !== service) return;
              sub.dispose();
              broker.kill(service);
              resolve();
            });
          });
        }
        const info = await exit;
        if (info.signal !== 'SIGKILL') problems.push(`${service} kill ${k + 1} (launching): exit ${JSON.stringify(info)}`);
        whileLaunching++;
      } else {
        await kit.waitFor(service, 'running');
        await successes(service, rand(12)); // a random number of answered calls into this helper's life
        const info = await kit.crash(service);
        if (info.signal !== 'SIGKILL') problems.push(`${service} kill ${k + 1} (running): exit ${JSON.stringify(info)}`);
        whileRunning++;
      }
    }
  };
  await Promise.all(SERVICES.map((service) => storm(service, KILLS / SERVICES.length)));
  const stormSeconds = (performance.now() - started) / 1000;

  // ---- drain: stop issuing, let every call settle (each has a deadline, so this is bounded).
  stop = true;
  await Promise.all(loops);
  t.same(problems, [], 'every call got its own answer or ERR_INTERRUPTED/ERR_LAUNCH_FAILED, within its deadline');
  t.equal(inFlight.size, 0, 'no call left pending');
  t.equal(outcomes.get('ERR_DEADLINE') ?? 0, 0, 'no call had to wait for its deadline');
  t.ok((outcomes.get('ok') ?? 0) > KILLS, 'calls kept succeeding between kills');
  t.ok((outcomes.get('ERR_INTERRUPTED') ?? 0) > 0, 'kills while running interrupted calls in flight');
  t.equal(whileRunning + whileLaunching, KILLS, `${KILLS} kills`);
  for (const service of SERVICES) {
    const status = broker.status(service);
    t.equal(status.crashes, KILLS / SERVICES.length, `${service}: the broker counted exactly ${KILLS / SERVICES.length} crashes`);
    t.equal(status.launches, launchedBy.get(service)!.length, `${service}: every launch was reported`);
    t.equal(status.inFlight, 0, `${service}: the broker holds no call`);
    t.not(status.state, 'failed', `${service}: the crash-loop breaker did not trip (maxRestarts 1000)`);
  }
  t.comment(`storm: ${KILLS} kills (${whileRunning} while running, ${whileLaunching} while launching) in ${stormSeconds.toFixed(1)} s; ${issued} calls: ${JSON.stringify(Object.fromEntries(outcomes))}; slowest call ${maxLatency.toFixed(0)} ms; ${launched.length} launches`);

  // ---- teardown: no orphans, fds and memory back to baseline.
  await kit.close();
  closed = true;
  const survivors: number[] = [];
  for (const pid of launched) if (!(await gone(pid, 5000))) survivors.push(pid);
  t.same(survivors, [], `all ${launched.length} helper pids are gone`);
  const groups: number[] = [];
  for (const pid of launched) if (!(await gone(-pid, 2000))) groups.push(pid);
  t.same(groups, [], 'and so are their process groups');

  let fds = fdCount();
  for (let i = 0; i < 100 && fds > baselineFds + 2; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    fds = fdCount();
  }
  t.ok(fds <= baselineFds + 2, `fds back to baseline: ${baselineFds} before, ${fds} after close`);
  const heapGrowth = (heapAfterGc() - baselineHeap) / MiB;
  t.ok(heapGrowth < 8, `heapUsed after GC within 8 MiB of baseline (+${heapGrowth.toFixed(2)} MiB)`);
  t.comment(`after close: fds ${baselineFds} → ${fds}; heapUsed +${heapGrowth.toFixed(2)} MiB; rss ${(process.memoryUsage().rss / MiB).toFixed(0)} MiB`);
  t.same(uncaught, [], 'no uncaught exception');
});
