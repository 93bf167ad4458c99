/**
 * The pinned round trip over several independent process sets (issue 19, round eight): the pinned p50
 * ratio bulkhead / baseline is stable from round to round within one process but moves by up to 0.25
 * between processes of the same build (bench/README.md, "Round eight: small calls"), so one broker +
 * helper against one baseline process is one draw. Each extra set here is a fresh bulkhead broker and
 * helper, a fresh `fork` JSON child and fresh raw socketpair children, warmed up as the main run's, then
 * measured pinned (every process of the set on one CPU, alternating CPU between rounds, order rotated
 * every round) and closed before the next set starts.
 * @module
 */
import { CONFIG } from '../common/config.js';
import { latency, pipelined } from '../common/measure.js';
import { cpuForRound, pin, unpin } from '../common/pin.js';
import { freshSets, notDecisive, setSpread, type SetSpread } from '../common/process-sets.js';
import { fmt } from '../common/report.js';
import { median } from '../common/stats.js';
import { bulkheadTransport, forkTransport, rawCborTransport, type Transport } from '../common/transports.js';

/** One process set's pinned p50 (µs, median of its rounds) per transport name. */
export type ProcessSet = Record<string, number>;

/** Pinned p50 of each of `transports` per round, `rounds` rounds, the CPU alternating from `firstRound` on. */
export async function pinnedRounds(transports: readonly Transport[], rounds: number, firstRound: number): Promise<Map<Transport, number[]>> {
  const out = new Map<Transport, number[]>(transports.map((t) => [t, []]));
  const pids = [process.pid, ...transports.map((t) => t.peerPid).filter((p): p is number => p !== undefined)];
  for (let round = 0; round < rounds; round++) {
    const order = transports.map((_, i) => transports[(i + round) % transports.length]!);
    pin(pids, cpuForRound(firstRound + round));
    try {
      for (const t of order) out.get(t)!.push((await latency(t, CONFIG.sequential)).p50);
    } finally {
      unpin(pids);
    }
  }
  return out;
}

/**
 * `CONFIG.processSets` fresh sets of bulkhead, fork JSON and both raw floors, each warmed up as the main
 * run (sequential, then pipelined calls) and measured over `CONFIG.processRounds` pinned rounds.
 * `bulkheadName` names bulkhead's entry as the main run does, so the sets line up with its own.
 */
export function freshProcessSets(bulkheadName: string, onSet: (index: number) => void): Promise<ProcessSet[]> {
  return freshSets<Transport, ProcessSet>(CONFIG.processSets, {
    open: async (transports) => {
      transports.push(await bulkheadTransport(bulkheadName));
      transports.push(await forkTransport('json'));
      transports.push(await rawCborTransport(false));
      transports.push(await rawCborTransport(true));
      for (const t of transports) {
        await latency(t, CONFIG.warmup);
        await pipelined(t, CONFIG.window * 8);
      }
    },
    measure: async (transports, s) => {
      const rounds = await pinnedRounds(transports, CONFIG.processRounds, s * CONFIG.processRounds);
      return Object.fromEntries([...rounds].map(([t, p50s]) => [t.name, median(p50s)]));
    },
    close: async (transports) => {
      for (const t of transports) await t.close().catch(() => undefined);
    },
  }, onSet);
}

/** The verdict figure over process sets: the median of per-set ratios bulkhead / baseline with its spread and interval. */
export interface SetRatios extends SetSpread {
  /** Median of the sets' own p50s, bulkhead and baseline (µs), and their ratio: printed beside, not judged. */
  bulkheadP50: number;
  baselineP50: number;
}

/**
 * Judged on the median of per-set ratios rather than the ratio of the medians of per-process p50s: the
 * two members of a set are measured in the same minute, interleaved round by round on the same CPUs,
 * so a change in the machine's load between sets (3 to 18 here) cancels in the ratio, where two medians
 * of p50s would compare processes measured minutes apart. Each set's ratio carries both processes'
 * own state (the per-process lottery); the median over sets is what keeps one draw from deciding.
 */
export function setRatios(sets: readonly ProcessSet[], bulkhead: string, baseline: string): SetRatios {
  return {
    ...setSpread(sets.map((s) => s[bulkhead]! / s[baseline]!)),
    bulkheadP50: median(sets.map((s) => s[bulkhead]!)),
    baselineP50: median(sets.map((s) => s[baseline]!)),
  };
}

/** "1.08× median of 7 process sets (per set 1.02–1.21; ~95% interval 1.02–1.21; p50 µs …)" plus "not decisive" when the interval holds `target`. */
export function describeSetRatios(r: SetRatios, target: number): string {
  const interval = Number.isNaN(r.ciLow) ? 'no ~95% interval below 6 sets' : `~95% interval ${fmt(r.ciLow, 2)}–${fmt(r.ciHigh, 2)}${notDecisive(r, target) ? ', not decisive' : ''}`;
  return `${fmt(r.median, 2)}× median of ${r.ratios.length} process sets pinned (per set ${r.ratios.map((x) => fmt(x, 2)).join(', ')}; ${interval}; median p50 ${fmt(r.bulkheadP50)} vs ${fmt(r.baselineP50)} µs)`;
}
