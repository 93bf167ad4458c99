/**
 * Streams (issue 16) against the same data sent as plain calls, on one
 * embedded broker and helper:
 * - small items: items/s of one `yields` stream of N items vs N plain calls
 *   returning one item each, pipelined (256 in flight, as small-calls does);
 * - 1 MiB chunks: MB/s of a stream of chunks, download and upload, vs the
 *   same chunks as plain calls (sequential, and 4 in flight), and vs the
 *   16 MiB echo of the payloads scenario (issue 16 asks for chunk streams
 *   "at close to the 16 MiB echo rate"), measured in the same rounds;
 * - a slow consumer (5 ms per 1 MiB chunk) against a fast producer: the
 *   peak memory of the consumer (this process) and of the helper.
 * Interleaved, rotated every round; medians of rounds with their spread.
 * @module
 */
import { randomFillSync } from 'node:crypto';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Broker } from 'bulkhead';
import { CONFIG } from '../common/config.js';
import { FIXTURES, fmt, heading, kilo, machine, printTable, ratio, writeResult, type ScenarioResult } from '../common/report.js';
import { spread, type Spread } from '../common/stats.js';
import { BENCH_LAUNCH, BENCH_MAX_FRAME_BYTES } from '../common/transports.js';

const NAME = 'streams';
const MiB = 1024 * 1024;
const CHUNK = MiB;

type Conn = ReturnType<Broker['connect']>;

/** Runs `calls` plain calls with at most `window` in flight. */
async function pipelined(calls: number, window: number, call: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < calls) await call(next++);
  };
  await Promise.all(Array.from({ length: Math.min(window, calls) }, lane));
}

async function timed(work: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await work();
  return (performance.now() - start) / 1000;
}

/** Runs the scenario. */
export async function runStreams(): Promise<ScenarioResult> {
  const start = machine();
  const items = CONFIG.pipelined;
  const chunkCount = Math.max(16, Math.round(CONFIG.streamBytes / CHUNK));
  heading(`streams vs plain calls: ${CONFIG.rounds} interleaved rounds of ${items} small items and ${chunkCount} × 1 MiB chunks`);
  const broker = new Broker({ root: FIXTURES, maxFrameBytes: BENCH_MAX_FRAME_BYTES });
  try {
    broker.register({ name: 'streams', entry: './streams-service.js', protocol: 'com.bench.streams', launch: { ...BENCH_LAUNCH } });
    const conn: Conn = broker.connect('streams');
    await conn.call('item', { i: 0 });
    // The payloads scenario's bulkhead echo, on the same broker: the rate the chunk streams are held to.
    broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.bench.echo', launch: { ...BENCH_LAUNCH } });
    const echo = broker.connect('echo');
    const echoData = randomFillSync(Buffer.alloc(16 * MiB));
    const echoes = Math.max(3, Math.round(chunkCount * CHUNK / echoData.length));

    const variants: Record<string, () => Promise<number>> = {
      'items: stream': async () => {
        let n = 0;
        const s = await timed(async () => {
          for await (const _ of conn.stream('items', { n: items })) n++;
        });
        if (n !== items) throw new Error(`stream gave ${n} items of ${items}`);
        return items / s;
      },
      'items: plain calls, 256 in flight': async () => items / await timed(() => pipelined(items, CONFIG.window, (i) => conn.call('item', { i }))),
      'chunks down: stream': async () => {
        let bytes = 0;
        const s = await timed(async () => {
          for await (const c of conn.stream('chunks', { count: chunkCount, size: CHUNK })) bytes += (c as Uint8Array).length;
        });
        if (bytes !== chunkCount * CHUNK) throw new Error(`stream gave ${bytes} bytes`);
        return bytes / s / 1e6;
      },
      'chunks down: plain calls, sequential': async () => chunkCount * CHUNK / await timed(() => pipelined(chunkCount, 1, () => conn.call('chunk', { size: CHUNK }))) / 1e6,
      'chunks down: plain calls, 4 in flight': async () => chunkCount * CHUNK / await timed(() => pipelined(chunkCount, 4, () => conn.call('chunk', { size: CHUNK }))) / 1e6,
      'chunks up: stream': async () => {
        const data = Buffer.alloc(CHUNK, 3);
        let total = 0;
        const s = await timed(async () => {
          total = await conn.stream('upload', {}, { input: (function* () { for (let c = 0; c < chunkCount; c++) yield data; })() }).result as number;
        });
        if (total !== chunkCount * CHUNK) throw new Error(`upload counted ${total} bytes`);
        return total / s / 1e6;
      },
      'chunks up: plain calls, sequential': async () => {
        const data = Buffer.alloc(CHUNK, 3);
        return chunkCount * CHUNK / await timed(() => pipelined(chunkCount, 1, () => conn.call('put', { data }))) / 1e6;
      },
      'echo 16 MiB: plain calls, sequential': async () => {
        const s = await timed(async () => {
          for (let i = 0; i < echoes; i++) {
            const back = await echo.call('bytes', { data: echoData }) as { data: Uint8Array };
            if (back.data.length !== echoData.length) throw new Error(`echo gave ${back.data.length} bytes`);
          }
        });
        return echoes * echoData.length / s / 1e6;
      },
    };
    // Warm-up.
    for (const run of Object.values(variants)) await run();
    const rates = new Map<string, number[]>();
    const names = Object.keys(variants);
    for (let round = 0; round < CONFIG.rounds; round++) {
      const order = names.map((_, i) => names[(i + round) % names.length]!);
      for (const name of order) rates.set(name, [...(rates.get(name) ?? []), await variants[name]!()]);
      process.stdout.write(`  round ${round + 1}/${CONFIG.rounds} done\n`);
    }
    const summary: Record<string, Spread> = Object.fromEntries(names.map((n) => [n, spread(rates.get(n)!)]));
    const per = (a: string, b: string) => spread(rates.get(a)!.map((v, i) => v / rates.get(b)![i]!));
    const ratios = {
      'items: stream / plain calls': per('items: stream', 'items: plain calls, 256 in flight'),
      'chunks down: stream / sequential calls': per('chunks down: stream', 'chunks down: plain calls, sequential'),
      'chunks down: stream / 4 in flight': per('chunks down: stream', 'chunks down: plain calls, 4 in flight'),
      'chunks up: stream / sequential calls': per('chunks up: stream', 'chunks up: plain calls, sequential'),
      'chunks down: stream / 16 MiB echo': per('chunks down: stream', 'echo 16 MiB: plain calls, sequential'),
      'chunks up: stream / 16 MiB echo': per('chunks up: stream', 'echo 16 MiB: plain calls, sequential'),
    };
    printTable(['variant', 'rate [min–max]'], names.map((n) => {
      const s = summary[n]!;
      return [n, n.startsWith('items') ? `${kilo(s.median)} items/s [${kilo(s.min)}–${kilo(s.max)}]` : `${fmt(s.median, 0)} MB/s [${fmt(s.min, 0)}–${fmt(s.max, 0)}]`];
    }));
    printTable(['ratio', 'median [min–max]'], Object.entries(ratios).map(([k, r]) => [k, `${ratio(r.median)} [${ratio(r.min)}–${ratio(r.max)}]`]));

    // A slow consumer: 5 ms per chunk, against a producer that could go at hundreds of MB/s.
    // Memory is sampled after a full GC at every chunk: what the stream holds, not garbage.
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const slowChunks = Math.max(32, Math.round(chunkCount / 2));
    gc();
    const baseline = process.memoryUsage();
    let peakRss = 0;
    let peakHeap = 0;
    let peakExternal = 0;
    const sample = () => {
      gc();
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss - baseline.rss);
      peakHeap = Math.max(peakHeap, m.heapUsed - baseline.heapUsed);
      peakExternal = Math.max(peakExternal, m.arrayBuffers - baseline.arrayBuffers);
    };
    const stream = conn.stream('chunks', { count: slowChunks, size: CHUNK });
    for await (const _ of stream) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      sample();
    }
    const helper = await stream.result as { peakRss: number };
    const slow = { chunks: slowChunks, consumerRssPeakMiB: peakRss / MiB, consumerHeapPeakMiB: peakHeap / MiB, consumerBuffersPeakMiB: peakExternal / MiB, helperRssPeakMiB: helper.peakRss / MiB };
    console.log(`  slow consumer (${slowChunks} × 1 MiB, 5 ms each): consumer peak after GC above baseline: rss +${fmt(slow.consumerRssPeakMiB)} MiB, heap +${fmt(slow.consumerHeapPeakMiB)} MiB, buffers +${fmt(slow.consumerBuffersPeakMiB)} MiB; helper peak rss ${fmt(slow.helperRssPeakMiB)} MiB (window: 4 MiB + one item per direction)`);

    writeResult(NAME, start, { unit: 'items/s; MB/s = payload bytes / seconds / 1e6', summary, ratios, slowConsumer: slow });
    const targets = [
      { scenario: NAME, target: 'small items: stream vs plain calls (items/s)', measured: `${ratio(ratios['items: stream / plain calls'].median)} (${kilo(summary['items: stream']!.median)} vs ${kilo(summary['items: plain calls, 256 in flight']!.median)} items/s)`, met: null },
      { scenario: NAME, target: '1 MiB chunks down: stream vs plain calls (MB/s)', measured: `${ratio(ratios['chunks down: stream / sequential calls'].median)} of sequential, ${ratio(ratios['chunks down: stream / 4 in flight'].median)} of 4 in flight (${fmt(summary['chunks down: stream']!.median, 0)} vs ${fmt(summary['chunks down: plain calls, sequential']!.median, 0)} / ${fmt(summary['chunks down: plain calls, 4 in flight']!.median, 0)} MB/s)`, met: null },
      { scenario: NAME, target: '1 MiB chunks up: stream vs plain calls (MB/s)', measured: `${ratio(ratios['chunks up: stream / sequential calls'].median)} (${fmt(summary['chunks up: stream']!.median, 0)} vs ${fmt(summary['chunks up: plain calls, sequential']!.median, 0)} MB/s)`, met: null },
      { scenario: NAME, target: '1 MiB chunk streams ≥ 90% of the 16 MiB echo rate', measured: `down ${ratio(ratios['chunks down: stream / 16 MiB echo'].median)} [${ratio(ratios['chunks down: stream / 16 MiB echo'].min)}–${ratio(ratios['chunks down: stream / 16 MiB echo'].max)}], up ${ratio(ratios['chunks up: stream / 16 MiB echo'].median)} [${ratio(ratios['chunks up: stream / 16 MiB echo'].min)}–${ratio(ratios['chunks up: stream / 16 MiB echo'].max)}] (echo ${fmt(summary['echo 16 MiB: plain calls, sequential']!.median, 0)} MB/s)`, met: ratios['chunks down: stream / 16 MiB echo'].median >= 0.9 && ratios['chunks up: stream / 16 MiB echo'].median >= 0.9 },
      { scenario: NAME, target: 'slow consumer of 1 MiB chunks: peak memory', measured: `consumer after GC: buffers +${fmt(slow.consumerBuffersPeakMiB)} MiB, rss +${fmt(slow.consumerRssPeakMiB)} MiB; helper rss ${fmt(slow.helperRssPeakMiB)} MiB`, met: null },
    ];
    return { name: NAME, data: { summary, ratios, slowConsumer: slow }, targets };
  } finally {
    await broker.close();
  }
}
