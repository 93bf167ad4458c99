/**
 * When a scheduled job is due: every `intervalMs` (launchd StartInterval) or
 * on a calendar expression (cron syntax via croner; launchd
 * StartCalendarInterval / systemd OnCalendar). Pure: no timers, no I/O.
 * @module
 */
import { Cron } from 'croner';
import { bulkheadError } from '../errors.js';

/** A manifest's `launch.schedule`. Exactly one of intervalMs and calendar. */
export interface ScheduleSpec {
  /** Run every this many ms, counted from the broker's start. */
  intervalMs?: number;
  /** Cron expression (5 or 6 fields), e.g. "0 3 * * *" for 03:00 every day. */
  calendar?: string;
  /** IANA time zone for `calendar`. @default "UTC" */
  timezone?: string;
  /** Method to call on each run. Omit to run the whole helper as a job: launch it and wait for it to exit. */
  method?: string;
  /** Params for `method`. @default {} */
  params?: Record<string, unknown>;
  /** Deadline of one run, in ms. @default none */
  timeoutMs?: number;
  /** Run once at start-up when runs were missed while the broker was down (systemd's Persistent=). @default false */
  persistent?: boolean;
}

/** Most missed runs counted (so a long outage with a per-second schedule stays cheap to report). */
export const MAX_COUNTED_MISSED_RUNS = 10_000;

/** Computes due times for one schedule. */
export class DueTimes {
  private readonly cron: Cron | undefined;

  /**
   * @param source - for messages, e.g. the manifest path
   * @throws BulkheadError `ERR_INVALID_MANIFEST` for a bad calendar expression
   */
  constructor(readonly spec: ScheduleSpec, private readonly anchor: number, source: string) {
    if (spec.calendar !== undefined) {
      try {
        this.cron = new Cron(spec.calendar, { paused: true, timezone: spec.timezone ?? 'UTC' });
      } catch (err) {
        throw bulkheadError('ERR_INVALID_MANIFEST', `${source}: /launch/schedule/calendar "${spec.calendar}" is not a valid cron expression (${(err as Error).message}). Use 5 fields: minute hour day-of-month month day-of-week.`, { source, pointer: '/launch/schedule/calendar' }, err);
      }
    }
  }

  /** The first due time strictly after `after`. */
  next(after: number): number {
    if (this.cron !== undefined) {
      const next = this.cron.nextRun(new Date(after));
      return next === null ? Number.POSITIVE_INFINITY : next.getTime();
    }
    const interval = this.spec.intervalMs!;
    const periods = Math.floor((after - this.anchor) / interval) + 1;
    return this.anchor + Math.max(1, periods) * interval;
  }

  /** Due times in (from, to], counted up to {@link MAX_COUNTED_MISSED_RUNS}. */
  countBetween(from: number, to: number): number {
    if (this.cron === undefined) {
      return Math.min(MAX_COUNTED_MISSED_RUNS, Math.max(0, Math.floor((to - from) / this.spec.intervalMs!)));
    }
    let count = 0;
    let at = from;
    while (count < MAX_COUNTED_MISSED_RUNS) {
      at = this.next(at);
      if (at > to) break;
      count++;
    }
    return count;
  }
}
