/**
 * Runs one service's scheduled job on time: never two runs at once (a run
 * due while the previous one is still going is skipped and recorded), missed
 * runs while the broker was down counted from the schedule store, and made up
 * once at start when the schedule is persistent.
 * @module
 */
import { isBulkheadError, type SerializedError } from '../errors.js';
import type { Clock, ClockTimer } from './clock.js';
import { DueTimes, type ScheduleSpec } from './schedule.js';
import type { ScheduleStore } from './schedule-store.js';

/** Outcome of one due time. */
export interface JobRunResult {
  /** When it was due (ms since epoch). */
  dueAt: number;
  /** When it started (ms since epoch, by the broker's clock). */
  startedAt: number;
  /** Duration of the run by the broker's clock, in ms (0 when skipped). */
  durationMs: number;
  /** ok / error: the run's outcome; skipped: the previous run was still going. */
  result: 'ok' | 'error' | 'skipped';
  /** What failed, for result "error". */
  error?: SerializedError;
  /** "schedule" for a normal run, "missed" for the make-up run of a persistent schedule. */
  trigger: 'schedule' | 'missed';
}

/** Schedule part of a service's status. */
export interface JobStatus {
  /** Next due time (ms since epoch), or null when stopped. */
  nextRunAt: number | null;
  /** The last due time's outcome, or null. */
  lastRun: JobRunResult | null;
  /** Runs started. */
  runs: number;
  /** Due times skipped because a run was still going. */
  skipped: number;
  /** Due times that passed while the broker was down (from the schedule store). */
  missedWhileDown: number;
}

/** Options of a {@link JobRunner}. */
export interface JobRunnerOptions {
  service: string;
  spec: ScheduleSpec;
  clock: Clock;
  store: ScheduleStore | undefined;
  /** Does one run; rejects when the run failed. */
  run(): Promise<void>;
  /** Every outcome, as it happens. */
  onResult(result: JobRunResult): void;
  /** For messages. */
  source: string;
}

/** Timer loop of one scheduled job. */
export class JobRunner {
  private readonly due: DueTimes;
  private timer: ClockTimer | undefined;
  private nextRunAt: number | null = null;
  private running = false;
  private lastRun: JobRunResult | null = null;
  private runs = 0;
  private skipped = 0;
  private missedWhileDown = 0;
  private stopped = false;

  constructor(private readonly options: JobRunnerOptions) {
    this.due = new DueTimes(options.spec, options.clock.now(), options.source);
  }

  /** Counts missed runs, runs the make-up run if persistent, and arms the timer. */
  start(): void {
    const now = this.options.clock.now();
    const stored = this.options.store?.read(this.options.service);
    if (stored !== undefined && stored.lastDueAt < now) {
      this.missedWhileDown = this.due.countBetween(stored.lastDueAt, now);
      if (this.missedWhileDown > 0 && this.options.spec.persistent === true) this.fire(now, 'missed');
    }
    this.arm(now);
  }

  /** Stops the timer; a run in progress finishes. */
  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.nextRunAt = null;
  }

  /** Snapshot for status(). */
  status(): JobStatus {
    return { nextRunAt: this.nextRunAt, lastRun: this.lastRun, runs: this.runs, skipped: this.skipped, missedWhileDown: this.missedWhileDown };
  }

  private arm(after: number): void {
    if (this.stopped) return;
    const at = this.due.next(after);
    if (!Number.isFinite(at)) {
      this.nextRunAt = null;
      return;
    }
    this.nextRunAt = at;
    this.timer = this.options.clock.setTimer(() => {
      this.fire(at, 'schedule');
      this.arm(at);
    }, at - this.options.clock.now());
  }

  private fire(dueAt: number, trigger: JobRunResult['trigger']): void {
    const clock = this.options.clock;
    this.remember(dueAt);
    if (this.running) {
      this.skipped++;
      this.record({ dueAt, startedAt: clock.now(), durationMs: 0, result: 'skipped', trigger });
      return;
    }
    this.running = true;
    this.runs++;
    const startedAt = clock.now();
    // Both outcomes are handled; only a throwing onResult (the broker's, which emits 'job') could
    // reject the chain, and it should surface as loudly as a throwing listener would.
    void this.options.run().then(
      (): JobRunResult => ({ dueAt, startedAt, durationMs: clock.now() - startedAt, result: 'ok', trigger }),
      (err: unknown): JobRunResult => ({
        dueAt, startedAt, durationMs: clock.now() - startedAt, result: 'error', trigger,
        error: isBulkheadError(err) ? err.toJSON() : { code: 'ERR_SERVICE_ERROR', message: String((err as Error | undefined)?.message ?? err) },
      }),
    ).then((result) => {
      this.running = false;
      this.record(result);
    });
  }

  private record(result: JobRunResult): void {
    this.lastRun = result;
    this.options.onResult(result);
  }

  private remember(dueAt: number): void {
    try {
      this.options.store?.write(this.options.service, { lastDueAt: dueAt });
    } catch {
      // An unwritable state dir loses missed-run accounting, not the run itself.
    }
  }
}
