// launch.prewarm, the takeover (lib/broker/spare-takeover.ts): when the serving helper's channel
// closes without the broker asking, the broker makes its death certain and, within the crash budget,
// the spare (activated early) serves new calls before the old helper's exit is reported. The calls in
// flight on the old helper still fail with its exit's code and signal, the exit is reported before the
// spare's launch, a helper that hangs up and keeps running is killed, and a service past its crash
// budget is not served by the spare. A SIGKILL the broker sends itself (broker.kill, the watchdog) takes
// over at once, within the kill. Ordering is asserted on events, never on timings.
import t, { type Test } from 'tap';
import { isBulkheadError, type BulkheadError } from 'bulkhead';
import { startBroker, type TestBroker } from 'bulkhead/testing';
import { alive, FIXTURES, nextSpare, rejection } from './helpers.js';

type Sandbox = 'none' | 'pure-compute';

/** The warm spare waiting now, or the next one (after a launch took the last). */
function warmSpare(kit: TestBroker, name: string): Promise<number> {
  const pid = kit.broker.status(name).sparePid;
  return pid === null ? nextSpare(kit, name) : Promise.resolve(pid);
}

async function start(t: Test, name: string, sandbox: Sandbox, launch: Record<string, unknown> = {}): Promise<TestBroker> {
  const kit = await startBroker({
    root: FIXTURES,
    services: [{ name, entry: './takeover-service.js', protocol: 'com.test.takeover', ...(sandbox === 'none' ? {} : { sandbox }), launch: { prewarm: true, throttleMs: 0, ...launch } }],
  });
  t.teardown(() => kit.close());
  return kit;
}

/** Records the broker's takeover, exit and launch events of `name`, in order; `onTakeover` runs inside the takeover listener. */
function recordOrder(kit: TestBroker, name: string, order: string[], onTakeover?: (pid: number) => void): void {
  kit.broker.on('takeover', (service, pid, replaced) => {
    if (service !== name) return;
    order.push(`takeover ${pid} from ${replaced}`);
    onTakeover?.(pid);
  });
  kit.broker.on('exit', (service, info) => service === name && order.push(`exit ${info.signal ?? info.code}`));
  kit.broker.on('launch', (service, pid) => service === name && order.push(`launch ${pid}`));
}

const codeAndSignal = (err: BulkheadError): unknown => ({ code: err.code, exitCode: err.data?.['exitCode'], signal: err.data?.['signal'] });

t.test('after SIGKILL, a new call is answered by the spare before the old helper\'s exit is reported; the calls in flight fail with its signal', async (t) => {
  const kit = await start(t, 'tk', 'none');
  const conn = kit.broker.connect('tk');
  const old = (await conn.call('whoami', {})).pid;
  const spare = await warmSpare(kit, 'tk');
  // Holds the old helper's stdout open: the broker reports its exit once its stdio drained (≤ 200 ms),
  // here once the test has the spare's reply and lets the holder go.
  const holder = (await conn.call('holdStdout', {})).pid;
  t.teardown(() => alive(holder) && process.kill(holder, 'SIGKILL'));
  const inFlight = [conn.call('hang', {}), conn.call('hang', {}), conn.call('hang', {})].map((call) => rejection(call));

  const order: string[] = [];
  let answered: Promise<number> | undefined;
  recordOrder(kit, 'tk', order, () => {
    answered = conn.call('whoami', {}).then(({ pid }) => {
      order.push(`reply ${pid}`);
      process.kill(holder, 'SIGKILL');
      return pid;
    });
  });
  const exit = kit.nextExit('tk');
  t.equal(kit.broker.kill('tk', 'SIGKILL'), old);
  const info = await exit;
  t.equal(await answered, spare, 'the call made at the takeover was answered by the spare');
  t.same(order, [`takeover ${spare} from ${old}`, `reply ${spare}`, 'exit SIGKILL', `launch ${spare}`], 'takeover, the spare\'s reply, the old exit, the spare\'s launch');
  t.equal(info.signal, 'SIGKILL');
  for (const err of await Promise.all(inFlight)) t.same(codeAndSignal(err), { code: 'ERR_INTERRUPTED', exitCode: null, signal: 'SIGKILL' }, 'a call in flight on the old helper fails with its exit\'s signal');
  const status = kit.status('tk');
  t.same({ pid: status.pid, state: status.state, crashes: status.crashes, launches: status.launches }, { pid: spare, state: 'running', crashes: 1, launches: 2 });
  t.equal(status.lastExit?.signal, 'SIGKILL');
});

/** broker.kill(SIGKILL), then a call made synchronously after it returns; the order of takeover, exit and that call's outcome. */
async function callRightAfterKill(kit: TestBroker, name: string): Promise<{ order: string[]; old: number; inFlight: BulkheadError; outcome: number | BulkheadError }> {
  const conn = kit.broker.connect(name);
  const old = (await conn.call('whoami', {})).pid;
  const inFlight = rejection(conn.call('hang', {}));
  const order: string[] = [];
  recordOrder(kit, name, order);
  const exit = kit.nextExit(name);
  kit.broker.kill(name, 'SIGKILL');
  const next = conn.call('whoami', {}).then(({ pid }) => {
    order.push(`reply ${pid}`);
    return pid;
  }, (err: unknown) => {
    order.push(`rejected ${(err as BulkheadError).code}`);
    return err as BulkheadError;
  });
  await exit;
  return { order, old, inFlight: await inFlight, outcome: await next };
}

t.test('the broker\'s own SIGKILL hands the calls made right after it to the spare at once; without prewarm they wait for the exit', async (t) => {
  const kit = await start(t, 'tk', 'none');
  await kit.broker.connect('tk').call('whoami', {});
  const spare = await warmSpare(kit, 'tk');
  const { order, old, inFlight, outcome } = await callRightAfterKill(kit, 'tk');
  t.equal(outcome, spare, 'the call made right after broker.kill was answered by the spare, not ERR_INTERRUPTED');
  t.equal(order[0], `takeover ${spare} from ${old}`, 'the takeover came first, before the old helper\'s exit');
  t.ok(order.indexOf('exit SIGKILL') > 0, `then the old exit (${order.join(', ')})`);
  t.same(codeAndSignal(inFlight), { code: 'ERR_INTERRUPTED', exitCode: null, signal: 'SIGKILL' }, 'the call in flight at the kill fails with its signal');
  const status = kit.status('tk');
  t.same({ pid: status.pid, crashes: status.crashes, launches: status.launches, reason: status.lastExit?.reason }, { pid: spare, crashes: 1, launches: 2, reason: undefined }, 'counted as a crash once; the exit\'s reason is not overwritten');

  // Positive control: without prewarm the same call goes to the dying helper and fails, or is served only after its exit.
  const plain = await startBroker({ root: FIXTURES, services: [{ name: 'tk', entry: './takeover-service.js', protocol: 'com.test.takeover', launch: { throttleMs: 0 } }] });
  t.teardown(() => plain.close());
  const control = await callRightAfterKill(plain, 'tk');
  const exitAt = control.order.indexOf('exit SIGKILL');
  t.ok(typeof control.outcome !== 'number' ? control.outcome.code === 'ERR_INTERRUPTED' : control.order.indexOf(`reply ${control.outcome}`) > exitAt,
    `without prewarm: ERR_INTERRUPTED or a reply after the exit (${control.order.join(', ')})`);
  t.notOk(control.order.some((entry) => entry.startsWith('takeover')), 'no takeover without a spare');
});

t.test('the watchdog\'s kill of a hung helper hands new calls to the spare at once; the exit\'s reason stays "watchdog"', async (t) => {
  const kit = await start(t, 'tk', 'none', { watchdogMs: 1000 });
  const conn = kit.broker.connect('tk');
  const old = (await conn.call('whoami', {})).pid;
  const spare = await warmSpare(kit, 'tk');
  // A process outside the helper's tree holds its channel open: no EOF when it dies, so only the kill itself can
  // start the takeover before the exit (else the channel closes only when the exit is handled, after the reaping).
  const holder = (await conn.call('holdChannel', {})).pid;
  t.teardown(() => alive(holder) && process.kill(holder, 'SIGKILL'));
  const order: string[] = [];
  let answered: Promise<number> | undefined;
  let unreaped: boolean | undefined;
  recordOrder(kit, 'tk', order, () => {
    // Within the watchdog's kill the old process cannot have been reaped yet (that needs the event loop).
    unreaped = alive(old);
    answered = conn.call('whoami', {}).then(({ pid }) => pid);
  });
  const exit = kit.nextExit('tk');
  const spinning = rejection(conn.call('spin', {}));
  const info = await exit;
  t.equal(order[0], `takeover ${spare} from ${old}`, 'the takeover came before the old exit');
  t.equal(unreaped, true, 'at the kill itself: the old process was not reaped yet');
  t.equal(info.reason, 'watchdog', 'the exit keeps the watchdog\'s reason');
  t.equal((await spinning).code, 'ERR_INTERRUPTED');
  t.equal(await answered, spare, 'the call made at the takeover was answered by the spare');
  t.same({ pid: kit.status('tk').pid, crashes: kit.status('tk').crashes }, { pid: spare, crashes: 1 });
});

for (const sandbox of ['none', 'pure-compute'] as const) {
  t.test(`${sandbox}: the spare takes the calls made at the takeover; an exit code of the helper's own is kept`, async (t) => {
    const kit = await start(t, 'tk', sandbox);
    const conn = kit.broker.connect('tk');
    await conn.call('whoami', {});
    const old = kit.status('tk').pid;
    const spare = await warmSpare(kit, 'tk');
    const order: string[] = [];
    let answered: Promise<unknown> | undefined;
    recordOrder(kit, 'tk', order, () => {
      order.push('call made');
      answered = conn.call('whoami', {});
    });
    const exit = kit.nextExit('tk');
    // The helper exits on its own with code 3 (the call that asks it is in flight when it goes).
    const err = await rejection(conn.call('exitWith', { code: 3 }));
    const info = await exit;
    t.same(order.slice(0, 3), [`takeover ${spare} from ${old}`, 'call made', 'exit 3'], 'takeover, then the call, then the old exit (with its own code, not the broker\'s SIGKILL)');
    t.same({ code: info.code, signal: info.signal }, { code: 3, signal: null });
    t.notMatch(info.reason ?? '', /still running/, 'a dying helper is not killed again (nothing to mask its exit)');
    t.same(codeAndSignal(err), { code: 'ERR_INTERRUPTED', exitCode: 3, signal: null }, 'the call in flight carries the exit code');
    await answered;
    t.equal(kit.status('tk').pid, spare, 'the spare serves');
    t.equal(order.at(-1), `launch ${spare}`, 'its launch is reported after the old exit');
  });

  t.test(`${sandbox}: a helper that closes fd 3 and keeps running is killed and never answers again; the spare serves`, async (t) => {
    const kit = await start(t, 'tk', sandbox);
    const conn = kit.broker.connect('tk');
    const first = await conn.call('whoami', {});
    const old = kit.status('tk').pid!;
    t.ok(first.pid > 0 && alive(old), 'positive control: the helper was alive and answering');
    const spare = await warmSpare(kit, 'tk');
    const order: string[] = [];
    let answered: Promise<unknown> | undefined;
    recordOrder(kit, 'tk', order, () => {
      answered = conn.call('whoami', {});
    });
    const exit = kit.nextExit('tk');
    const err = await rejection(conn.call('hangUp', {}));
    const info = await exit;
    t.equal(order[0], `takeover ${spare} from ${old}`);
    t.same({ signal: info.signal, requested: info.requested }, { signal: 'SIGKILL', requested: false }, 'the broker killed it');
    t.match(info.reason, /channel \(fd 3\) closed while it was still running/, 'and says why');
    t.same(codeAndSignal(err), { code: 'ERR_INTERRUPTED', exitCode: null, signal: 'SIGKILL' });
    t.notOk(alive(old), 'the old helper is gone');
    await answered;
    const again = await conn.call('whoami', {});
    t.equal(kit.status('tk').pid, spare, 'the spare answers from now on');
    if (sandbox === 'none') t.equal(again.pid, spare);
  });
}

t.test('a service past its crash budget is not served by the spare', async (t) => {
  const kit = await start(t, 'tk', 'none', { maxRestarts: 2, restartWindowMs: 600_000 });
  const conn = kit.broker.connect('tk');
  const takeovers: number[] = [];
  kit.broker.on('takeover', (service, pid) => service === 'tk' && takeovers.push(pid));

  // Positive control: the first crash is within the budget, and the spare takes over.
  await conn.call('whoami', {});
  const spare1 = await warmSpare(kit, 'tk');
  await kit.crash('tk');
  t.same(takeovers, [spare1], 'the first crash: the spare took over');
  t.equal(kit.status('tk').pid, spare1);
  const spare2 = await warmSpare(kit, 'tk');

  // The second crash trips the breaker (2 in the window): no takeover, the service fails.
  const failed = kit.waitFor('tk', 'failed');
  const inFlight = rejection(conn.call('hang', {}));
  await kit.crash('tk');
  await failed;
  t.same(takeovers, [spare1], 'no second takeover');
  t.equal((await inFlight).code, 'ERR_INTERRUPTED');
  const err = await rejection(conn.call('whoami', {}));
  t.equal(err.code, 'ERR_INVALIDATED', 'calls fail with the breaker\'s error');
  t.ok(isBulkheadError(err) && /stopped unexpectedly 2 times/.test(err.message), err.message);
  const status = kit.status('tk');
  t.same({ state: status.state, pid: status.pid, crashes: status.crashes, launches: status.launches }, { state: 'failed', pid: null, crashes: 2, launches: 2 }, 'the spare never became the service\'s helper');
  t.not(status.pid, spare2);
});

t.test('past the crash budget, the broker\'s own SIGKILL does not hand the service to the spare', async (t) => {
  const kit = await start(t, 'tk', 'none', { maxRestarts: 2, restartWindowMs: 600_000 });
  const conn = kit.broker.connect('tk');
  const takeovers: number[] = [];
  kit.broker.on('takeover', (service, pid) => service === 'tk' && takeovers.push(pid));
  await conn.call('whoami', {});
  // Positive control: the first kill is within the budget, and the spare takes over within broker.kill.
  const spare1 = await warmSpare(kit, 'tk');
  const exit1 = kit.nextExit('tk');
  kit.broker.kill('tk', 'SIGKILL');
  t.same(takeovers, [spare1], 'the first kill: the spare took over at once');
  await exit1;
  const spare2 = await warmSpare(kit, 'tk');
  const failed = kit.waitFor('tk', 'failed');
  kit.broker.kill('tk', 'SIGKILL');
  await failed;
  t.same(takeovers, [spare1], 'the second kill trips the breaker: no second takeover');
  t.equal((await rejection(conn.call('whoami', {}))).code, 'ERR_INVALIDATED');
  const status = kit.status('tk');
  t.same({ state: status.state, crashes: status.crashes, launches: status.launches }, { state: 'failed', crashes: 2, launches: 2 }, 'counted once per kill');
  t.not(status.pid, spare2);
});

t.test('a relaunch the pacing makes wait is not taken over: the spare waits for the exit and the throttle', async (t) => {
  // throttleMs: the next launch may come no sooner than this after the last one; the helper dies right after its launch.
  const kit = await start(t, 'tk', 'none', { throttleMs: 600_000 });
  const conn = kit.broker.connect('tk');
  const takeovers: number[] = [];
  kit.broker.on('takeover', (service, pid) => service === 'tk' && takeovers.push(pid));
  await conn.call('whoami', {});
  await warmSpare(kit, 'tk');
  await kit.crash('tk');
  t.same(takeovers, [], 'no takeover');
  t.same({ state: kit.status('tk').state, pid: kit.status('tk').pid, crashes: kit.status('tk').crashes }, { state: 'idle', pid: null, crashes: 1 }, 'the crash was counted; nothing serves');
  const throttled = kit.waitFor('tk', 'throttled');
  const waiting = rejection(conn.call('whoami', {}));
  await throttled;
  t.ok((kit.broker.status('tk').nextAttemptAt ?? 0) > Date.now(), 'the next launch waits for the throttle');
  await kit.close();
  t.equal((await waiting).code, 'ERR_CLOSED', 'the waiting call ends with the broker');
});
