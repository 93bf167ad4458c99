/**
 * Binary payloads: sequential echo of one Buffer of 64 KiB, 1 MiB and 16 MiB,
 * in MB/s (payload bytes / round-trip time, 1 MB = 10^6 bytes), for bulkhead
 * (validated `bytes` method) against raw bytes over the same kind of
 * socketpair (the floor), naive cbor-x framing, fork IPC advanced and
 * worker_threads structured clone. Each transport's caller runs in a
 * long-lived process of its own (payloads-process.ts), as in a user's
 * process: on Node 24/26 one transport's dead buffers would otherwise drive
 * the garbage collections every other transport is timed under (bench/README.md,
 * round six). This process orders the runs: interleaved, rotated every round,
 * so that drift in the machine's load cancels out of the per-round ratios.
 * The targets are judged on the median over process sets of the per-set ratio
 * bulkhead / raw socket (the main run's callers and fresh pairs of callers,
 * payloads-sets.ts), with a ~95% interval; the main run's own figures stay beside.
 * @module
 */
import { loadavg } from 'node:os';
import { CallerProcess } from '../common/caller-process.js';
import { CONFIG } from '../common/config.js';
import { PAYLOAD_SIZES as SIZES, echoesOf, sizeLabel as label, warmupEchoes, type PayloadTransportKind } from '../common/payload-echo.js';
import { fmt, heading, machine, printTable, ratio, writeResult, type ScenarioResult, type TargetRow } from '../common/report.js';
import { spread, type Spread } from '../common/stats.js';
import { describePayloadSetVerdict, freshPayloadSets, notDecisive, payloadSetVerdict, setFromRounds, type PayloadSet } from './payloads-sets.js';

const NAME = 'payloads';
/** Run bulkhead with the caller releasing each result's bytes (the opt-in path) instead of the default. */
const RELEASE = process.env.BENCH_PAYLOAD_RELEASE === '1';

/** One transport as this process sees it: its caller process and the transport's name. */
interface Measured {
  readonly name: string;
  readonly caller: CallerProcess;
}

/** Runs the scenario. */
export async function runPayloads(): Promise<ScenarioResult> {
  const start = machine();
  heading(`binary payload echo: ${CONFIG.rounds} interleaved rounds of ${Math.round(CONFIG.payloadBytes / 2 ** 20)} MiB (≥ 3 echoes) per size and transport, after ${warmupEchoes()} untimed echoes of ${label(SIZES[0]!)}; each transport's caller runs in its own process; then ${CONFIG.payloadSets} fresh bulkhead + raw socket caller pairs of ${CONFIG.payloadSetRounds} rounds each for the verdict`);
  const transports: Measured[] = [];
  try {
    // BENCH_PAYLOAD_RELEASE=1: bulkhead with the caller giving each result back (releaseBytes) instead of the
    // default path. Kept as a variant of its own (the targets judge the default path); with every caller in its
    // own process the two no longer disturb each other, but one bulkhead row keeps the table and targets as they are.
    const kinds: PayloadTransportKind[] = [RELEASE ? 'bulkhead-release' : 'bulkhead', 'raw', 'cbor', 'fork', 'worker'];
    for (const kind of kinds) {
      const { caller, name } = await CallerProcess.start(kind);
      transports.push({ name, caller });
    }
    // Warm-up, and one check that every transport echoes the bytes themselves (in each caller's process):
    // every transport gets the same number of untimed echoes, enough for V8 to optimize its JavaScript.
    for (const t of transports) await t.caller.warmup(warmupEchoes());
    const rates = new Map<string, number[]>();
    /** CPU µs per echo, caller's process + peer's (a worker thread's is in the caller's), per run. */
    const cpus = new Map<string, { caller: number; peer: number }[]>();
    const key = (t: Measured, size: number) => `${t.name}|${size}`;
    const ratesOf = (t: Measured) => Object.fromEntries(SIZES.map((s) => [s, rates.get(key(t, s))!]));
    for (let round = 0; round < CONFIG.rounds; round++) {
      for (const size of SIZES) {
        const order = transports.map((_, i) => transports[(i + round) % transports.length]!);
        for (const t of order) {
          const r = await t.caller.rate(size, echoesOf(size));
          rates.set(key(t, size), [...(rates.get(key(t, size)) ?? []), r.rate]);
          cpus.set(key(t, size), [...(cpus.get(key(t, size)) ?? []), { caller: r.callerCpu, peer: r.peerCpu }]);
        }
      }
      process.stdout.write(`  round ${round + 1}/${CONFIG.rounds} done\n`);
    }
    // The verdict over several independent process sets: the main run's bulkhead and raw callers, then fresh pairs
    // of callers (payloads-sets.ts says why: one caller process's GC state is one draw).
    const sets: PayloadSet[] = [setFromRounds(ratesOf(transports[0]!), ratesOf(transports[1]!))];
    sets.push(...(await freshPayloadSets(kinds[0]!, (s) => process.stdout.write(`  process set ${s + 2}/${CONFIG.payloadSets + 1} done (load ${loadavg()[0]!.toFixed(2)})\n`))));
    const summary: Record<string, Record<string, Spread>> = {};
    for (const t of transports) summary[t.name] = Object.fromEntries(SIZES.map((s) => [label(s), spread(rates.get(key(t, s))!)]));
    /** Median CPU µs per echo of the caller's process and of the peer, by transport and size. */
    const cpu: Record<string, Record<string, { caller: number; peer: number }>> = {};
    for (const t of transports) {
      cpu[t.name] = Object.fromEntries(
        SIZES.map((s) => {
          const runs = cpus.get(key(t, s))!;
          return [label(s), { caller: spread(runs.map((c) => c.caller)).median, peer: spread(runs.map((c) => c.peer)).median }];
        }),
      );
    }
    const bulk = transports[0]!;
    const floor = transports[1]!;
    /** Per-round bulkhead/baseline ratios for one size. */
    const rr = (base: Measured, size: number) => spread(rates.get(key(bulk, size))!.map((v, i) => v / rates.get(key(base, size))![i]!));
    const ratios: Record<string, Record<string, Spread>> = {};
    for (const t of transports.slice(1)) ratios[t.name] = Object.fromEntries(SIZES.map((s) => [label(s), rr(t, s)]));
    printTable(
      ['transport', ...SIZES.map((s) => `${label(s)} MB/s [min–max]`), ...SIZES.map((s) => `bulkhead/it ${label(s)}`)],
      transports.map((t) => [
        t.name,
        ...SIZES.map((s) => {
          const x = summary[t.name]![label(s)]!;
          return `${fmt(x.median, 0)} [${fmt(x.min, 0)}–${fmt(x.max, 0)}]`;
        }),
        ...SIZES.map((s) => (t === bulk ? '' : ratio(ratios[t.name]![label(s)]!.median))),
      ]),
    );
    console.log('  MB/s = payload bytes / round-trip time (10^6 bytes); ratios are medians of per-round ratios.');
    printTable(
      ['CPU µs per echo, caller + peer (medians)', ...SIZES.map((s) => label(s))],
      transports.map((t) => [t.name, ...SIZES.map((s) => `${fmt(cpu[t.name]![label(s)]!.caller, 0)} + ${fmt(cpu[t.name]![label(s)]!.peer, 0)}`)]),
    );
    console.log('  CPU from process.cpuUsage and /proc (10 ms ticks for the peer): robust to the machine\'s load where the rates are not.');
    const cpuOf = (t: Measured, s: number) => `${fmt(cpu[t.name]![label(s)]!.caller, 0)} + ${fmt(cpu[t.name]![label(s)]!.peer, 0)}`;
    const goal = (size: number) => (size < 1024 * 1024 ? 0.9 : 0.95);
    const verdicts = Object.fromEntries(SIZES.map((s) => [label(s), payloadSetVerdict(sets, s)]));
    const targets: TargetRow[] = SIZES.map((s) => {
      const r = ratios[floor.name]![label(s)]!;
      const v = verdicts[label(s)]!;
      return {
        scenario: NAME,
        target: `${label(s)} echo ≥ ${fmt(goal(s) * 100, 0)}% of raw-socket MB/s`,
        measured: `${describePayloadSetVerdict(v, goal(s))}; first set alone ${fmt(r.median * 100, 0)}% (${fmt(summary[bulk.name]![label(s)]!.median, 0)} vs ${fmt(summary[floor.name]![label(s)]!.median, 0)} MB/s; per-round ${fmt(r.min * 100, 0)}–${fmt(r.max * 100, 0)}%;${RELEASE ? ' caller releases each result (BENCH_PAYLOAD_RELEASE=1);' : ''} CPU µs per echo caller + peer ${cpuOf(bulk, s)} vs ${cpuOf(floor, s)}; fork IPC advanced ${fmt(summary['fork IPC advanced']![label(s)]!.median, 0)}, worker ${fmt(summary['worker_threads']![label(s)]!.median, 0)}; load ${loadavg()[0]!.toFixed(1)})`,
        met: v.median >= goal(s),
      };
    });
    for (const s of SIZES) {
      const v = verdicts[label(s)]!;
      console.log(`  ${label(s)} bulkhead / raw socket per process set (the first is the run above): ${v.ratios.map((x) => `${fmt(x * 100, 0)}%`).join(', ')}; median ${fmt(v.median * 100, 0)}%${notDecisive(v, goal(s)) ? ' (not decisive)' : ''}`);
    }
    writeResult(NAME, start, { unit: 'MB/s = payload bytes / round-trip seconds / 1e6; cpuMicrosPerEcho: caller process, peer process', releaseBytes: RELEASE, warmupEchoes: warmupEchoes(), summary, ratios, cpuMicrosPerEcho: cpu, processSets: sets, setVerdicts: verdicts });
    return { name: NAME, data: { releaseBytes: RELEASE, warmupEchoes: warmupEchoes(), summary, ratios, cpuMicrosPerEcho: cpu, setVerdicts: verdicts }, targets };
  } finally {
    // Every caller process exits, on success and on failure alike.
    await Promise.all(transports.map((t) => t.caller.close()));
  }
}
