/**
 * What each exit of a service's helper costs: whether it counts as a crash,
 * the crash-loop breaker (systemd's StartLimitBurst), the launch pacing it
 * causes (throttle and backoff), and the failure text once the breaker trips.
 * @module
 */
import { bulkheadError, type BulkheadError } from '../errors.js';
import { CrashLoopBreaker } from './crash-breaker.js';
import { describeExit, exitData, tailText, type ExitInfo } from './exit-report.js';
import { LaunchPacer } from './launch-pacer.js';
import type { LaunchTunables } from './manifest.js';

/** The exits and crashes of one service, and when it may launch next. */
export class CrashAccounting {
  private breaker: CrashLoopBreaker;
  /** When the next launch may happen. */
  pacer: LaunchPacer;
  /** Exits the broker did not ask for, since registration. */
  crashes = 0;
  /** How the last serving helper ended (set by the lifecycle before it tells anyone of the exit). */
  lastExit: ExitInfo | null = null;

  /**
   * @param service - for messages
   * @param remedy - what clears a failed service in this broker's mode
   */
  constructor(private readonly service: string, private policy: LaunchTunables, private readonly remedy: string) {
    this.breaker = new CrashLoopBreaker(policy.maxRestarts, policy.restartWindowMs);
    this.pacer = new LaunchPacer(policy);
  }

  /** Takes a changed launch policy (a reload): the crash window and the backoff start over. */
  usePolicy(policy: LaunchTunables): void {
    this.policy = policy;
    this.breaker = new CrashLoopBreaker(policy.maxRestarts, policy.restartWindowMs);
    this.pacer = new LaunchPacer(policy);
  }

  /** Crashes inside the breaker's window. */
  get recent(): number {
    return this.breaker.recent;
  }

  /**
   * Records the end of the serving helper.
   * @param expected - a whole-process scheduled job that exited 0: its normal end
   * @returns the ERR_INVALIDATED to fail the service with when the breaker tripped, else undefined
   */
  exited(info: ExitInfo, expected: boolean): BulkheadError | undefined {
    const crashed = !info.requested && !expected;
    if (!crashed) {
      this.pacer.exited(false, info.uptimeMs);
      return undefined;
    }
    return this.crashed(info.uptimeMs) ? this.failure(info) : undefined;
  }

  /**
   * Counts a crash now, before its exit is reported: the serving helper's channel closed
   * without the broker asking and the broker killed it (spare-takeover.ts).
   * @param uptimeMs - how long the helper ran
   * @returns true when the breaker tripped: the service fails once the exit is reported ({@link CrashAccounting.failure})
   */
  crashed(uptimeMs: number): boolean {
    this.pacer.exited(true, uptimeMs);
    this.crashes++;
    return this.breaker.record();
  }

  /** The ERR_INVALIDATED a tripped breaker fails the service with, naming the last exit. */
  failure(info: ExitInfo): BulkheadError {
    return bulkheadError(
      'ERR_INVALIDATED',
      `${this.service} stopped unexpectedly ${this.breaker.recent} times within ${this.policy.restartWindowMs} ms and was marked failed. Last exit: it ${describeExit(info)}; ${tailText(info)}. Fix the helper, then ${this.remedy}.`,
      { service: this.service, ...exitData(info), crashes: this.breaker.recent },
    );
  }

  /** Forgets the crash window and the backoff (broker.reset, kickstart of a failed service). */
  reset(): void {
    this.breaker.reset();
    this.pacer.reset();
  }
}
