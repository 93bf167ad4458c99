/**
 * What the verdicts judged over fresh process sets share (the pinned round trip, small-calls-processes.ts; the
 * payload echo, payloads-sets.ts): sets run one after another, each opened, measured and closed before the next
 * starts, and a ratio judged on its median over sets with a distribution-free ~95% interval, "not decisive" when
 * that interval holds the target.
 * @module
 */
import { medianIntervalRanks } from './paired.js';
import { median } from './stats.js';

/** One ratio over process sets: its per-set values, their median and extremes, and the median's interval. */
export interface SetSpread {
  /** Per-set ratio, in set order. */
  ratios: number[];
  median: number;
  min: number;
  max: number;
  /** Distribution-free ~95% interval of the median (order statistics), NaN below 6 sets. */
  ciLow: number;
  ciHigh: number;
}

/** The spread of per-set `ratios`. */
export function setSpread(ratios: number[]): SetSpread {
  const sorted = [...ratios].sort((a, b) => a - b);
  const ranks = medianIntervalRanks(sorted.length);
  return {
    ratios,
    median: median(ratios),
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
    ciLow: ranks === undefined ? Number.NaN : sorted[ranks.low]!,
    ciHigh: ranks === undefined ? Number.NaN : sorted[ranks.high]!,
  };
}

/** True when the ~95% interval holds `target`: one run cannot say met or not met. */
export function notDecisive(s: SetSpread, target: number): boolean {
  return !Number.isNaN(s.ciLow) && s.ciLow <= target && target <= s.ciHigh;
}

/**
 * `count` fresh sets, one after another: `open` starts a set's processes (pushing each onto the list as it is up,
 * so that `close` ends every one that started, even when a later one or `measure` throws), `measure` gives the
 * set's figures, and `onSet` follows each closed set.
 */
export async function freshSets<P, S>(
  count: number,
  steps: { open(started: P[], index: number): Promise<void>; measure(started: P[], index: number): Promise<S>; close(started: P[]): Promise<void> },
  onSet: (index: number) => void,
): Promise<S[]> {
  const sets: S[] = [];
  for (let s = 0; s < count; s++) {
    const started: P[] = [];
    try {
      await steps.open(started, s);
      sets.push(await steps.measure(started, s));
    } finally {
      await steps.close(started);
    }
    onSet(s);
  }
  return sets;
}
