/**
 * Per-call metrics of the calls a helper answers on its direct channels,
 * which the broker never sees: durations as a histogram on the broker's own
 * buckets, and failures by the code the caller got. The helper adds them up
 * and sends one batch with its tally (docs/wire.md, "Hand-off", the `calls`
 * report), never a message per call; the broker adds the batch to its
 * metrics (`bulkhead_calls_total`, `bulkhead_call_errors_total`,
 * `bulkhead_call_duration_seconds`). Calls are counted always and timed only
 * once the broker said someone observes them (the `observe` line on the
 * pipe): a batch's buckets hold the timed calls, which may be fewer than its calls.
 * @module
 */
import { isServiceCode } from './remote-error.js';

/** Upper bounds (seconds) of the call duration histogram's buckets (the broker's metrics and the helper's batches). */
export const CALL_DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/** The index of the first bucket whose bound `seconds` does not exceed; CALL_DURATION_BUCKETS.length past the last bound. */
export function durationBucket(seconds: number): number {
  let i = 0;
  while (i < CALL_DURATION_BUCKETS.length && seconds > CALL_DURATION_BUCKETS[i]!) i++;
  return i;
}

/** Most distinct error codes one batch carries; the rest count under {@link OTHER_CODES}. */
export const MAX_BATCH_CODES = 32;

/** The code under which failures past {@link MAX_BATCH_CODES} distinct codes are counted. */
export const OTHER_CODES = 'other';

/** Calls answered since the last batch: what the helper reports, what the broker adds. */
export interface CallBatch {
  /** Calls answered (replies and errors). */
  calls: number;
  /** Per bucket of {@link CALL_DURATION_BUCKETS} (plus one past the last), the timed calls whose duration falls in it (not cumulative); they add up to the timed calls, at most `calls`. */
  buckets: number[];
  /** Sum of the timed calls' durations, in seconds. */
  sum: number;
  /** Failed calls by the code the caller got. */
  errors: Record<string, number>;
  /** The timed calls (what `buckets` add up to), set on a batch the broker read and checked; a helper does not send it. */
  timed?: number;
}

/** Adds up answered calls until {@link CallMeter.take}. */
export class CallMeter {
  private calls = 0;
  private sum = 0;
  private buckets: number[] = new Array<number>(CALL_DURATION_BUCKETS.length + 1).fill(0);
  private errors = new Map<string, number>();

  /** A call answered after `seconds`, with `code` (null: a reply). */
  record(seconds: number, code: string | null): void {
    this.sum += seconds;
    this.buckets[durationBucket(seconds)]!++;
    this.count(code);
  }

  /** A call answered with `code` (null: a reply), not timed (nobody observed calls when it started). */
  count(code: string | null): void {
    this.calls++;
    if (code !== null) {
      const key = this.errors.has(code) || this.errors.size < MAX_BATCH_CODES ? code : OTHER_CODES;
      this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
    }
  }

  /** The batch since the last take, or undefined when no call was answered. */
  take(): CallBatch | undefined {
    if (this.calls === 0) return undefined;
    const batch: CallBatch = { calls: this.calls, buckets: this.buckets, sum: this.sum, errors: Object.fromEntries(this.errors) };
    this.calls = 0;
    this.sum = 0;
    this.buckets = new Array<number>(CALL_DURATION_BUCKETS.length + 1).fill(0);
    this.errors = new Map();
    return batch;
  }
}

/**
 * A batch as the broker reads it from a helper's pipe: checked for shape
 * (counts are safe non-negative integers, one bucket per bound plus one,
 * holding no more calls than the batch counts,
 * at most {@link MAX_BATCH_CODES} + 1 codes of bounded length), else
 * undefined. Codes a service may not send on its own behalf count as
 * `ERR_SERVICE_ERROR`, as its caller got them: the labels stay a bounded set.
 */
export function readCallBatch(m: Record<string, unknown>): CallBatch | undefined {
  const { calls, buckets, sum, errors } = m;
  if (!isCount(calls) || typeof sum !== 'number' || !Number.isFinite(sum) || sum < 0) return undefined;
  if (!Array.isArray(buckets) || buckets.length !== CALL_DURATION_BUCKETS.length + 1 || !buckets.every(isCount)) return undefined;
  const timed = timedIn(buckets);
  if (timed > calls) return undefined;
  if (typeof errors !== 'object' || errors === null || Array.isArray(errors)) return undefined;
  const entries = Object.entries(errors);
  if (entries.length > MAX_BATCH_CODES + 1) return undefined;
  const checked = Object.create(null) as Record<string, number>;
  for (const [code, n] of entries) {
    if (code.length > 64 || !isCount(n)) return undefined;
    // Labelled by the code the caller got: a helper's own codes reach it as ERR_SERVICE_ERROR (remote-error.ts).
    const key = isServiceCode(code) ? code : 'ERR_SERVICE_ERROR';
    checked[key] = (checked[key] ?? 0) + n;
  }
  return { calls, buckets, sum, errors: checked, timed };
}

/** The timed calls of a batch: what its buckets hold. */
export function timedIn(buckets: readonly number[]): number {
  let n = 0;
  for (const b of buckets) n += b;
  return n;
}

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}
