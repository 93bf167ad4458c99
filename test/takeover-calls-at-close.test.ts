// After a prewarmed spare took over, the calls in flight on the old helper fail at its channel's close, when
// the kernel already shows how its node ended (lib/broker/exit-at-close.ts), with the code, signal, reason and
// stderr its exit gives: unsandboxed and under pure-compute (node inside bubblewrap, whose exit relays node's).
// To order on events and not on timings, the test holds the old helper's stdout pipe open (from this process,
// through /proc): the broker reports an exit only once the helper's stdio closed or 200 ms passed, so the exit
// comes well after the channel's close. Controls: the same crash without prewarm (no takeover) fails the calls
// only after the exit is reported, and an exit with code 0 (which the kernel also shows to readers without
// ptrace access) is never read at the close.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { BulkheadError } from 'bulkhead';
import { startBroker, type TestBroker } from 'bulkhead/testing';
import { helperNode } from '../lib/broker/certain-death.js';
import { childEndOf, endAtClose, finalExitStatus } from '../lib/broker/exit-at-close.js';
import { FIXTURES, nextSpare, rejection } from './helpers.js';

type Sandbox = 'none' | 'pure-compute';

/** A /proc/<pid>/stat line with this state, flags (field 9) and exit_code (field 52); the name has spaces and parentheses. */
function stat(state: string, flags: number, exitCode: number): string {
  const fields = [state, ...Array.from({ length: 48 }, (_, i) => (i === 5 ? String(flags) : '0')), String(exitCode)];
  return `4242 (a (weird) name) ${fields.join(' ')}\n`;
}

t.test('in memory: a final status only from a zombie or an exiting task, never 0 or a stop', async (t) => {
  t.equal(finalExitStatus(stat('Z', 0, 9)), 9, 'a zombie killed by SIGKILL');
  t.equal(finalExitStatus(stat('R', 0x4 | 0x400000, 7 << 8)), 7 << 8, 'running in do_exit (PF_EXITING): exit 7');
  t.equal(finalExitStatus(stat('D', 0x4, 9)), 9, 'exiting, in uninterruptible sleep');
  t.equal(finalExitStatus(stat('R', 0x400000, 9)), undefined, 'a live task (no PF_EXITING): not final, whatever the field says');
  t.equal(finalExitStatus(stat('S', 0, 0)), undefined);
  t.equal(finalExitStatus(stat('Z', 0, 0)), undefined, '0: exit 0, or a reader without ptrace access; the exit tells');
  t.equal(finalExitStatus(stat('t', 0x4, (19 << 8) | 0x7f)), undefined, 'a traced stop');
  t.equal(finalExitStatus(stat('Z', 0, (5 << 8) | 0x7f)), undefined, 'a stop\'s status');
  t.equal(finalExitStatus('4242 (short) Z 1 2 3\n'), undefined, 'a kernel without field 52');
  t.equal(finalExitStatus(''), undefined);

  t.same(childEndOf(7 << 8, false), { code: 7, signal: null });
  t.same(childEndOf(9, false), { code: null, signal: 'SIGKILL' });
  t.same(childEndOf(11 | 0x80, false), { code: null, signal: 'SIGSEGV' }, 'the core-dump bit is not part of the signal');
  t.same(childEndOf(9, true), { code: 137, signal: null }, 'under bubblewrap: its exit code 128 + N');
  t.same(childEndOf(3 << 8, true), { code: 3, signal: null });
  t.equal(childEndOf(100, false), undefined, 'a signal number node does not name');
});

/** Spawns a node with a socket on fd 3 that runs `script`; resolves with what endAtClose read when that socket closed. */
async function readAtClose(script: string, kill: boolean): Promise<unknown> {
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
  const channel = child.stdio[3] as Socket;
  const ready = new Promise((resolve) => channel.once('data', resolve));
  const read = new Promise((resolve) => channel.on('end', () => resolve(endAtClose(child.pid!, process.execPath))));
  channel.resume();
  await ready;
  if (kill) child.kill('SIGKILL');
  const end = await read;
  await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('exit', resolve)));
  return end;
}

t.test('the kernel: at the channel\'s EOF a dying node\'s status is final (exit code; SIGKILL)', async (t) => {
  const writeThen = (then: string): string => `require('node:fs').writeSync(3, 'up'); ${then}`;
  t.same(await readAtClose(writeThen('process.exit(7)'), false), { code: 7, signal: null }, 'process.exit(7)');
  t.same(await readAtClose(writeThen('setInterval(() => {}, 1000)'), true), { code: null, signal: 'SIGKILL' }, 'SIGKILL');
  // Control: a node that closed fd 3 and lives on is not read as ended.
  const live = spawn(process.execPath, ['-e', "require('node:fs').closeSync(3); setInterval(() => {}, 1000)"], { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
  t.teardown(() => live.kill('SIGKILL'));
  await new Promise((resolve) => (live.stdio[3] as Socket).resume().on('end', resolve));
  t.equal(endAtClose(live.pid!, process.execPath), undefined, 'alive after closing its channel: undefined (its exit will tell)');
});

async function start(t: Test, sandbox: Sandbox, prewarm: boolean): Promise<TestBroker> {
  const kit = await startBroker({
    root: FIXTURES,
    services: [{ name: 'tk', entry: './takeover-service.js', protocol: 'com.test.takeover', ...(sandbox === 'none' ? {} : { sandbox }), launch: { prewarm, throttleMs: 0, maxRestarts: 100 } }],
  });
  t.teardown(() => kit.close());
  return kit;
}

/** syscall(2) through koffi (a dependency of bulkhead), for pidfd_open and pidfd_getfd. */
const syscall = ((): ((...args: number[]) => number) => {
  const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
  const libc = koffi.load('libc.so.6');
  const call = libc.func('long syscall(long number, long a, long b, long c)') as (n: number, a: number, b: number, c: number) => number | bigint;
  return (n, a = 0, b = 0, c = 0) => Number(call(n, a, b, c));
})();
const SYS_PIDFD_OPEN = 434;
const SYS_PIDFD_GETFD = 438;

/**
 * Takes a copy of the helper's stdout (its fd 1, a socket) into this process (pidfd_getfd, Linux ≥ 5.6): the
 * broker sees no end of that stream, so it reports the exit only after its 200 ms stdio wait. Returns a release.
 */
function holdStdout(t: Test, pid: number): () => void {
  const pidfd = syscall(SYS_PIDFD_OPEN, pid, 0, 0);
  const fd = pidfd < 0 ? -1 : syscall(SYS_PIDFD_GETFD, pidfd, 1, 0);
  if (pidfd >= 0) closeSync(pidfd);
  if (fd < 0) throw new Error(`pidfd_getfd of ${pid}'s fd 1 failed`);
  let open = true;
  const release = (): void => {
    if (open) closeSync(fd);
    open = false;
  };
  t.teardown(release);
  return release;
}

interface Crash {
  /** Broker events and call outcomes, in order. */
  order: string[];
  errors: BulkheadError[];
  old: number;
  /** The warm spare before the crash, or null without prewarm. */
  spare: number | null;
}

/**
 * Runs `calls` on the serving helper of `tk`, then `end` (which makes it die), and records the takeover, the
 * exit, the spare's launch and each call's rejection in order. The exit is held back by the stdout hold.
 */
async function crashWithCalls(t: Test, kit: TestBroker, prewarm: boolean, calls: Array<{ method: 'hang' | 'exitWith' | 'throwLater'; params: Record<string, unknown> }>, end?: (node: number) => void): Promise<Crash> {
  const conn = kit.broker.connect('tk');
  await conn.call('whoami', {});
  const old = kit.status('tk').pid!;
  const spare = prewarm ? kit.broker.status('tk').sparePid ?? await nextSpare(kit, 'tk') : null;
  const node = helperNode(old, process.execPath)!;
  t.ok(node > 0, `found the helper's node (${node}; spawned ${old})`);
  const release = holdStdout(t, old);
  const order: string[] = [];
  kit.broker.on('takeover', (service, pid, replaced) => service === 'tk' && order.push(`takeover ${pid} from ${replaced}`));
  kit.broker.on('exit', (service, info) => service === 'tk' && order.push(`exit ${info.signal ?? info.code}`));
  kit.broker.on('launch', (service, pid) => service === 'tk' && order.push(`launch ${pid}`));
  const exit = kit.nextExit('tk');
  const settled = calls.map(({ method, params }) => rejection(conn.call(method, params)).then((err) => {
    order.push(`rejected ${err.code}`);
    return err;
  }));
  end?.(node);
  const errors = await Promise.all(settled);
  release();
  await exit;
  return { order, errors, old, spare };
}

const details = (err: BulkheadError): unknown => ({ code: err.code, exitCode: err.data?.['exitCode'], signal: err.data?.['signal'] });

/**
 * When the broker reads the channel's close and the exit in the same turn of its event loop (it was busy, e.g.
 * with the helper's stderr, while both happened), the exit is handled first and tells the calls at once: no time
 * is lost, but the order differs. Under bubblewrap also: bubblewrap's init reaps node at once, and when the broker
 * reads the close after that and before the init relayed the end, nothing shows it yet and the calls wait for the
 * exit (with the same details). So the crash is repeated until the close path is seen (each attempt checked either
 * way), at most `MAX_ATTEMPTS` times.
 */
const MAX_ATTEMPTS = 12;

/** True when the calls failed before the old exit was reported. */
const failedAtClose = (order: readonly string[], exit: string): boolean => order.indexOf('rejected ERR_INTERRUPTED') >= 0 && order.indexOf('rejected ERR_INTERRUPTED') < order.indexOf(exit);

/** Runs `attempt` until it reports a failure at the close. */
async function untilAtClose(t: Test, attempt: (n: number) => Promise<boolean>): Promise<void> {
  for (let n = 1; n <= MAX_ATTEMPTS; n++) {
    if (await attempt(n)) {
      t.pass(`the calls failed at the close (attempt ${n})`);
      return;
    }
  }
  t.fail('the calls never failed at the close');
}

for (const sandbox of ['none', 'pure-compute'] as const) {
  t.test(`${sandbox}: a crash (SIGKILL to its node from outside): the calls in flight fail at the close, with SIGKILL, before the exit`, async (t) => {
    const kit = await start(t, sandbox, true);
    await untilAtClose(t, async (n) => {
      const { order, errors, old, spare } = await crashWithCalls(t, kit, true, [{ method: 'hang', params: {} }, { method: 'hang', params: {} }], (node) => process.kill(node, 'SIGKILL'));
      for (const err of errors) t.same(details(err), { code: 'ERR_INTERRUPTED', exitCode: null, signal: 'SIGKILL' }, `attempt ${n}: the signal its exit reports`);
      const last = kit.status('tk').lastExit!;
      t.same({ code: last.code, signal: last.signal, reason: last.reason ?? null }, { code: null, signal: 'SIGKILL', reason: errors[0]!.data?.['reason'] }, 'the exit reported later says the same');
      if (!failedAtClose(order, 'exit SIGKILL')) return false;
      t.same(order, [`takeover ${spare} from ${old}`, 'rejected ERR_INTERRUPTED', 'rejected ERR_INTERRUPTED', 'exit SIGKILL', `launch ${spare}`],
        'takeover, the calls in flight fail, then the old exit and the spare\'s launch');
      return true;
    });
  });

  t.test(`${sandbox}: an exit code of its own and an uncaught throw reach the calls at the close with code, stderr and what it threw`, async (t) => {
    const kit = await start(t, sandbox, true);
    await untilAtClose(t, async (n) => {
      const exited = await crashWithCalls(t, kit, true, [{ method: 'hang', params: {} }, { method: 'exitWith', params: { code: 3 } }]);
      for (const err of exited.errors) t.same(details(err), { code: 'ERR_INTERRUPTED', exitCode: 3, signal: null }, `attempt ${n}: exit code 3, not a signal`);
      return failedAtClose(exited.order, 'exit 3');
    });
    await untilAtClose(t, async (n) => {
      const threw = await crashWithCalls(t, kit, true, [{ method: 'hang', params: {} }, { method: 'throwLater', params: { message: 'thrown at the close test' } }]);
      const err = threw.errors[1]!;
      t.same(details(err), { code: 'ERR_INTERRUPTED', exitCode: 1, signal: null }, `attempt ${n}: exit code 1`);
      t.match(err.data?.['thrown'], /thrown at the close test/, 'what it threw, read from stderr');
      t.ok((err.data?.['stderrTail'] as string[]).some((line) => line.includes('thrown at the close test')), 'and its stderr tail');
      t.match(kit.status('tk').lastExit?.thrown, /thrown at the close test/, 'as the exit says');
      return failedAtClose(threw.order, 'exit 1');
    });
  });
}

t.test('controls: without prewarm the calls fail only after the exit; an exit 0 is not read at the close', async (t) => {
  const plain = await start(t, 'none', false);
  const crash = await crashWithCalls(t, plain, false, [{ method: 'hang', params: {} }], (node) => process.kill(node, 'SIGKILL'));
  t.same(crash.order.slice(0, 2), ['exit SIGKILL', 'rejected ERR_INTERRUPTED'], 'no takeover: the call fails with the exit, as before');
  t.same(details(crash.errors[0]!), { code: 'ERR_INTERRUPTED', exitCode: null, signal: 'SIGKILL' });

  const kit = await start(t, 'none', true);
  const zero = await crashWithCalls(t, kit, true, [{ method: 'hang', params: {} }, { method: 'exitWith', params: { code: 0 } }]);
  t.match(zero.order[0], /^takeover /, 'the spare took over');
  const firstRejection = zero.order.indexOf('rejected ERR_INTERRUPTED');
  t.ok(zero.order.indexOf('exit 0') === 1 && firstRejection > 1, `status 0 is not taken: the calls wait for the exit (${zero.order.join(', ')})`);
  for (const err of zero.errors) t.same(details(err), { code: 'ERR_INTERRUPTED', exitCode: 0, signal: null });
});
