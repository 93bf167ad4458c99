/**
 * The payload echo's verdict over several independent process sets (issue 19, round nine). Within one caller
 * process the per-round ratio bulkhead / raw socket swings widely (Node 24, 64 KiB: 66–118% per round in one
 * quiet run), and much of it is the process's own garbage-collector state: whether the caller has fallen into
 * V8's mark-compact loop depends on the young generation's size at its last mark-compact (bench/README.md,
 * "Round eight: payload echo"), which differs from process to process. One bulkhead caller against one raw
 * caller is therefore one draw. Each extra set here is a fresh bulkhead caller (broker + helper) and a fresh
 * raw-socket caller, each in its own process (payloads-process.ts), warmed up as the main run's, then timed
 * over a few rounds of every size (interleaved, order rotated every round, so load drift cancels out of each
 * round's ratio) and closed before the next set starts. A set's ratio is the median of its rounds' ratios;
 * the verdict is the median over sets, with a distribution-free ~95% interval and "not decisive" when that
 * interval holds the target. The same treatment the pinned round trip got (small-calls-processes.ts).
 * @module
 */
import { CallerProcess } from '../common/caller-process.js';
import { CONFIG } from '../common/config.js';
import { PAYLOAD_SIZES, echoesOf, warmupEchoes, type PayloadTransportKind } from '../common/payload-echo.js';
import { freshSets, notDecisive, setSpread, type SetSpread } from '../common/process-sets.js';
import { fmt } from '../common/report.js';
import { median } from '../common/stats.js';

/** One process set: per payload size, the ratio bulkhead / raw socket of each round, and the set's MB/s medians. */
export interface PayloadSet {
  /** Per size (bytes): bulkhead MB/s / raw MB/s, one value per round. */
  roundRatios: Record<number, number[]>;
  /** Per size: the median MB/s of bulkhead and of the raw socket over the set's rounds. */
  bulkheadRate: Record<number, number>;
  rawRate: Record<number, number>;
}

/** A set from the main run's measurements (its per-round rates of bulkhead and the raw socket). */
export function setFromRounds(bulkheadRates: Record<number, readonly number[]>, rawRates: Record<number, readonly number[]>): PayloadSet {
  const set: PayloadSet = { roundRatios: {}, bulkheadRate: {}, rawRate: {} };
  for (const size of PAYLOAD_SIZES) {
    const b = bulkheadRates[size]!;
    const r = rawRates[size]!;
    set.roundRatios[size] = b.map((v, i) => v / r[i]!);
    set.bulkheadRate[size] = median(b);
    set.rawRate[size] = median(r);
  }
  return set;
}

/**
 * `CONFIG.payloadSets` fresh sets of a bulkhead caller (`bulkheadKind`) and a raw-socket caller, each warmed
 * up with the main run's echoes and timed over `CONFIG.payloadSetRounds` rounds of every payload size.
 */
export function freshPayloadSets(bulkheadKind: PayloadTransportKind, onSet: (index: number) => void): Promise<PayloadSet[]> {
  return freshSets<CallerProcess, PayloadSet>(CONFIG.payloadSets, {
    open: async (callers) => {
      for (const kind of [bulkheadKind, 'raw'] as const) callers.push((await CallerProcess.start(kind)).caller);
      for (const c of callers) await c.warmup(warmupEchoes());
    },
    measure: async (callers, s) => {
      const rates = callers.map(() => new Map<number, number[]>(PAYLOAD_SIZES.map((size) => [size, []])));
      for (let round = 0; round < CONFIG.payloadSetRounds; round++) {
        for (const size of PAYLOAD_SIZES) {
          // Which caller goes first alternates with the round (and with the set, so the first round is not always bulkhead's).
          const first = (round + s) % 2;
          for (const i of [first, 1 - first]) rates[i]!.get(size)!.push((await callers[i]!.rate(size, echoesOf(size))).rate);
        }
      }
      return setFromRounds(Object.fromEntries(rates[0]!), Object.fromEntries(rates[1]!));
    },
    close: async (callers) => {
      await Promise.all(callers.map((c) => c.close()));
    },
  }, onSet);
}

/** The verdict figure of one size over process sets: the median of per-set ratios (each the median of the set's per-round ratios) with its spread and interval. */
export type PayloadSetVerdict = SetSpread;

/** Median over sets of each set's median per-round ratio at `size`. */
export function payloadSetVerdict(sets: readonly PayloadSet[], size: number): PayloadSetVerdict {
  return setSpread(sets.map((s) => median(s.roundRatios[size]!)));
}

export { notDecisive };

/** "93% median of 9 process sets (per set 88, 95, …%; ~95% interval 85–101%, not decisive)". */
export function describePayloadSetVerdict(v: PayloadSetVerdict, target: number): string {
  const pct = (x: number) => fmt(x * 100, 0);
  const interval = Number.isNaN(v.ciLow) ? 'no ~95% interval below 6 sets' : `~95% interval ${pct(v.ciLow)}–${pct(v.ciHigh)}%${notDecisive(v, target) ? ', not decisive' : ''}`;
  return `${pct(v.median)}% median of ${v.ratios.length} process sets (per set ${v.ratios.map(pct).join(', ')}%; ${interval})`;
}
