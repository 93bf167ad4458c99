/**
 * Helper-to-helper calls (`connects`, issue 17 item 3): a calling helper
 * times its own calls to the echo helper, over the direct channel the broker
 * handed both of them (`directConnects: true`, the default) and through the
 * broker (`directConnects: false`, every frame read and re-encoded there).
 * Sequential p50/p99 and pipelined calls/s, with CPU per call of the caller,
 * the broker (this process) and the callee; interleaved rounds, same run.
 * @module
 */
import { Broker, type Connection } from 'bulkhead';
import { CONFIG } from '../common/config.js';
import { cpuMicrosOf, nodePidOf, ownCpuMicros } from '../common/proc.js';
import { FIXTURES, fmt, heading, kilo, machine, printTable, ratio, writeResult, type ScenarioResult } from '../common/report.js';
import { median, spread, type Spread } from '../common/stats.js';
import { BENCH_LAUNCH, BENCH_MAX_FRAME_BYTES } from '../common/transports.js';

const NAME = 'connects';

interface Path {
  name: 'direct' | 'routed';
  broker: Broker;
  relay: Connection;
  p50: number[];
  p99: number[];
  rate: number[];
  cpuCaller: number[];
  cpuBroker: number[];
  cpuCallee: number[];
}

async function makePath(name: 'direct' | 'routed'): Promise<Path> {
  const broker = new Broker({ root: FIXTURES, maxFrameBytes: BENCH_MAX_FRAME_BYTES, directConnects: name === 'direct' });
  broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.bench.echo', launch: { ...BENCH_LAUNCH } });
  broker.register({ name: 'relay', entry: './relay-service.js', protocol: 'com.bench.relay', connects: ['echo'], launch: { ...BENCH_LAUNCH } });
  const relay = broker.connect('relay');
  await relay.call('latency', { calls: 10 });
  const path = broker.status('relay').outbound['echo'];
  if (path !== name) throw new Error(`the ${name} broker's relay calls echo ${path ?? 'by no path'}`);
  return { name, broker, relay, p50: [], p99: [], rate: [], cpuCaller: [], cpuBroker: [], cpuCallee: [] };
}

/** Runs the scenario. */
export async function runConnects(): Promise<ScenarioResult> {
  const start = machine();
  heading(`connects (helper → helper, direct vs routed): ${CONFIG.rounds} interleaved rounds of ${CONFIG.daemonCalls} sequential and ${CONFIG.pipelined} pipelined calls`);
  const paths = [await makePath('direct'), await makePath('routed')];
  try {
    for (const p of paths) {
      await p.relay.call('latency', { calls: CONFIG.warmup });
      await p.relay.call('pipelined', { calls: CONFIG.window * 8, window: CONFIG.window });
    }
    for (let round = 0; round < CONFIG.rounds; round++) {
      const order = round % 2 === 0 ? paths : [...paths].reverse();
      for (const p of order) {
        const l = await p.relay.call('latency', { calls: CONFIG.daemonCalls }, { timeoutMs: 600_000 }) as { p50: number; p99: number };
        p.p50.push(l.p50);
        p.p99.push(l.p99);
      }
      for (const p of order) {
        const callee = nodePidOf(p.broker.status('echo').pid!);
        const calleeCpu = cpuMicrosOf(callee);
        const brokerCpu = ownCpuMicros();
        const r = await p.relay.call('pipelined', { calls: CONFIG.pipelined, window: CONFIG.window }, { timeoutMs: 600_000 }) as { rate: number; cpuUs: number };
        p.rate.push(r.rate);
        p.cpuCaller.push(r.cpuUs);
        p.cpuBroker.push((ownCpuMicros() - brokerCpu) / CONFIG.pipelined);
        p.cpuCallee.push((cpuMicrosOf(callee) - calleeCpu) / CONFIG.pipelined);
      }
    }
    const summary: Record<string, Record<string, Spread>> = {};
    for (const p of paths) summary[p.name] = { p50us: spread(p.p50), p99us: spread(p.p99), callsPerSec: spread(p.rate), cpuUsPerCallCaller: spread(p.cpuCaller), cpuUsPerCallBroker: spread(p.cpuBroker), cpuUsPerCallCallee: spread(p.cpuCallee) };
    printTable(['path', 'p50 µs [min–max]', 'p99 µs', 'calls/s', 'CPU µs/call caller', 'broker', 'callee'], paths.map((p) => {
      const s = summary[p.name]!;
      return [p.name, `${fmt(s['p50us']!.median)} [${fmt(s['p50us']!.min)}–${fmt(s['p50us']!.max)}]`, fmt(s['p99us']!.median), kilo(s['callsPerSec']!.median), fmt(s['cpuUsPerCallCaller']!.median, 2), fmt(s['cpuUsPerCallBroker']!.median, 2), fmt(s['cpuUsPerCallCallee']!.median, 2)];
    }));
    const [d, r] = paths as [Path, Path];
    const vs = { p50: spread(d.p50.map((v, i) => v / r.p50[i]!)), throughput: spread(d.rate.map((v, i) => v / r.rate[i]!)) };
    console.log(`  direct/routed: p50 ${ratio(vs.p50.median)} [${ratio(vs.p50.min)}–${ratio(vs.p50.max)}], throughput ${ratio(vs.throughput.median)} [${ratio(vs.throughput.min)}–${ratio(vs.throughput.max)}]`);
    writeResult(NAME, start, { summary, directVsRouted: vs });
    return {
      name: NAME,
      data: { summary, directVsRouted: vs },
      targets: [{
        scenario: NAME,
        target: 'helper → helper over a direct channel vs routed (issue 17 item 3; no target)',
        measured: `p50 ${ratio(vs.p50.median)} (${fmt(median(d.p50))} vs ${fmt(median(r.p50))} µs); throughput ${ratio(vs.throughput.median)} (${kilo(median(d.rate))} vs ${kilo(median(r.rate))}/s); broker ${fmt(median(d.cpuBroker), 2)} vs ${fmt(median(r.cpuBroker), 2)} µs CPU/call`,
        met: null,
      }],
    };
  } finally {
    for (const p of paths) await p.broker.close();
  }
}
