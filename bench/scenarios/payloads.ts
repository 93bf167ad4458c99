/**
 * Binary payloads: sequential echo of one Buffer of 64 KiB, 1 MiB and 16 MiB,
 * in MB/s (payload bytes / round-trip time, 1 MB = 10^6 bytes), for bulkhead
 * (validated `bytes` method) against raw bytes over the same kind of
 * socketpair (the floor), naive cbor-x framing, fork IPC advanced and
 * worker_threads structured clone. Interleaved, rotated every round.
 * @module
 */
import { randomFillSync } from 'node:crypto';
import { loadavg } from 'node:os';
import { CONFIG } from '../common/config.js';
import { fmt, heading, machine, printTable, ratio, writeResult, type ScenarioResult, type TargetRow } from '../common/report.js';
import { spread, type Spread } from '../common/stats.js';
import { bulkheadReleasingTransport, bulkheadTransport, forkTransport, rawBytesTransport, rawCborTransport, workerTransport, type Transport } from '../common/transports.js';

const NAME = 'payloads';
/** Run bulkhead with the caller releasing each result's bytes (the opt-in path) instead of the default. */
const RELEASE = process.env.BENCH_PAYLOAD_RELEASE === '1';
const SIZES = [64 * 1024, 1024 * 1024, 16 * 1024 * 1024];
const label = (size: number) => (size >= 1024 * 1024 ? `${size / 1024 / 1024} MiB` : `${size / 1024} KiB`);

async function echoRate(t: Transport, data: Buffer, echoes: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < echoes; i++) {
    const result = (await t.call('bytes', { data })) as { data: Uint8Array };
    if (result.data.length !== data.length) throw new Error(`${t.name} echoed ${result.data.length} bytes of ${data.length}`);
    t.done?.(result);
  }
  return (data.length * echoes) / ((performance.now() - start) / 1000) / 1e6;
}

/** Runs the scenario. */
export async function runPayloads(): Promise<ScenarioResult> {
  const start = machine();
  heading(`binary payload echo: ${CONFIG.rounds} interleaved rounds of ${Math.round(CONFIG.payloadBytes / 2 ** 20)} MiB (≥ 3 echoes) per size and transport`);
  const transports: Transport[] = [];
  try {
    // BENCH_PAYLOAD_RELEASE=1: bulkhead with the caller giving each result back (releaseBytes) instead of the
    // default path. A run of its own: in one process, a default transport's garbage collections (Node 24/26)
    // would slow every transport measured after it, the baselines included (bench/README.md, round five).
    transports.push(RELEASE ? await bulkheadReleasingTransport('bulkhead + releaseBytes') : await bulkheadTransport('bulkhead (validated)'));
    transports.push(await rawBytesTransport());
    transports.push(await rawCborTransport(false));
    transports.push(await forkTransport('advanced'));
    transports.push(await workerTransport());
    // A fresh, unpooled, random buffer per size: no transport may clone more than the payload.
    const payloads = SIZES.map((size) => randomFillSync(Buffer.alloc(size)));
    const echoesOf = (size: number) => Math.max(3, Math.round(CONFIG.payloadBytes / size));
    // Warm-up, and one check that every transport echoes the bytes themselves.
    for (const t of transports) {
      for (const data of payloads) {
        const back = (await t.call('bytes', { data })) as { data: Uint8Array };
        if (Buffer.compare(Buffer.from(back.data.buffer, back.data.byteOffset, back.data.byteLength), data) !== 0) throw new Error(`${t.name} corrupted a ${data.length}-byte payload`);
        t.done?.(back);
        await echoRate(t, data, Math.min(echoesOf(data.length), 16));
      }
    }
    const rates = new Map<string, number[]>();
    const key = (t: Transport, size: number) => `${t.name}|${size}`;
    for (let round = 0; round < CONFIG.rounds; round++) {
      for (const data of payloads) {
        const order = transports.map((_, i) => transports[(i + round) % transports.length]!);
        for (const t of order) {
          const r = await echoRate(t, data, echoesOf(data.length));
          rates.set(key(t, data.length), [...(rates.get(key(t, data.length)) ?? []), r]);
        }
      }
      process.stdout.write(`  round ${round + 1}/${CONFIG.rounds} done\n`);
    }
    const summary: Record<string, Record<string, Spread>> = {};
    for (const t of transports) summary[t.name] = Object.fromEntries(SIZES.map((s) => [label(s), spread(rates.get(key(t, s))!)]));
    const bulk = transports[0]!;
    const floor = transports[1]!;
    /** Per-round bulkhead/baseline ratios for one size. */
    const rr = (base: Transport, size: number) => spread(rates.get(key(bulk, size))!.map((v, i) => v / rates.get(key(base, size))![i]!));
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
    const goal = (size: number) => (size < 1024 * 1024 ? 0.9 : 0.95);
    const targets: TargetRow[] = SIZES.map((s) => {
      const r = ratios[floor.name]![label(s)]!;
      return {
        scenario: NAME,
        target: `${label(s)} echo ≥ ${fmt(goal(s) * 100, 0)}% of raw-socket MB/s`,
        measured: `${fmt(r.median * 100, 0)}% (${fmt(summary[bulk.name]![label(s)]!.median, 0)} vs ${fmt(summary[floor.name]![label(s)]!.median, 0)} MB/s; per-round ${fmt(r.min * 100, 0)}–${fmt(r.max * 100, 0)}%;${RELEASE ? ' caller releases each result (BENCH_PAYLOAD_RELEASE=1);' : ''} fork IPC advanced ${fmt(summary['fork IPC advanced']![label(s)]!.median, 0)}, worker ${fmt(summary['worker_threads']![label(s)]!.median, 0)}; load ${loadavg()[0]!.toFixed(1)})`,
        met: r.median >= goal(s),
      };
    });
    writeResult(NAME, start, { unit: 'MB/s = payload bytes / round-trip seconds / 1e6', releaseBytes: RELEASE, summary, ratios });
    return { name: NAME, data: { releaseBytes: RELEASE, summary, ratios }, targets };
  } finally {
    for (const t of transports) await t.close().catch(() => undefined);
  }
}
