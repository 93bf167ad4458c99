// Issue 14, items 4–6: the relaunch backoff (a small class with an injected
// clock, used by keepAlive and start failures alike), honest reasons (the thrown
// line in ERR_LAUNCH_FAILED and in the failed message, an inner SIGKILL reported
// as SIGKILL, a remedy that fits the mode), and prewarm without races.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { isBulkheadError, type ServiceManifest } from 'bulkhead';
import { ManualClock, startBroker } from 'bulkhead/testing';
import { Backoff } from '../lib/broker/backoff.js';
import { thrownHeadline } from '../lib/broker/exit-report.js';
import type { ServiceStatus } from '../lib/broker/service-supervisor.js';
import { formatState } from '../lib/cli/format.js';
import { FIXTURES, recordUncaught, rejection } from './helpers.js';

const uncaught = recordUncaught();

const throwing = (name: string, launch: ServiceManifest['launch'] = {}): ServiceManifest => ({
  name, entry: './supervision/throws-at-start.js', protocol: 'com.test.supervision', launch: { throttleMs: 0, ...launch },
});

t.test('Backoff (in memory): initial delay, ×1.6 growth with ±20% jitter, a cap, reset; waits on the injected clock', async (t) => {
  const exact = new Backoff(new ManualClock(0), { initialMs: 100, maxMs: 1000, random: () => 0.5 });
  t.same([1, 2, 3, 4, 5, 6, 7].map(() => exact.nextDelay()), [100, 160, 256, 410, 655, 1000, 1000], 'no jitter at random 0.5: 100 × 1.6^n, capped at maxMs');
  exact.reset();
  t.equal(exact.nextDelay(), 100, 'reset goes back to the initial delay');
  const low = new Backoff(new ManualClock(0), { initialMs: 100, random: () => 0 });
  const high = new Backoff(new ManualClock(0), { initialMs: 100, random: () => 0.999999 });
  t.same([low.nextDelay(), low.nextDelay()], [80, 128], 'jitter −20%');
  t.same([high.nextDelay(), high.nextDelay()], [120, 192], 'jitter +20%');

  const clock = new ManualClock(1000);
  const backoff = new Backoff(clock, { initialMs: 100, random: () => 0.5 });
  let fired = 0;
  t.equal(backoff.schedule(() => fired++), 100);
  t.equal(backoff.nextAttemptAt, 1100, 'the next attempt time is known');
  await clock.advance(99);
  t.equal(fired, 0, 'not before its time');
  await clock.advance(1);
  t.equal(fired, 1, 'fires on time');
  t.equal(backoff.nextAttemptAt, null);
  backoff.schedule(() => fired++);
  backoff.cancel();
  await clock.advance(10_000);
  t.equal(fired, 1, 'a cancelled wait never fires');
  t.equal(clock.pending, 0, 'and leaves no timer');
});

t.test('ERR_LAUNCH_FAILED carries the line the entry threw, not loader frames or the Node.js version', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [throwing('throws')] });
  t.teardown(() => kit.close());
  const err = await rejection(kit.broker.connect('throws').call('echo', { text: 'a' }));
  t.equal(err.code, 'ERR_LAUNCH_FAILED');
  t.match(err.message, 'Error: API_KEY is not set', `the message says what went wrong: ${err.message}`);
  t.notMatch(err.message, /Node\.js v\d/, 'no Node.js version line');
  t.equal(err.data['thrown'], 'Error: API_KEY is not set');
  t.equal(kit.broker.status('throws').lastExit?.thrown, 'Error: API_KEY is not set');
});

t.test('thrownHeadline (in memory): the header before the first stack frame', async (t) => {
  const printed = ['file:///srv/app/entry.js:5', "  if (key === undefined) throw new Error('API_KEY is not set');", '                               ^', '', 'Error: API_KEY is not set', '    at config (file:///srv/app/entry.js:5:33)', '    at ModuleJob.run (node:internal/modules/esm/module_job:234:25)', '', 'Node.js v20.20.0'];
  t.equal(thrownHeadline(printed), 'Error: API_KEY is not set');
  t.equal(thrownHeadline(['TypeError [ERR_X]: bad thing', '    at x (y.js:1:1)']), 'TypeError [ERR_X]: bad thing');
  t.equal(thrownHeadline(['plain output', 'no frames']), null, 'no stack frame, no headline');
  t.equal(thrownHeadline(['', '#', '# Fatal process out of memory: Failed to reserve virtual memory for CodeRange', '#', '----- Native stack trace -----', ' 1: 0xe1 node::DumpNativeBacktrace(_IO_FILE*) [node]']), 'Fatal process out of memory: Failed to reserve virtual memory for CodeRange', 'a fatal V8 error: its line, not the native frames');
});

t.test('keepAlive retries an entry that throws at start, under the backoff, until the breaker marks it failed', async (t) => {
  const kit = await startBroker({ root: FIXTURES });
  t.teardown(() => kit.close());
  const waits: Array<number | null> = [];
  kit.broker.on('state', (service, state) => {
    if (service !== 'boot' || state !== 'throttled') return;
    const at = kit.broker.status('boot').nextAttemptAt;
    waits.push(at === null ? null : at - Date.now());
  });
  kit.broker.register(throwing('boot', { keepAlive: true, throttleMs: 20, maxRestarts: 4 }));
  await kit.waitFor('boot', 'failed');
  const status = kit.broker.status('boot');
  t.equal(status.launches, 4, 'launched until the breaker tripped (maxRestarts 4)');
  t.equal(status.crashes, 4);
  t.match(status.failure?.message ?? '', 'Error: API_KEY is not set', 'the failed message carries the thrown line');
  t.match(status.failure?.message ?? '', 'broker.reset("boot")', 'embedded remedy: broker.reset()');
  // The first crash relaunches throttleMs after the last launch (long past); the next ones wait 20·1.6ⁿ ±20% after their exit.
  t.equal(waits.length, 2, `two waits in state throttled (${JSON.stringify(waits)} ms ahead)`);
  t.ok(waits.every((ms) => ms !== null && ms > 0), 'status showed when the next attempt is due');
  t.ok(waits[1]! > waits[0]!, 'and the wait grew');
});

t.test('daemon mode: the failed message names `bulkhead kickstart` as the remedy', async (t) => {
  const kit = await startBroker({ root: FIXTURES, mode: 'daemon' });
  t.teardown(() => kit.close());
  kit.broker.register(throwing('boot', { keepAlive: true, maxRestarts: 2 }));
  await kit.waitFor('boot', 'failed');
  t.match(kit.broker.status('boot').failure?.message ?? '', '`bulkhead kickstart boot`');
});

/** Descendants of `pid` (children first), from /proc. */
function descendants(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const child of parents.get(p) ?? []) {
      out.push(child);
      walk(child);
    }
  };
  walk(pid);
  return out;
}

t.test('sandboxed: SIGKILL of the node inside the sandbox is reported as SIGKILL, not exit 137', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [{ name: 'boxed', entry: './supervision/spin-service.js', protocol: 'com.test.supervision', sandbox: 'pure-compute', launch: { throttleMs: 0 } }] });
  t.teardown(() => kit.close());
  const conn = kit.broker.connect('boxed');
  await conn.call('echo', { text: 'a' });
  const outer = kit.broker.status('boxed').pid!;
  const inner = descendants(outer).filter((pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'node').pop();
  t.ok(inner !== undefined && inner !== outer, `positive control: a node runs inside the wrappers (outer ${outer}, inner ${inner})`);
  const exit = kit.nextExit('boxed');
  let seen: { code: number | null; signal: string | null } | undefined;
  const pending = conn.call('slow', { ms: 60_000 }).catch((err: unknown) => {
    const last = kit.broker.status('boxed').lastExit;
    seen = { code: last?.code ?? null, signal: last?.signal ?? null };
    return err;
  });
  await conn.call('echo', { text: 'b' }); // the slow call is in the helper
  process.kill(inner!, 'SIGKILL');
  const info = await exit;
  t.equal(info.signal, 'SIGKILL', 'reported as SIGKILL');
  t.equal(info.code, null, 'not as an exit code');
  const err = await pending;
  t.ok(isBulkheadError(err) && err.code === 'ERR_INTERRUPTED' && err.data['signal'] === 'SIGKILL', 'the interrupted call says SIGKILL');
  t.same(seen, { code: null, signal: 'SIGKILL' }, 'its .catch already sees the exit in status()');
});

t.test('prewarm: kill/relaunch cycles right after each relaunch never fail a launch', async (t) => {
  const cycles = 40;
  const kit = await startBroker({ root: FIXTURES, services: [{ name: 'warm', entry: './supervision/spin-service.js', protocol: 'com.test.supervision', launch: { prewarm: true, throttleMs: 0, maxRestarts: 1000 } }] });
  t.teardown(() => kit.close());
  const conn = kit.broker.connect('warm');
  const failures: string[] = [];
  for (let i = 0; i < cycles; i++) {
    try {
      await conn.call('echo', { text: String(i) });
    } catch (err) {
      failures.push(isBulkheadError(err) ? `${err.code}: ${err.message}` : String(err));
    }
    // Kill at once, while the next spare may still be starting or warming.
    if (kit.broker.status('warm').pid !== null) await kit.crash('warm');
  }
  t.same(failures, [], `${cycles} cycles, zero failed launches`);
  t.equal(kit.broker.status('warm').crashes, cycles, 'exactly one crash per kill: no launch failure counted');
  t.comment(`${cycles} kill/relaunch cycles: ${failures.length} launch failures`);
});

t.test('bulkhead ps (in memory): the state cell shows an unresponsive loop and the next attempt', async (t) => {
  const base = { state: 'running', unresponsiveMs: 0, nextAttemptAt: null } as unknown as ServiceStatus;
  t.equal(formatState(base, 0), 'running');
  t.equal(formatState({ ...base, unresponsiveMs: 3200 }, 0), 'running, unresponsive 3s');
  t.equal(formatState({ ...base, state: 'throttled', unresponsiveMs: null, nextAttemptAt: 1600 }, 0), 'throttled, retry in 1s');
});

t.test('no uncaught exception', async (t) => {
  t.same(uncaught, []);
});
