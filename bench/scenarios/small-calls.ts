/**
 * Small calls: sequential round-trip latency (p50/p99) and pipelined
 * throughput (calls/s with `window` in flight) with CPU µs per call on each
 * side, for bulkhead (validation on both ends) and every baseline, in the
 * same run, interleaved round by round, after a warm-up.
 * @module
 */
import { CONFIG } from '../common/config.js';
import { latency, pipelined } from '../common/measure.js';
import { fmt, heading, kilo, machine, printTable, ratio, withSpread, writeResult, type ScenarioResult, type TargetRow } from '../common/report.js';
import { median, spread, type Spread } from '../common/stats.js';
import { MESSAGE, bulkheadTransport, forkTransport, grpcTransport, rawCborTransport, workerTransport, type Transport } from '../common/transports.js';

const NAME = 'small-calls';

function isGrpc(t: Transport): boolean {
  return t.name.startsWith('grpc');
}

interface PerTransport {
  p50: number[];
  p99: number[];
  rate: number[];
  cpuSelf: number[];
  cpuPeer: number[];
}

/** Runs the scenario. */
export async function runSmallCalls(): Promise<ScenarioResult> {
  const start = machine();
  heading(`small calls: ${CONFIG.rounds} interleaved rounds; ${CONFIG.sequential} sequential calls (gRPC ${CONFIG.grpcSequential}); ${CONFIG.pipelined} pipelined with ${CONFIG.window} in flight (gRPC ${CONFIG.grpcPipelined})`);
  const transports: Transport[] = [];
  try {
    transports.push(await bulkheadTransport('bulkhead (validated)'));
    transports.push(await forkTransport('json'));
    transports.push(await forkTransport('advanced'));
    transports.push(await rawCborTransport(false));
    transports.push(await rawCborTransport(true));
    transports.push(await workerTransport());
    transports.push(await grpcTransport());
    const seqOf = (t: Transport) => (isGrpc(t) ? CONFIG.grpcSequential : CONFIG.sequential);
    const pipeOf = (t: Transport) => (isGrpc(t) ? CONFIG.grpcPipelined : CONFIG.pipelined);
    for (const t of transports) {
      await latency(t, isGrpc(t) ? Math.ceil(CONFIG.warmup / 5) : CONFIG.warmup);
      await pipelined(t, Math.min(pipeOf(t), CONFIG.window * 8));
    }
    // What the measuring loop itself costs per call (promise, lane bookkeeping), for reading the CPU columns.
    const harness: Transport = { name: 'harness alone', call: () => Promise.resolve(MESSAGE), events: 0, peerPid: undefined, close: async () => {} };
    const harnessCpu: number[] = [];
    const results = new Map<Transport, PerTransport>(transports.map((t) => [t, { p50: [], p99: [], rate: [], cpuSelf: [], cpuPeer: [] }]));
    for (let round = 0; round < CONFIG.rounds; round++) {
      // Rotate the order every round so drift in the machine's load hits every transport alike.
      const order = transports.map((_, i) => transports[(i + round) % transports.length]!);
      for (const t of order) {
        const l = await latency(t, seqOf(t));
        results.get(t)!.p50.push(l.p50);
        results.get(t)!.p99.push(l.p99);
      }
      for (const t of order) {
        const p = await pipelined(t, pipeOf(t));
        const r = results.get(t)!;
        r.rate.push(p.rate);
        r.cpuSelf.push(p.cpuSelf);
        r.cpuPeer.push(p.cpuPeer);
      }
      harnessCpu.push((await pipelined(harness, CONFIG.pipelined)).cpuSelf);
      process.stdout.write(`  round ${round + 1}/${CONFIG.rounds} done\n`);
    }

    const bulk = transports[0]!;
    const b = results.get(bulk)!;
    const summary: Record<string, Record<string, Spread>> = {};
    for (const [t, r] of results) {
      summary[t.name] = { p50us: spread(r.p50), p99us: spread(r.p99), callsPerSec: spread(r.rate), cpuUsPerCallSelf: spread(r.cpuSelf), cpuUsPerCallPeer: spread(r.cpuPeer) };
    }
    /** Per-round ratio bulkhead/baseline (rounds are interleaved, so this cancels slow drift). */
    const roundRatios = (field: keyof PerTransport, base: Transport) => spread(b[field].map((v, i) => v / results.get(base)![field][i]!));
    const ratios: Record<string, { p50: Spread; p99: Spread; throughput: Spread }> = {};
    for (const t of transports.slice(1)) ratios[t.name] = { p50: roundRatios('p50', t), p99: roundRatios('p99', t), throughput: roundRatios('rate', t) };

    printTable(
      ['transport', 'p50 µs [min–max]', 'p99 µs', 'calls/s [min–max]', 'CPU µs/call self', 'peer', 'p50 ratio', 'tput ratio'],
      transports.map((t) => {
        const s = summary[t.name]!;
        const rr = ratios[t.name];
        return [
          t.name,
          withSpread(s['p50us']!),
          fmt(s['p99us']!.median),
          `${kilo(s['callsPerSec']!.median)} [${kilo(s['callsPerSec']!.min)}–${kilo(s['callsPerSec']!.max)}]`,
          fmt(s['cpuUsPerCallSelf']!.median, 2),
          t.peerPid === undefined ? '(same)' : fmt(s['cpuUsPerCallPeer']!.median, 2),
          rr === undefined ? '' : ratio(rr.p50.median),
          rr === undefined ? '' : ratio(rr.throughput.median),
        ];
      }),
    );
    console.log('  ratios are bulkhead/baseline, medians of per-round ratios; CPU "self" is this process (broker/client side; for worker_threads both threads), "peer" the helper process from /proc.');
    console.log(`  the measuring loop alone (a call that resolves at once) costs ${fmt(median(harnessCpu), 2)} µs CPU per call of "self"; it is included in every "self" figure.`);
    if (transports[5]!.peerPid === undefined) console.log('  worker_threads: both sides run in this process, so its CPU figure is the sum of both.');

    const byName = (n: string) => transports.find((t) => t.name === n)!;
    const json = byName('fork IPC json');
    const grpc = transports.find(isGrpc)!;
    const floorOff = byName('socketpair + cbor-x');
    const floorOn = byName('socketpair + cbor-x records');
    const bp50 = median(b.p50);
    const rOff = ratios[floorOff.name]!.p50;
    const rOn = ratios[floorOn.name]!.p50;
    const worst = Math.max(rOff.median, rOn.median);
    const rJson = ratios[json.name]!;
    const rGrpc = ratios[grpc.name]!;
    const cpuSelf = median(b.cpuSelf);
    const cpuPeer = median(b.cpuPeer);
    const targets: TargetRow[] = [
      {
        scenario: NAME,
        target: 'round trip p50 ≤ 1.1× raw socket + cbor-x (validated)',
        measured: `${ratio(rOff.median)} vs records off, ${ratio(rOn.median)} vs records on (${fmt(bp50)} vs ${fmt(median(results.get(floorOff)!.p50))} / ${fmt(median(results.get(floorOn)!.p50))} µs; per-round ${fmt(Math.min(rOff.min, rOn.min), 2)}–${fmt(Math.max(rOff.max, rOn.max), 2)})`,
        met: worst <= 1.1,
      },
      {
        scenario: NAME,
        target: 'round trip p50 no slower than fork IPC JSON',
        measured: `${ratio(rJson.p50.median)} (${fmt(bp50)} vs ${fmt(median(results.get(json)!.p50))} µs)`,
        met: rJson.p50.median <= 1.0,
      },
      {
        scenario: NAME,
        target: `pipelined calls/s ≥ 1.3× fork IPC JSON (${CONFIG.window} in flight)`,
        measured: `${ratio(rJson.throughput.median)} (${kilo(median(b.rate))} vs ${kilo(median(results.get(json)!.rate))}/s; per-round ${fmt(rJson.throughput.min, 2)}–${fmt(rJson.throughput.max, 2)})`,
        met: rJson.throughput.median >= 1.3,
      },
      {
        scenario: NAME,
        target: 'pipelined calls/s ≥ 30× grpc-js',
        measured: `${ratio(rGrpc.throughput.median)} (${kilo(median(b.rate))} vs ${kilo(median(results.get(grpc)!.rate))}/s)`,
        met: rGrpc.throughput.median >= 30,
      },
      {
        scenario: NAME,
        target: '≤ 4 µs CPU per call, broker side',
        measured: `${fmt(cpuSelf, 2)} µs (fork IPC JSON ${fmt(median(results.get(json)!.cpuSelf), 2)}, raw cbor-x ${fmt(median(results.get(floorOff)!.cpuSelf), 2)})`,
        met: cpuSelf <= 4,
      },
      {
        scenario: NAME,
        target: '≤ 4 µs CPU per call, helper side',
        measured: `${fmt(cpuPeer, 2)} µs (fork IPC JSON ${fmt(median(results.get(json)!.cpuPeer), 2)}, raw cbor-x ${fmt(median(results.get(floorOff)!.cpuPeer), 2)})`,
        met: cpuPeer <= 4,
      },
    ];
    writeResult(NAME, start, { harnessCpuUsPerCall: spread(harnessCpu), summary, ratios, raw: Object.fromEntries([...results].map(([t, r]) => [t.name, r])) });
    return { name: NAME, data: { summary, ratios }, targets };
  } finally {
    for (const t of transports) await t.close().catch(() => undefined);
  }
}
