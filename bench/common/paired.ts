/**
 * Paired differences: two things measured back to back, many times, and judged on the median of
 * their per-pair differences (the launch scenario's helper against its probe). Both members of a
 * pair see the same machine state, so a slow stretch of the machine moves both and cancels out,
 * where a difference of two medians taken minutes apart carries it whole.
 * @module
 */
import { median, percentile } from './stats.js';

/** The median of paired differences with its spread; nothing is discarded. */
export interface PairedSummary {
  /** Pairs measured. */
  n: number;
  /** Median of the per-pair differences (b − a). */
  median: number;
  /** 25th and 75th percentiles of the differences. */
  p25: number;
  p75: number;
  min: number;
  max: number;
  /**
   * A distribution-free ~95% confidence interval of the median: the order statistics whose ranks the
   * binomial(n, ½) distribution puts 2.5% outside on each side. NaN bounds below 6 pairs.
   */
  ciLow: number;
  ciHigh: number;
  /** Every difference, in measurement order. */
  values: number[];
}

/** Ranks (0-based, into the sorted values) bounding a ~95% interval of the median of `n` values. */
export function medianIntervalRanks(n: number): { low: number; high: number } | undefined {
  // Largest k with P(Binomial(n, 1/2) < k) ≤ 2.5%: the interval is [x(k), x(n-1-k)].
  let cumulative = 0;
  let k = 0;
  let term = 0.5 ** n;
  for (let i = 0; i <= n; i++) {
    if (cumulative + term > 0.025) break;
    cumulative += term;
    k = i + 1;
    term = (term * (n - i)) / (i + 1);
  }
  if (k === 0) return undefined;
  return { low: k - 1, high: n - k };
}

/** A distribution-free ~95% interval of the median of `values` (as {@link PairedSummary}'s); NaN bounds below 6 values. */
export function medianInterval(values: readonly number[]): { low: number; high: number } {
  const sorted = [...values].sort((x, y) => x - y);
  const ranks = medianIntervalRanks(sorted.length);
  return ranks === undefined ? { low: Number.NaN, high: Number.NaN } : { low: sorted[ranks.low]!, high: sorted[ranks.high]! };
}

/** Summarises the differences `b[i] − a[i]` of paired measurements (arrays of equal length). */
export function pairedDifferences(a: readonly number[], b: readonly number[]): PairedSummary {
  if (a.length !== b.length) throw new Error(`paired measurements must have equal counts, got ${a.length} and ${b.length}`);
  const values = b.map((x, i) => x - a[i]!);
  const sorted = [...values].sort((x, y) => x - y);
  const ranks = medianIntervalRanks(sorted.length);
  return {
    n: values.length,
    median: median(values),
    p25: percentile(sorted, 0.25),
    p75: percentile(sorted, 0.75),
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
    ciLow: ranks === undefined ? Number.NaN : sorted[ranks.low]!,
    ciHigh: ranks === undefined ? Number.NaN : sorted[ranks.high]!,
    values,
  };
}
