/**
 * When the next launch of one service may happen: `throttleMs` after the last
 * launch (launchd's ThrottleInterval), or, in a crash loop, the backoff's
 * growing delay after the last exit. It waits on a timer that holds the
 * process open, since someone (a call, keepAlive) awaits the launch.
 * @module
 */
import type { BulkheadError } from '../errors.js';
import { Backoff } from './backoff.js';
import { systemClock } from './clock.js';
import type { LaunchTunables } from './manifest.js';

/** Paces the launches of one service. */
export class LaunchPacer {
  private readonly backoff: Backoff;
  /** Earliest time of the next launch (performance.now()). */
  private notBefore = -Infinity;
  private waiting: { dueAt: number; cancel(err: BulkheadError): void } | undefined;

  constructor(private readonly policy: LaunchTunables) {
    this.backoff = new Backoff(systemClock, { initialMs: policy.throttleMs, multiplier: policy.backoffMultiplier, maxMs: policy.backoffMaxMs });
  }

  /** A launch happened now. */
  launched(): void {
    this.notBefore = performance.now() + this.policy.throttleMs;
  }

  /**
   * A helper ended. A requested end starts the backoff over; a crash after a
   * stable run too (the next launch then only waits out throttleMs since the
   * last one); each further crash in a row waits longer, counted from its exit.
   */
  exited(crashed: boolean, uptimeMs: number): void {
    if (!crashed || uptimeMs >= this.policy.stableRunMs) this.backoff.reset();
    if (!crashed) return;
    const first = this.backoff.attempts === 0;
    const delay = this.backoff.nextDelay();
    if (!first) this.notBefore = performance.now() + Math.max(this.policy.throttleMs, delay);
  }

  /** Forgets the crash loop (broker.reset): the next launch may happen at once. */
  reset(): void {
    this.backoff.reset();
    this.notBefore = -Infinity;
  }

  /** How long the next launch must still wait, in ms (0: it may go now). */
  get remainingMs(): number {
    return Math.max(0, this.notBefore - performance.now());
  }

  /** When the pending wait ends (ms since the epoch), or null when none is pending. */
  get nextAttemptAt(): number | null {
    return this.waiting?.dueAt ?? null;
  }

  /** Waits `ms`; {@link LaunchPacer.cancel} rejects the wait. */
  wait(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        resolve();
      }, ms);
      this.waiting = {
        dueAt: Date.now() + ms,
        cancel: (err) => {
          clearTimeout(timer);
          this.waiting = undefined;
          reject(err);
        },
      };
    });
  }

  /** Rejects a pending wait with `err`; true when there was one. */
  cancel(err: BulkheadError): boolean {
    const waiting = this.waiting;
    waiting?.cancel(err);
    return waiting !== undefined;
  }
}
