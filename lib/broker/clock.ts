/**
 * Time as the broker's schedules and idle timers see it. Injectable, so tests
 * drive schedules with a manual clock instead of waiting real minutes.
 * @module
 */

/** A cancellable timer. */
export interface ClockTimer {
  cancel(): void;
}

/** Source of time and timers. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Calls `fn` once after `ms` milliseconds. */
  setTimer(fn: () => void, ms: number): ClockTimer;
}

/** Longest single setTimeout Node accepts; longer waits are chained. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** The real clock: Date.now and unref'd timers (a schedule alone does not keep the process alive). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    let timer: NodeJS.Timeout;
    const arm = (remaining: number) => {
      timer = setTimeout(() => (remaining > MAX_TIMEOUT_MS ? arm(remaining - MAX_TIMEOUT_MS) : fn()), Math.min(remaining, MAX_TIMEOUT_MS));
      timer.unref();
    };
    arm(Math.max(0, ms));
    return { cancel: () => clearTimeout(timer) };
  },
};

/**
 * A clock that moves only when told to. `advance(ms)` fires every timer due
 * in that span, in order, letting promise continuations run between them.
 */
export class ManualClock implements Clock {
  private time: number;
  private timers: Array<{ at: number; seq: number; fn: () => void }> = [];
  private seq = 0;

  /** @param start - initial time (ms since epoch, or a Date) */
  constructor(start: number | Date = 0) {
    this.time = typeof start === 'number' ? start : start.getTime();
  }

  /** @inheritdoc */
  now(): number {
    return this.time;
  }

  /** @inheritdoc */
  setTimer(fn: () => void, ms: number): ClockTimer {
    const timer = { at: this.time + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return {
      cancel: () => {
        this.timers = this.timers.filter((t) => t !== timer);
      },
    };
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, firing due timers in order. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.timers[0];
      if (next === undefined || next.at > end) break;
      this.timers.shift();
      this.time = Math.max(this.time, next.at);
      next.fn();
      // Let the work the timer started reach its next await before the next timer fires.
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.time = end;
  }

  /** Moves time to `at` (ms since epoch or a Date). */
  async advanceTo(at: number | Date): Promise<void> {
    const target = typeof at === 'number' ? at : at.getTime();
    await this.advance(Math.max(0, target - this.time));
  }
}
