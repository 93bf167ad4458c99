/**
 * Daemon-routed vs embedded: the same echo helper and message, once through
 * an embedded broker (helper is this process's child) and once through a
 * daemon in another process (client → daemon → helper, frames forwarded
 * without re-encoding). Sequential p50/p99 and pipelined calls/s with CPU per
 * call of the client, the daemon and the helper; interleaved rounds.
 * @module
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ClientIdentity } from 'bulkhead';
import { RemoteBroker } from '../../lib/daemon/remote-broker.js';
import { CONFIG } from '../common/config.js';
import { latency, pipelined } from '../common/measure.js';
import { nodePidOf, processTree } from '../common/proc.js';
import { FIXTURES, fmt, heading, kilo, machine, printTable, ratio, writeResult, type ScenarioResult } from '../common/report.js';
import { median, spread, type Spread } from '../common/stats.js';
import { MESSAGE, bulkheadTransport, type Transport } from '../common/transports.js';

const NAME = 'daemon';
const CHILD = fileURLToPath(new URL('./daemon-process.js', import.meta.url));

/** Runs the scenario. */
export async function runDaemon(): Promise<ScenarioResult> {
  const start = machine();
  heading(`daemon-routed vs embedded: ${CONFIG.rounds} interleaved rounds of ${CONFIG.daemonCalls} sequential and ${CONFIG.pipelined} pipelined calls`);
  const daemonProcess = fork(CHILD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const closers: Array<() => Promise<void>> = [];
  try {
    const setupStart = performance.now();
    const { socketPath, identity } = await new Promise<{ socketPath: string; identity: ClientIdentity }>((resolve, reject) => {
      daemonProcess.once('message', (m) => resolve(m as { socketPath: string; identity: ClientIdentity }));
      daemonProcess.once('exit', (code) => reject(new Error(`daemon process exited ${code}`)));
    });
    const daemonStartMs = performance.now() - setupStart;
    const remote = new RemoteBroker(socketPath, identity, { protocolsDir: `${FIXTURES}protocols` });
    closers.push(() => remote.close());
    const conn = remote.connect('echo', { protocol: 'com.bench.echo' });
    let events = 0;
    conn.on('event', () => events++);
    await conn.call('echo', MESSAGE);
    const daemonPid = daemonProcess.pid!;
    const helperPid = nodePidOf(processTree(daemonPid).find((p) => p !== daemonPid) ?? daemonPid);
    const routed: Transport = { name: 'daemon-routed', call: (m, p) => conn.call(m, p), get events() { return events; }, peerPid: helperPid, close: async () => {} };
    const embedded = await bulkheadTransport('embedded');
    closers.push(() => embedded.close());
    const both = [embedded, routed];
    for (const t of both) {
      await latency(t, CONFIG.warmup);
      await pipelined(t, CONFIG.window * 8);
    }
    const r = new Map<Transport, { p50: number[]; p99: number[]; rate: number[]; cpuClient: number[]; cpuDaemon: number[]; cpuHelper: number[] }>(both.map((t) => [t, { p50: [], p99: [], rate: [], cpuClient: [], cpuDaemon: [], cpuHelper: [] }]));
    for (let round = 0; round < CONFIG.rounds; round++) {
      const order = round % 2 === 0 ? both : [...both].reverse();
      for (const t of order) {
        const l = await latency(t, CONFIG.daemonCalls);
        r.get(t)!.p50.push(l.p50);
        r.get(t)!.p99.push(l.p99);
      }
      for (const t of order) {
        const p = await pipelined(t, CONFIG.pipelined, t === routed ? { daemon: daemonPid } : {});
        const x = r.get(t)!;
        x.rate.push(p.rate);
        x.cpuClient.push(p.cpuSelf);
        x.cpuHelper.push(p.cpuPeer);
        x.cpuDaemon.push(p.cpuOther['daemon'] ?? Number.NaN);
      }
    }
    const summary: Record<string, Record<string, Spread>> = {};
    for (const [t, x] of r) summary[t.name] = { p50us: spread(x.p50), p99us: spread(x.p99), callsPerSec: spread(x.rate), cpuUsPerCallClient: spread(x.cpuClient), cpuUsPerCallDaemon: spread(x.cpuDaemon), cpuUsPerCallHelper: spread(x.cpuHelper) };
    const e = r.get(embedded)!;
    const d = r.get(routed)!;
    const p50Ratio = spread(d.p50.map((v, i) => v / e.p50[i]!));
    const rateRatio = spread(d.rate.map((v, i) => v / e.rate[i]!));
    printTable(['path', 'p50 µs [min–max]', 'p99 µs', 'calls/s', 'CPU µs/call client', 'daemon', 'helper'], both.map((t) => {
      const s = summary[t.name]!;
      return [t.name, `${fmt(s['p50us']!.median)} [${fmt(s['p50us']!.min)}–${fmt(s['p50us']!.max)}]`, fmt(s['p99us']!.median), kilo(s['callsPerSec']!.median), fmt(s['cpuUsPerCallClient']!.median, 2), t === routed ? fmt(s['cpuUsPerCallDaemon']!.median, 2) : '(in client)', fmt(s['cpuUsPerCallHelper']!.median, 2)];
    }));
    const extra = median(d.p50) - median(e.p50);
    console.log(`  daemon-routed/embedded: p50 ${ratio(p50Ratio.median)} (+${fmt(extra)} µs), throughput ${ratio(rateRatio.median)}; daemon start-up (CA, socket) ${fmt(daemonStartMs, 0)} ms`);
    writeResult(NAME, start, { daemonStartMs, summary, ratios: { p50: p50Ratio, throughput: rateRatio } });
    return {
      name: NAME,
      data: { summary },
      targets: [{
        scenario: NAME,
        target: 'daemon-routed vs embedded call (no target)',
        measured: `p50 +${fmt(extra)} µs (${ratio(p50Ratio.median)}: ${fmt(median(d.p50))} vs ${fmt(median(e.p50))} µs); throughput ${ratio(rateRatio.median)} (${kilo(median(d.rate))} vs ${kilo(median(e.rate))}/s)`,
        met: null,
      }],
    };
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    daemonProcess.disconnect();
    await new Promise((resolve) => (daemonProcess.exitCode !== null ? resolve(undefined) : daemonProcess.once('exit', resolve)));
  }
}
