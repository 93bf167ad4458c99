/**
 * Exponential backoff with jitter and a cap, after grpc-js's backoff-timeout.ts:
 * the first delay is `initialMs`, each following one is the previous times
 * `multiplier` (capped at `maxMs`), every delay is spread by ±`jitter`, and a
 * stable run resets it. The supervisor asks it for the next delay; it never
 * sleeps a fixed interval. Time and randomness are injected, so tests drive it
 * without waiting.
 * @module
 */
import type { Clock, ClockTimer } from './clock.js';

/** Options of a {@link Backoff}. */
export interface BackoffOptions {
  /**
   * First delay in ms (launch.throttleMs, launchd's ThrottleInterval).
   * @default 1000
   */
  initialMs?: number;
  /**
   * Factor between two consecutive delays.
   * @default 1.6
   */
  multiplier?: number;
  /**
   * Largest delay in ms (before jitter).
   * @default 60000
   */
  maxMs?: number;
  /**
   * Spread of each delay, as a fraction: 0.2 draws it from ±20% around the nominal delay.
   * @default 0.2
   */
  jitter?: number;
  /** Source of time and timers. @default the system clock (unref'd timers) */
  clock?: Clock;
  /** Uniform random numbers in [0, 1). @default Math.random */
  random?: () => number;
}

/** Defaults of {@link BackoffOptions}, grpc-js's constants except the initial delay. */
export const BACKOFF_DEFAULTS = { initialMs: 1000, multiplier: 1.6, maxMs: 60_000, jitter: 0.2 } as const;

/** Grows the wait between relaunches; reset after a stable run. */
export class Backoff {
  private readonly initialMs: number;
  private readonly multiplier: number;
  private readonly maxMs: number;
  private readonly jitter: number;
  private readonly random: () => number;
  /** Nominal (unjittered) delay the next attempt will wait. */
  private nominal: number;
  private timer: ClockTimer | undefined;
  private dueAt: number | null = null;
  private attemptsSinceReset = 0;

  constructor(private readonly clock: Clock, options: Omit<BackoffOptions, 'clock'> = {}) {
    this.initialMs = options.initialMs ?? BACKOFF_DEFAULTS.initialMs;
    this.multiplier = options.multiplier ?? BACKOFF_DEFAULTS.multiplier;
    this.maxMs = Math.max(this.initialMs, options.maxMs ?? BACKOFF_DEFAULTS.maxMs);
    this.jitter = options.jitter ?? BACKOFF_DEFAULTS.jitter;
    this.random = options.random ?? Math.random;
    this.nominal = this.initialMs;
  }

  /**
   * The delay before the next attempt, and advances the sequence: each call
   * returns a longer one (×multiplier, capped), jittered.
   */
  nextDelay(): number {
    const base = this.nominal;
    this.nominal = Math.min(this.nominal * this.multiplier, this.maxMs);
    this.attemptsSinceReset++;
    const spread = base * this.jitter * (this.random() * 2 - 1);
    return Math.max(0, Math.round(base + spread));
  }

  /**
   * Waits the next delay on the clock, then calls `fn`. One wait at a time: a
   * second schedule() while one is pending replaces it.
   * @returns the delay chosen, in ms
   */
  schedule(fn: () => void): number {
    this.cancel();
    const delay = this.nextDelay();
    this.dueAt = this.clock.now() + delay;
    this.timer = this.clock.setTimer(() => {
      this.timer = undefined;
      this.dueAt = null;
      fn();
    }, delay);
    return delay;
  }

  /** Cancels a pending wait (its callback never runs). */
  cancel(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.dueAt = null;
  }

  /** Back to the initial delay (after a stable run). */
  reset(): void {
    this.nominal = this.initialMs;
    this.attemptsSinceReset = 0;
  }

  /** When the pending wait ends (clock time, ms), or null when none is pending. */
  get nextAttemptAt(): number | null {
    return this.dueAt;
  }

  /** Delays handed out since the last reset. */
  get attempts(): number {
    return this.attemptsSinceReset;
  }
}
