/**
 * Small calls: sequential round-trip latency (p50/p99) and pipelined
 * throughput (calls/s with `window` in flight) with CPU µs per call on each
 * side, for bulkhead (validation on both ends) and every baseline, in the
 * same run, interleaved round by round, after a warm-up.
 * @module
 */
import { loadavg } from 'node:os';
import { CONFIG } from '../common/config.js';
import { latency, pipelined } from '../common/measure.js';
import { canPin, cpuForRound, pin, unpin } from '../common/pin.js';
import { fmt, heading, kilo, machine, printTable, ratio, withSpread, writeResult, type ScenarioResult, type TargetRow } from '../common/report.js';
import { median, spread, type Spread } from '../common/stats.js';
import { describeSetRatios, freshProcessSets, setRatios, type ProcessSet } from './small-calls-processes.js';
import { MESSAGE, bulkheadTransport, forkTransport, grpcTransport, rawCborTransport, workerTransport, type Transport } from '../common/transports.js';

const NAME = 'small-calls';

function isGrpc(t: Transport): boolean {
  return t.name.startsWith('grpc');
}

interface PerTransport {
  p50: number[];
  p99: number[];
  /** Both processes (every thread) pinned to one CPU, alternating between rounds. */
  p50Pinned: number[];
  p99Pinned: number[];
  rate: number[];
  cpuSelf: number[];
  cpuPeer: number[];
}

/** Runs the scenario. */
export async function runSmallCalls(): Promise<ScenarioResult> {
  const start = machine();
  const pinning = canPin();
  heading(`small calls: ${CONFIG.rounds} interleaved rounds; ${CONFIG.sequential} sequential calls (gRPC ${CONFIG.grpcSequential}) unpinned${pinning ? ' and pinned to one CPU' : ' (taskset unavailable: no pinned figures)'}; ${CONFIG.pipelined} pipelined with ${CONFIG.window} in flight (gRPC ${CONFIG.grpcPipelined})`);
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
    const results = new Map<Transport, PerTransport>(transports.map((t) => [t, { p50: [], p99: [], p50Pinned: [], p99Pinned: [], rate: [], cpuSelf: [], cpuPeer: [] }]));
    const loads: number[] = [];
    for (let round = 0; round < CONFIG.rounds; round++) {
      // Rotate the order every round so drift in the machine's load hits every transport alike.
      const order = transports.map((_, i) => transports[(i + round) % transports.length]!);
      for (const t of order) {
        const l = await latency(t, seqOf(t));
        results.get(t)!.p50.push(l.p50);
        results.get(t)!.p99.push(l.p99);
      }
      if (pinning) {
        // Bench process and every peer on one CPU (the other one in the next round), then free again.
        const cpu = cpuForRound(round);
        const peers = transports.map((t) => t.peerPid).filter((p): p is number => p !== undefined);
        pin([process.pid, ...peers], cpu);
        try {
          for (const t of order) {
            const l = await latency(t, seqOf(t));
            results.get(t)!.p50Pinned.push(l.p50);
            results.get(t)!.p99Pinned.push(l.p99);
          }
        } finally {
          unpin([process.pid, ...peers]);
        }
      }
      for (const t of order) {
        const p = await pipelined(t, pipeOf(t));
        const r = results.get(t)!;
        r.rate.push(p.rate);
        r.cpuSelf.push(p.cpuSelf);
        r.cpuPeer.push(p.cpuPeer);
      }
      harnessCpu.push((await pipelined(harness, CONFIG.pipelined)).cpuSelf);
      loads.push(loadavg()[0]!);
      process.stdout.write(`  round ${round + 1}/${CONFIG.rounds} done (load ${loadavg()[0]!.toFixed(2)})\n`);
    }

    // The pinned round-trip verdict over several independent process sets: the main run's, then fresh ones.
    const sets: ProcessSet[] = [];
    if (pinning) {
      sets.push(Object.fromEntries(transports.map((t) => [t.name, median(results.get(t)!.p50Pinned)])));
      sets.push(...(await freshProcessSets(transports[0]!.name, (s) => process.stdout.write(`  process set ${s + 2}/${CONFIG.processSets + 1} done (load ${loadavg()[0]!.toFixed(2)})\n`))));
      loads.push(loadavg()[0]!);
    }

    const bulk = transports[0]!;
    const b = results.get(bulk)!;
    const summary: Record<string, Record<string, Spread>> = {};
    for (const [t, r] of results) {
      summary[t.name] = { p50us: spread(r.p50), p99us: spread(r.p99), ...(pinning ? { p50usPinned: spread(r.p50Pinned), p99usPinned: spread(r.p99Pinned) } : {}), callsPerSec: spread(r.rate), cpuUsPerCallSelf: spread(r.cpuSelf), cpuUsPerCallPeer: spread(r.cpuPeer) };
    }
    /** Per-round ratio bulkhead/baseline (rounds are interleaved, so this cancels slow drift). */
    const roundRatios = (field: keyof PerTransport, base: Transport) => spread(b[field].map((v, i) => v / results.get(base)![field][i]!));
    const ratios: Record<string, { p50: Spread; p50Pinned: Spread; p99: Spread; throughput: Spread }> = {};
    for (const t of transports.slice(1)) ratios[t.name] = { p50: roundRatios('p50', t), p50Pinned: pinning ? roundRatios('p50Pinned', t) : spread([Number.NaN]), p99: roundRatios('p99', t), throughput: roundRatios('rate', t) };

    printTable(
      ['transport', 'p50 µs [min–max]', 'pinned p50 µs [min–max]', 'p99 µs', 'calls/s [min–max]', 'CPU µs/call self', 'peer', 'p50 ratio', 'pinned', 'tput ratio'],
      transports.map((t) => {
        const s = summary[t.name]!;
        const rr = ratios[t.name];
        return [
          t.name,
          withSpread(s['p50us']!),
          pinning ? withSpread(s['p50usPinned']!) : '-',
          fmt(s['p99us']!.median),
          `${kilo(s['callsPerSec']!.median)} [${kilo(s['callsPerSec']!.min)}–${kilo(s['callsPerSec']!.max)}]`,
          fmt(s['cpuUsPerCallSelf']!.median, 2),
          t.peerPid === undefined ? '(same)' : fmt(s['cpuUsPerCallPeer']!.median, 2),
          rr === undefined ? '' : ratio(rr.p50.median),
          rr === undefined ? '' : ratio(rr.p50Pinned.median),
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
    const med = (t: Transport, f: keyof PerTransport) => median(results.get(t)![f]);
    const rJson = ratios[json.name]!;
    const rGrpc = ratios[grpc.name]!;
    const rOn = ratios[floorOn.name]!;
    const cpuSelf = median(b.cpuSelf);
    const cpuPeer = median(b.cpuPeer);
    const load = `load ${fmt(Math.min(...loads), 1)}–${fmt(Math.max(...loads), 1)}`;
    // p50 targets are judged on the pinned figure (stable); the unpinned one is shown beside it.
    const p50Key = pinning ? 'p50Pinned' : 'p50';
    const p50Of = (t: Transport) => (pinning ? ratios[t.name]!.p50Pinned : ratios[t.name]!.p50);
    const floorWorst = p50Of(floorOff).median >= p50Of(floorOn).median ? floorOff : floorOn;
    const p50Line = (t: Transport) => `${ratio(p50Of(t).median)}${pinning ? ' pinned' : ''} (${fmt(med(bulk, p50Key))} vs ${fmt(med(t, p50Key))} µs; per-round ${fmt(p50Of(t).min, 2)}–${fmt(p50Of(t).max, 2)}); unpinned ${ratio(ratios[t.name]!.p50.median)} (${fmt(med(bulk, 'p50'))} vs ${fmt(med(t, 'p50'))} µs)`;
    // Pinned verdicts: the median over process sets of the per-set ratio (small-calls-processes.ts says why).
    const setJson = pinning ? setRatios(sets, bulk.name, json.name) : undefined;
    const setOff = pinning ? setRatios(sets, bulk.name, floorOff.name) : undefined;
    const setOn = pinning ? setRatios(sets, bulk.name, floorOn.name) : undefined;
    const setWorst = setOff !== undefined && setOn !== undefined ? (setOff.median >= setOn.median ? setOff : setOn) : undefined;
    if (pinning) console.log(`  pinned p50 µs per process set (the first is the run above), bulkhead / fork IPC json / socketpair + cbor-x / records: ${sets.map((x) => [bulk, json, floorOff, floorOn].map((t) => fmt(x[t.name]!)).join(' / ')).join('; ')}`);
    const targets: TargetRow[] = [
      {
        scenario: NAME,
        target: `pipelined calls/s ≥ 1.5× fork IPC JSON (${CONFIG.window} in flight)`,
        measured: `${ratio(rJson.throughput.median)} (${kilo(median(b.rate))} vs ${kilo(med(json, 'rate'))}/s; per-round ${fmt(rJson.throughput.min, 2)}–${fmt(rJson.throughput.max, 2)}; ${load})`,
        met: rJson.throughput.median >= 1.5,
      },
      {
        scenario: NAME,
        target: 'pipelined calls/s ≥ 1.2× raw socketpair + cbor-x records',
        measured: `${ratio(rOn.throughput.median)} (${kilo(median(b.rate))} vs ${kilo(med(floorOn, 'rate'))}/s; per-round ${fmt(rOn.throughput.min, 2)}–${fmt(rOn.throughput.max, 2)}; records off ${ratio(ratios[floorOff.name]!.throughput.median)})`,
        met: rOn.throughput.median >= 1.2,
      },
      {
        scenario: NAME,
        target: 'round trip p50 ≤ 1.0× fork IPC JSON',
        measured: pinning ? `${describeSetRatios(setJson!, 1.0)}; first set alone ${p50Line(json)}; ${load}` : `${p50Line(json)}; ${load}`,
        met: (pinning ? setJson!.median : p50Of(json).median) <= 1.0,
      },
      {
        scenario: NAME,
        target: 'round trip p50 ≤ 1.05× raw socketpair + cbor-x',
        measured: pinning
          ? `vs ${setWorst === setOn ? 'records on' : 'records off'} (the faster floor): ${describeSetRatios(setWorst!, 1.05)}; vs ${setWorst === setOn ? 'records off' : 'records on'} ${ratio((setWorst === setOn ? setOff : setOn)!.median)}; first set alone ${p50Line(setWorst === setOn ? floorOn : floorOff)}`
          : `vs ${floorWorst === floorOn ? 'records on' : 'records off'} (the faster floor): ${p50Line(floorWorst)}; vs ${floorWorst === floorOn ? 'records off' : 'records on'} ${ratio(p50Of(floorWorst === floorOn ? floorOff : floorOn).median)}`,
        met: pinning ? Math.max(setOff!.median, setOn!.median) <= 1.05 : Math.max(p50Of(floorOff).median, p50Of(floorOn).median) <= 1.05,
      },
      {
        scenario: NAME,
        target: '≤ 3.0 µs CPU per call, broker side',
        measured: `${fmt(cpuSelf, 2)} µs incl. ${fmt(median(harnessCpu), 2)} µs of the measuring loop (fork IPC JSON ${fmt(med(json, 'cpuSelf'), 2)}, raw cbor-x records ${fmt(med(floorOn, 'cpuSelf'), 2)}; ${load})`,
        met: cpuSelf <= 3.0,
      },
      {
        scenario: NAME,
        target: '≤ 2.5 µs CPU per call, helper side',
        measured: `${fmt(cpuPeer, 2)} µs (fork IPC JSON ${fmt(med(json, 'cpuPeer'), 2)}, raw cbor-x records ${fmt(med(floorOn, 'cpuPeer'), 2)})`,
        met: cpuPeer <= 2.5,
      },
      {
        scenario: NAME,
        target: 'pipelined calls/s ≥ 30× grpc-js (round one)',
        measured: `${ratio(rGrpc.throughput.median)} (${kilo(median(b.rate))} vs ${kilo(med(grpc, 'rate'))}/s)`,
        met: rGrpc.throughput.median >= 30,
      },
    ];
    writeResult(NAME, start, { pinned: pinning, loadPerRound: loads, processSets: sets, setRatios: { forkJson: setJson, raw: setOff, rawRecords: setOn }, harnessCpuUsPerCall: spread(harnessCpu), summary, ratios, raw: Object.fromEntries([...results].map(([t, r]) => [t.name, r])) });
    return { name: NAME, data: { summary, ratios, processSets: sets }, targets };
  } finally {
    for (const t of transports) await t.close().catch(() => undefined);
  }
}
