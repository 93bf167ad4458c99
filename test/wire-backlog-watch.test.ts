// The in-memory tier of slow-reader pacing (lib/wire/backlog-watch.ts), which both daemon
// paths use: the routed one holds its helper back with it, a direct channel's helper its own
// emit(). A channel over an in-memory pair whose reader we start and stop at will.
import t from 'tap';
import { BacklogWatch, stalledReaderError, type WatchTimers } from '../lib/wire/backlog-watch.js';
import { FramedChannel } from '../lib/wire/framed-channel.js';
import { duplexPair } from './memory-pair.js';

const MARK = 64 * 1024;
const payload = 'x'.repeat(1000);

/** Timers the test runs by hand: a stall window ends when the test says so. */
function manualTimers() {
  let window: (() => void) | undefined;
  let sampler: (() => void) | undefined;
  const timers: WatchTimers = {
    setTimeout: (fn) => (window = fn),
    clearTimeout: () => (window = undefined),
    setInterval: (fn) => (sampler = fn),
    clearInterval: () => (sampler = undefined),
  };
  return {
    timers,
    /** Ends the stall window now (one progress sample first, as the interval would). */
    endWindow() {
      sampler?.();
      const fn = window;
      window = undefined;
      fn?.();
    },
    pending: () => window !== undefined || sampler !== undefined,
  };
}

/** A channel whose peer does not read until told, watched with `stallMs`; counts what the watch did. */
function watched(stallMs: number, timers?: WatchTimers) {
  const [writerEnd, readerEnd] = duplexPair(4 * 1024);
  const channel = new FramedChannel(writerEnd);
  channel.attach({ envelope: () => {}, closed: () => {} });
  const seen = { holds: 0, releases: 0, stalls: [] as Array<{ waiting: number; stallMs: number }> };
  let stalled!: () => void;
  const stalledOnce = new Promise<void>((resolve) => (stalled = resolve));
  const watch = new BacklogWatch(channel, {
    highWaterBytes: MARK,
    stallMs,
    hold: () => seen.holds++,
    release: () => seen.releases++,
    ...(timers === undefined ? {} : { timers }),
    stalled: (waiting, ms) => {
      seen.stalls.push({ waiting, stallMs: ms });
      stalled();
    },
  });
  /** Sends `n` events of about 1 KiB each. */
  const send = (n: number) => {
    for (let i = 0; i < n; i++) channel.send({ kind: 'event', callId: 0, name: 'tick', payload });
  };
  /** The peer reads (and drops) everything from now on. */
  const read = () => readerEnd.on('data', () => {});
  return { channel, watch, seen, send, read, stalledOnce, readerEnd };
}

t.test('below the mark: not held, room() resolves at once, nothing is held back', async (t) => {
  const { watch, seen, send, channel } = watched(60_000);
  send(10);
  t.ok(channel.writableLength < MARK);
  t.equal(watch.held, false);
  let resolved = false;
  void watch.room().then(() => (resolved = true));
  await Promise.resolve();
  t.equal(resolved, true, 'room() resolved within a microtask');
  t.same(seen, { holds: 0, releases: 0, stalls: [] });
  watch.dispose();
});

t.test('over the mark: held until the reader brings the backlog below half, then released once; no stall', async (t) => {
  const { watch, seen, send, read, channel, readerEnd } = watched(60_000);
  send(200); // ~200 KiB against a 4 KiB reader buffer
  t.ok(channel.writableLength > MARK, `${channel.writableLength} bytes wait`);
  t.equal(watch.held, true);
  t.equal(seen.holds, 1, 'held back once, however many frames followed');
  let resolved = false;
  const room = watch.room().then(() => (resolved = true));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(resolved, false, 'room() waits while the reader does not read');
  read();
  await room;
  t.ok(channel.writableLength <= MARK / 2, `released at ${channel.writableLength} bytes, below half the mark`);
  t.same(seen, { holds: 1, releases: 1, stalls: [] }, 'released once; the stall timer was cleared');
  t.equal(watch.held, false);
  readerEnd.pause(); // the reader falls behind again
  send(200);
  t.equal(seen.holds, 2, 'a new burst holds again');
  const again = watch.room();
  readerEnd.resume();
  await again;
  t.equal(seen.releases, 2);
  watch.dispose();
});

t.test('a reader that reads nothing in a stall window: released, then stalled with its backlog', async (t) => {
  const clock = manualTimers();
  const { watch, seen, send, channel } = watched(50, clock.timers);
  send(200);
  const room = watch.room();
  t.equal(clock.pending(), true, 'a stall window runs while held');
  clock.endWindow();
  await room;
  t.equal(seen.stalls.length, 1);
  t.equal(seen.stalls[0]!.stallMs, 50);
  t.ok(seen.stalls[0]!.waiting > MARK, `stalled with ${seen.stalls[0]!.waiting} bytes waiting`);
  t.same({ holds: seen.holds, releases: seen.releases }, { holds: 1, releases: 1 }, 'let go before the stall was reported');
  t.equal(clock.pending(), false, 'no timer left');
  const error = stalledReaderError(seen.stalls[0]!.waiting, 50, MARK);
  t.equal(error.code, 'ERR_BACKPRESSURE');
  t.match(error.message, 'for 50 ms');
  channel.fail(error);
  watch.dispose();
});

t.test('a reader that reads slowly but steadily through a deep backlog is not stalled; once it stops, it is', async (t) => {
  const clock = manualTimers();
  const { watch, seen, send, channel, readerEnd } = watched(50, clock.timers);
  send(800); // ~800 KiB
  /** The reader takes about `bytes`, then the writer gets a turn to hand it more. */
  const read = async (bytes: number) => {
    for (let taken = 0; taken < bytes;) {
      const chunk = (readerEnd.read(1024) ?? readerEnd.read()) as Buffer | null;
      if (chunk === null) await new Promise((resolve) => setImmediate(resolve));
      else taken += chunk.length;
    }
    await new Promise((resolve) => setImmediate(resolve));
  };
  for (let window = 0; window < 4; window++) {
    await read(96 * 1024); // more than half the mark per window, far less than the backlog
    clock.endWindow();
    t.same(seen.stalls, [], `window ${window + 1}: it read, so it is not stalled (${channel.writableLength} bytes still wait)`);
    t.equal(watch.held, true, 'still held: the backlog is still above half the mark');
  }
  clock.endWindow(); // a window in which it read nothing
  t.equal(seen.stalls.length, 1, 'stalled once it stopped reading');
  watch.dispose();
});

t.test('the channel closes while held: waiters resolve, no stall is reported', async (t) => {
  const { watch, seen, send, channel } = watched(60_000);
  send(200);
  const room = watch.room();
  channel.destroy();
  await room;
  t.same(seen, { holds: 1, releases: 1, stalls: [] });
  watch.dispose();
  watch.dispose(); // idempotent
});

t.test('disposed: the channel no longer tells it, nothing is held', async (t) => {
  const { watch, seen, send } = watched(60_000);
  watch.dispose();
  send(200);
  t.equal(watch.held, false);
  t.same(seen, { holds: 0, releases: 0, stalls: [] });
});

// The watch learns that the backlog fell from the channel (FramedChannel.onBacklogAtMost, told
// at a write's completion), not by looking again every event-loop turn. The case that used to
// spin: a stream whose own high-water mark is above the backlog never needs a 'drain', so a
// watch that polled until the backlog halved ran once per turn for as long as the peer did not
// read. Immediates created are counted with an async hook (one per poll).
t.test('held while the peer does not read and the stream needs no drain: no wake-ups until it reads', async (t) => {
  const { createHook } = await import('node:async_hooks');
  const { MemoryEnd } = await import('./memory-pair.js');
  // The writer's stream takes 4 MiB before write() returns false; the reader buffers 4 KiB.
  const writerEnd = new MemoryEnd({ readableHighWaterMark: 4 * 1024, writableHighWaterMark: 4 * 1024 * 1024 });
  const readerEnd = new MemoryEnd({ readableHighWaterMark: 4 * 1024, writableHighWaterMark: 4 * 1024 });
  writerEnd.peer = readerEnd;
  readerEnd.peer = writerEnd;
  const channel = new FramedChannel(writerEnd);
  channel.attach({ envelope: () => {}, closed: () => {} });
  const seen = { holds: 0, releases: 0 };
  const watch = new BacklogWatch(channel, { highWaterBytes: MARK, stallMs: 60_000, hold: () => seen.holds++, release: () => seen.releases++, stalled: () => t.fail('not stalled') });
  t.teardown(() => watch.dispose());

  /**
   * Immediates created while `during` runs and over the window after it, not counting the window's own. The window
   * is counted in event-loop turns (at least 50, and at least 100 ms): a per-turn poll makes one immediate a turn
   * whatever the load, while a wall-clock window alone gave it as few turns as the scheduler did (CI, load 20: the
   * control counted fewer than 20 in 100 ms).
   */
  const immediatesOver = async (during: () => void): Promise<{ others: number; turns: number }> => {
    let immediates = 0;
    let turns = 0;
    const hook = createHook({ init: (_id, type) => { if (type === 'Immediate') immediates++; } }).enable();
    during();
    const started = performance.now();
    while (turns < 50 || performance.now() - started < 100) {
      await new Promise((resolve) => setImmediate(resolve));
      turns++;
    }
    hook.disable();
    return { others: immediates - turns, turns };
  };

  // Positive control: the hook sees a poll that re-arms itself each turn, as the old check did.
  let polling = true;
  const poll = (): void => { if (polling) setImmediate(poll); };
  const control = await immediatesOver(poll);
  polling = false;
  t.ok(control.others >= control.turns / 2, `the hook counts a per-turn poll (${control.others} immediates in ${control.turns} turns)`);

  let held = 0;
  const idle = await immediatesOver(() => {
    for (let i = 0; i < 200; i++) channel.send({ kind: 'event', callId: 0, name: 'tick', payload });
    held = channel.writableLength;
  });
  t.ok(held > MARK && watch.held, `held with ${held} bytes waiting`);
  t.equal(writerEnd.writableNeedDrain, false, 'the stream itself needs no drain (its mark is 4 MiB)');
  t.ok(channel.writableLength > MARK, 'the peer read nothing meanwhile');
  t.ok(idle.others <= 2, `held and idle: ${idle.others} immediates in ${idle.turns} turns (a poll would make one a turn)`);
  const room = watch.room();
  readerEnd.on('data', () => {});
  await room;
  t.ok(channel.writableLength <= MARK / 2, `released at ${channel.writableLength} bytes, once the peer read`);
  t.same(seen, { holds: 1, releases: 1 });
});

t.test('onBacklogAtMost: told once at the write that brought the backlog under the mark, and at close', async (t) => {
  const [writerEnd, readerEnd] = duplexPair(4 * 1024);
  const channel = new FramedChannel(writerEnd);
  channel.attach({ envelope: () => {}, closed: () => {} });
  for (let i = 0; i < 100; i++) channel.send({ kind: 'event', callId: 0, name: 'tick', payload });
  const seenAt: number[] = [];
  channel.onBacklogAtMost(10 * 1024, () => seenAt.push(channel.writableLength));
  let closedToo = false;
  channel.onBacklogAtMost(0, () => (closedToo = true));
  await new Promise((resolve) => setImmediate(resolve));
  t.same(seenAt, [], 'not told while the peer does not read');
  const under = new Promise<void>((resolve) => channel.onBacklogAtMost(10 * 1024, resolve));
  readerEnd.on('data', () => {});
  await under;
  t.equal(seenAt.length, 1, 'told once');
  t.ok(seenAt[0]! <= 10 * 1024, `told at ${seenAt[0]} bytes`);
  t.equal(closedToo, true, 'the peer read everything: the 0-byte waiter was told as well');
  let afterClose = 0;
  for (let i = 0; i < 100; i++) channel.send({ kind: 'event', callId: 0, name: 'tick', payload });
  readerEnd.pause();
  channel.onBacklogAtMost(0, () => afterClose++);
  channel.destroy();
  t.equal(afterClose, 1, 'a close tells the waiters');
  channel.onBacklogAtMost(0, () => afterClose++);
  t.equal(afterClose, 2, 'after the close a waiter is told at once');
});

t.test('a close tells the backlog waiters even when the handler\'s closed() throws', async (t) => {
  const [writerEnd, readerEnd] = duplexPair(4 * 1024);
  readerEnd.pause();
  const channel = new FramedChannel(writerEnd);
  channel.attach({ envelope: () => {}, closed: () => { throw new Error('handler bug'); } });
  for (let i = 0; i < 100; i++) channel.send({ kind: 'event', callId: 0, name: 'tick', payload });
  let told = 0;
  channel.onBacklogAtMost(0, () => told++);
  t.equal(told, 0, 'the backlog is not down yet');
  t.throws(() => channel.destroy(), { message: 'handler bug' });
  t.equal(told, 1, 'the waiter was told all the same');
});
