// The takeover's bookkeeping in memory (lib/broker/spare-takeover.ts, CrashAccounting.crashed): who
// replaced whom until the old helper's exit is reported, crashes counted before their exit, and the
// breaker deciding at that moment. The real-process side is spare-takeover.test.ts.
import t from 'tap';
import type { HelperProcess } from '../lib/broker/helper-process.js';
import { announceSuccessor, Handovers } from '../lib/broker/spare-takeover.js';
import { CrashAccounting } from '../lib/broker/crash-accounting.js';
import { LAUNCH_DEFAULTS } from '../lib/broker/manifest.js';
import type { ExitInfo } from '../lib/broker/exit-report.js';

/** Stands in for a helper: the bookkeeping only keys on it, and announce reads pid and calls activate(). */
const helper = (pid: number, seen: string[] = []): HelperProcess => ({ pid, activate: () => seen.push(`activate ${pid}`) }) as unknown as HelperProcess;

t.test('a handover lasts until the old helper\'s exit is reported; its settle promise carries the cleanup', async (t) => {
  const book = new Handovers();
  const old = helper(1);
  const spare = helper(2);
  let settled = false;
  const done = book.begin(old, spare).then(() => {
    settled = true;
  });
  t.equal(book.successorOf(old), spare);
  t.ok(book.awaitsPredecessor(spare));
  t.notOk(book.awaitsPredecessor(old));
  let cleaned!: () => void;
  book.end(old, new Promise<void>((resolve) => {
    cleaned = resolve;
  }));
  t.equal(book.successorOf(old), undefined, 'forgotten once reported');
  t.notOk(book.awaitsPredecessor(spare));
  await Promise.resolve();
  t.notOk(settled, 'not settled before the cleanup');
  cleaned();
  await done;
  t.ok(settled);
});

t.test('a crash counted early is taken once; end() forgets it too', async (t) => {
  const book = new Handovers();
  const a = helper(1);
  const b = helper(2);
  book.countedEarly(a, false);
  book.countedEarly(b, true);
  t.equal(book.takeCount(a), false);
  t.equal(book.takeCount(a), undefined, 'once');
  book.end(b, Promise.resolve());
  t.equal(book.takeCount(b), undefined);
});

t.test('announcing a successor reports its launch before its held events go out', async (t) => {
  const seen: string[] = [];
  announceSuccessor(helper(7, seen), (pid) => seen.push(`launch ${pid}`));
  t.same(seen, ['launch 7', 'activate 7']);
});

t.test('the breaker decides when the crash is counted, and the failure names the exit reported later', async (t) => {
  const accounting = new CrashAccounting('svc', { ...LAUNCH_DEFAULTS, maxRestarts: 2, restartWindowMs: 60_000, throttleMs: 0 }, 'call broker.reset("svc")');
  t.notOk(accounting.crashed(5_000), 'first crash: within the budget');
  t.equal(accounting.crashes, 1);
  t.equal(accounting.pacer.remainingMs, 0, 'the first crash after a run does not pace the relaunch');
  t.ok(accounting.crashed(10), 'second crash in the window: tripped');
  const info: ExitInfo = { code: null, signal: 'SIGKILL', reason: undefined, requested: false, stderrTail: [], thrown: null, at: Date.now(), uptimeMs: 10 };
  const failure = accounting.failure(info);
  t.equal(failure.code, 'ERR_INVALIDATED');
  t.match(failure.message, /stopped unexpectedly 2 times/);
  t.equal(failure.data?.['signal'], 'SIGKILL');
});
