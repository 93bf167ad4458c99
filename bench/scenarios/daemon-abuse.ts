/**
 * Fairness under abuse: one authenticated client's sequential p99 and
 * pipelined calls/s through a daemon, quiet vs while another process runs 4
 * abusive writers (a bad frame header, then 64 KiB chunks as fast as the
 * socket takes them, reconnecting whenever closed) and opens 500 silent
 * sockets. Interleaved rounds (quiet, abused, ...); the figure is the abused
 * / quiet ratio per round, and the daemon's peak RSS (VmHWM) over the run.
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ClientIdentity } from 'bulkhead';
import { RemoteBroker } from '../../lib/daemon/remote-broker.js';
import { CONFIG } from '../common/config.js';
import { latency, pipelined } from '../common/measure.js';
import { rssOf } from '../common/proc.js';
import { FIXTURES, fmt, heading, kilo, machine, printTable, ratio, writeResult, type ScenarioResult } from '../common/report.js';
import { median, spread } from '../common/stats.js';
import { type Transport } from '../common/transports.js';
import { credentialLookupCost, handshakeTime } from './daemon-handshake-cost.js';

const NAME = 'daemon-abuse';
const DAEMON = fileURLToPath(new URL('./daemon-process.js', import.meta.url));
const ABUSER = fileURLToPath(new URL('./daemon-abuse-process.js', import.meta.url));
const MiB = 1024 * 1024;

function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? Number.NaN : Number(m[1]) * 1024;
}

function ask<T>(child: ChildProcess, message: unknown, key: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: Record<string, unknown>) => {
      if (!(key in m)) return;
      child.off('message', on);
      resolve(m[key] as T);
    };
    child.on('message', on);
    child.send(message as object);
  });
}

/** Runs the scenario. */
export async function runDaemonAbuse(): Promise<ScenarioResult> {
  const start = machine();
  heading(`daemon under abuse: ${CONFIG.rounds} interleaved rounds, quiet vs 4 abusive writers + 500 silent sockets; ${CONFIG.daemonCalls} sequential and ${CONFIG.pipelined} pipelined calls each`);
  const daemonProcess = fork(DAEMON, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const abuser = fork(ABUSER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let remote: RemoteBroker | undefined;
  try {
    const { socketPath, identity } = await new Promise<{ socketPath: string; identity: ClientIdentity }>((resolve, reject) => {
      daemonProcess.once('message', (m) => resolve(m as { socketPath: string; identity: ClientIdentity }));
      daemonProcess.once('exit', (code) => reject(new Error(`daemon process exited ${code}`)));
    });
    // Routed: the figure is the daemon's own fairness while it carries every frame (a direct
    // client's calls do not pass through the abused daemon at all).
    remote = new RemoteBroker(socketPath, identity, { protocolsDir: `${FIXTURES}protocols`, direct: false });
    const conn = remote.connect('echo', { protocol: 'com.bench.echo' });
    const client: Transport = { name: 'client', call: (m, p) => conn.call(m, p), events: 0, peerPid: undefined, close: async () => {} };
    await latency(client, CONFIG.warmup);
    await pipelined(client, CONFIG.window * 8);
    const cred = await credentialLookupCost(2000);
    const handshake = await handshakeTime(socketPath, identity, 'echo', 50);
    console.log(`  kernel credential lookup (SO_PEERCRED + SO_PEERPIDFD${cred.pidfd ? '' : ': no pidfd on this kernel'}, koffi): ${fmt(cred.medianUs, 2)} µs per connection (p99 ${fmt(cred.p99Us, 2)} µs); koffi load ${fmt(cred.loadMs)} ms once`);
    console.log(`  handshake connect → ok (quiet daemon): median ${fmt(handshake.medianMs, 2)} ms, p90 ${fmt(handshake.p90Ms, 2)} ms, of which the client's PSS signature ${fmt(handshake.signMedianMs, 2)} ms`);
    const daemonPid = daemonProcess.pid!;
    const rssBefore = rssOf(daemonPid);
    const r = { quiet: { p99: [] as number[], rate: [] as number[] }, abused: { p99: [] as number[], rate: [] as number[] } };
    const attacks: Array<Record<string, number>> = [];
    let rssDuringMax = 0;
    for (let round = 0; round < CONFIG.rounds; round++) {
      for (const phase of round % 2 === 0 ? ['quiet', 'abused'] as const : ['abused', 'quiet'] as const) {
        if (phase === 'abused') await ask(abuser, { start: socketPath }, 'started');
        const l = await latency(client, CONFIG.daemonCalls);
        const p = await pipelined(client, CONFIG.pipelined);
        r[phase].p99.push(l.p99);
        r[phase].rate.push(p.rate);
        if (phase === 'abused') {
          rssDuringMax = Math.max(rssDuringMax, rssOf(daemonPid));
          attacks.push(await ask<Record<string, number>>(abuser, { stop: true }, 'stopped'));
        }
      }
    }
    const rssPeak = peakRss(daemonPid);
    const rssAfter = rssOf(daemonPid);
    const rateRatio = spread(r.abused.rate.map((v, i) => v / r.quiet.rate[i]!));
    const p99Ratio = spread(r.abused.p99.map((v, i) => v / r.quiet.p99[i]!));
    printTable(['daemon', 'p99 µs (median of rounds)', 'calls/s'], [
      ['quiet', fmt(median(r.quiet.p99)), kilo(median(r.quiet.rate))],
      ['4 abusive writers + 500 silent sockets', fmt(median(r.abused.p99)), kilo(median(r.abused.rate))],
    ]);
    const attack = attacks.at(-1)!;
    console.log(`  abused/quiet: throughput ${ratio(rateRatio.median)} [${ratio(rateRatio.min)}–${ratio(rateRatio.max)}], p99 ${ratio(p99Ratio.median)}; daemon RSS ${fmt(rssBefore / MiB)} MiB before, max ${fmt(rssDuringMax / MiB)} MiB sampled under abuse, peak (VmHWM) ${fmt(rssPeak / MiB)} MiB, ${fmt(rssAfter / MiB)} MiB after`);
    console.log(`  last abused round: ${attack['writerConnections']} writer connections refused, ${fmt((attack['bytesWritten'] ?? 0) / MiB)} MiB written by them into the kernel; ${attack['silentOpened']} silent sockets opened, ${attack['silentClosedByDaemon']} closed by the daemon (caps / timeout)`);
    writeResult(NAME, start, { credentialLookup: cred, handshake, quiet: r.quiet, abused: r.abused, ratios: { throughput: rateRatio, p99: p99Ratio }, rss: { before: rssBefore, maxSampledUnderAbuse: rssDuringMax, peak: rssPeak, after: rssAfter }, attacks });
    return {
      name: NAME,
      data: { ratios: { throughput: rateRatio, p99: p99Ratio }, rssPeak, credentialLookup: cred, handshake },
      targets: [{
        scenario: NAME,
        target: 'authenticated client under abuse ≥ 0.8× quiet throughput (issue 15)',
        measured: `${ratio(rateRatio.median)} (${kilo(median(r.abused.rate))} vs ${kilo(median(r.quiet.rate))}/s), p99 ${fmt(median(r.abused.p99))} vs ${fmt(median(r.quiet.p99))} µs; daemon peak RSS ${fmt(rssPeak / MiB)} MiB`,
        met: rateRatio.median >= 0.8,
      }, {
        scenario: NAME,
        target: 'kernel peer credentials per connection; handshake time (no target)',
        measured: `lookup ${fmt(cred.medianUs, 2)} µs (p99 ${fmt(cred.p99Us, 2)}); handshake median ${fmt(handshake.medianMs, 2)} ms (client signing ${fmt(handshake.signMedianMs, 2)} ms)`,
        met: null,
      }],
    };
  } finally {
    await remote?.close().catch(() => undefined);
    abuser.disconnect();
    daemonProcess.disconnect();
    await new Promise((resolve) => (daemonProcess.exitCode !== null ? resolve(undefined) : daemonProcess.once('exit', resolve)));
  }
}
