// The in-memory tier of a channel's backlog waiters (lib/wire/backlog-waiters.ts): who is
// called at which backlog, once each, and what a waiter registered from inside a call sees.
import t from 'tap';
import { BacklogWaiters } from '../lib/wire/backlog-waiters.js';

t.test('empty: nobody waits, a look calls nothing', async (t) => {
  const waiters = new BacklogWaiters();
  t.equal(waiters.any, false);
  waiters.wake(0, false);
  waiters.wake(0, true);
  t.equal(waiters.any, false);
});

t.test('each waiter is called once, at the first look at or under its mark; the others stay', async (t) => {
  const waiters = new BacklogWaiters();
  const calls: string[] = [];
  waiters.add(100, () => calls.push('100'));
  waiters.add(10, () => calls.push('10'));
  waiters.add(0, () => calls.push('0'));
  t.equal(waiters.any, true);
  waiters.wake(101, false);
  t.same(calls, [], 'over every mark: nobody');
  waiters.wake(100, false);
  t.same(calls, ['100'], 'at a mark: called');
  waiters.wake(50, false);
  t.same(calls, ['100'], 'once only');
  waiters.wake(10, false);
  t.same(calls, ['100', '10']);
  t.equal(waiters.any, true, 'the 0-byte waiter still waits');
  waiters.wake(0, false);
  t.same(calls, ['100', '10', '0']);
  t.equal(waiters.any, false, 'nobody left');
});

t.test('a close calls every waiter whatever the backlog', async (t) => {
  const waiters = new BacklogWaiters();
  let called = 0;
  waiters.add(0, () => called++);
  waiters.add(5, () => called++);
  waiters.wake(1_000_000, true);
  t.equal(called, 2);
  t.equal(waiters.any, false);
});

t.test('a waiter registered from inside a call waits for the next look', async (t) => {
  const waiters = new BacklogWaiters();
  const calls: string[] = [];
  waiters.add(10, () => {
    calls.push('first');
    waiters.add(10, () => calls.push('again'));
  });
  waiters.add(1, () => calls.push('deep'));
  waiters.wake(5, false);
  t.same(calls, ['first'], 'the new waiter is not called by the look that called its maker');
  t.equal(waiters.any, true);
  waiters.wake(5, false);
  t.same(calls, ['first', 'again']);
  waiters.wake(1, false);
  t.same(calls, ['first', 'again', 'deep']);
  t.equal(waiters.any, false);
});
