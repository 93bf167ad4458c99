/**
 * Extra latency of a daemon-routed call over an embedded one: the same echo
 * helper, the same message, in the same run, interleaved. Prints medians of
 * p50 round-trip latency and the difference.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Broker, type Connection } from 'bulkhead';
import { Daemon } from '../lib/daemon/daemon.js';
import { RemoteBroker } from '../lib/daemon/remote-broker.js';

const FIXTURES = fileURLToPath(new URL('../../bench/fixtures/', import.meta.url));
const MESSAGE = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);
const CALLS = Number(process.env['BENCH_SEQUENTIAL'] ?? 5000);

async function p50(conn: Connection): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const start = process.hrtime.bigint();
    await conn.call('echo', MESSAGE);
    samples.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

/** Runs the comparison; returns the figures. */
export async function runDaemonVsEmbedded(): Promise<Record<string, unknown>> {
  const work = mkdtempSync(join(tmpdir(), 'bulkhead-bench-daemon-'));
  const config = join(work, 'bulkhead.json');
  writeFileSync(config, JSON.stringify({ root: FIXTURES, services: [{ name: 'echo', entry: './echo-service.js', protocol: 'com.bench.echo', clients: ['bench'] }] }));
  const daemon = await Daemon.start({ config, settings: { socketPath: join(work, 'd.sock'), stateDir: join(work, 'state') }, log: () => {} });
  const remote = new RemoteBroker(daemon.socketPath, daemon.ca.issue('bench'), { protocolsDir: join(FIXTURES, 'protocols') });
  const routed = remote.connect('echo', { protocol: 'com.bench.echo' });
  const broker = new Broker({ root: FIXTURES });
  broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.bench.echo' });
  const embedded = broker.connect('echo');
  for (let i = 0; i < 2000; i++) {
    await routed.call('echo', MESSAGE);
    await embedded.call('echo', MESSAGE);
  }
  const e: number[] = [];
  const d: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) {
      e.push(await p50(embedded));
      d.push(await p50(routed));
    } else {
      d.push(await p50(routed));
      e.push(await p50(embedded));
    }
  }
  await remote.close();
  await daemon.close();
  await broker.close();
  rmSync(work, { recursive: true, force: true });
  const result = { embeddedP50us: median(e), daemonP50us: median(d), extraUs: median(d) - median(e), ratio: median(d) / median(e) };
  console.log(`daemon-routed vs embedded echo, ${ROUNDS} interleaved rounds of ${CALLS} sequential calls (median p50):`);
  console.log(`  embedded ${result.embeddedP50us.toFixed(1)} µs, daemon-routed ${result.daemonP50us.toFixed(1)} µs: +${result.extraUs.toFixed(1)} µs (${result.ratio.toFixed(2)}×)`);
  return { date: new Date().toISOString(), node: process.version, ...result };
}
