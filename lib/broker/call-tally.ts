/**
 * Per-service call counts that the helpers bump and the metrics read at
 * render time: `bulkhead_calls_total` and `bulkhead_call_errors_total` stay
 * exact from the first call on, without a timed record, an event and a
 * metrics update per call. Timing a call (two clock reads, the broker's
 * `call` event, the duration histogram, the `bulkhead:call` channel) happens
 * only while something observes calls (see diagnostics.ts).
 * @module
 */

/** Calls settled at one service's helpers (the broker's own and routed ones), and the failed ones by code. */
export interface CallTally {
  /** Calls a helper answered, or that failed because it exited. */
  calls: number;
  /** Of those, the failed ones, by the code the caller got. */
  readonly errors: Map<string, number>;
}

/** A zeroed {@link CallTally}. */
export function newCallTally(): CallTally {
  return { calls: 0, errors: new Map() };
}

/** Counts one settled call in `tally` (code null: success). */
export function countCall(tally: CallTally, code: string | null): void {
  tally.calls++;
  if (code !== null) countError(tally, code, 1);
}

/** Counts `calls` settled calls in `tally`, of which `errors` failed (by code): a helper's batch of direct calls. */
export function countCalls(tally: CallTally, calls: number, errors: Readonly<Record<string, number>>): void {
  tally.calls += calls;
  for (const [code, n] of Object.entries(errors)) countError(tally, code, n);
}

function countError(tally: CallTally, code: string, n: number): void {
  tally.errors.set(code, (tally.errors.get(code) ?? 0) + n);
}
