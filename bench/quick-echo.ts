/**
 * Quick echo benchmark: sequential round-trip latency (p50/p99) and
 * pipelined throughput of a bulkhead call (validation on both ends) against
 * Node's child_process IPC (JSON) in the same run, interleaved, with warm-up.
 * Prints the ratio bulkhead / baseline. Not a test: nothing is asserted.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Broker, type Connection } from 'bulkhead';

const FIXTURES = fileURLToPath(new URL('../../bench/fixtures/', import.meta.url));
const MESSAGE = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);
const SEQUENTIAL = Number(process.env['BENCH_SEQUENTIAL'] ?? 20_000);
const PIPELINED = Number(process.env['BENCH_PIPELINED'] ?? 100_000);
const WINDOW = 256;

interface Transport {
  name: string;
  call(): Promise<unknown>;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

async function latency(transport: Transport): Promise<{ p50: number; p99: number }> {
  const samples = new Float64Array(SEQUENTIAL);
  for (let i = 0; i < SEQUENTIAL; i++) {
    const start = process.hrtime.bigint();
    await transport.call();
    samples[i] = Number(process.hrtime.bigint() - start) / 1000;
  }
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
}

async function throughput(transport: Transport): Promise<number> {
  const start = performance.now();
  let sent = 0;
  const worker = async () => {
    while (sent < PIPELINED) {
      sent++;
      await transport.call();
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, worker));
  return PIPELINED / ((performance.now() - start) / 1000);
}

function ipcTransport(child: ChildProcess): Transport {
  let nextId = 1;
  const pending = new Map<number, (v: unknown) => void>();
  child.on('message', (msg: { id: number; result: unknown }) => {
    const resolve = pending.get(msg.id);
    pending.delete(msg.id);
    resolve?.(msg.result);
  });
  return {
    name: 'fork IPC (JSON)',
    call: () => new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      child.send({ id, method: 'echo', params: MESSAGE });
    }),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Runs the benchmark and returns its results. */
export async function runQuickEcho(): Promise<Record<string, unknown>> {
  const broker = new Broker({ root: FIXTURES });
  broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.bench.echo' });
  const conn: Connection = broker.connect('echo');
  const bulkhead: Transport = { name: 'bulkhead (validated)', call: () => conn.call('echo', MESSAGE) };
  const child = fork(`${FIXTURES}ipc-echo-child.js`, { serialization: 'json' });
  const ipc = ipcTransport(child);
  const results: Record<string, { p50: number[]; p99: number[]; rate: number[] }> = {};
  for (const t of [bulkhead, ipc]) results[t.name] = { p50: [], p99: [], rate: [] };
  for (let i = 0; i < 2000; i++) {
    await bulkhead.call();
    await ipc.call();
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const t of round % 2 === 0 ? [bulkhead, ipc] : [ipc, bulkhead]) {
      const l = await latency(t);
      const r = await throughput(t);
      results[t.name]!.p50.push(l.p50);
      results[t.name]!.p99.push(l.p99);
      results[t.name]!.rate.push(r);
    }
  }
  child.kill();
  await broker.close();
  const summary: Record<string, { p50us: number; p99us: number; callsPerSec: number }> = {};
  for (const [name, r] of Object.entries(results)) {
    summary[name] = { p50us: median(r.p50), p99us: median(r.p99), callsPerSec: median(r.rate) };
  }
  const b = summary[bulkhead.name]!;
  const base = summary[ipc.name]!;
  console.log(`echo round trip, ${ROUNDS} interleaved rounds (median): ${SEQUENTIAL} sequential, ${PIPELINED} pipelined with ${WINDOW} in flight`);
  console.log('transport                 p50 µs   p99 µs   calls/s');
  for (const [name, s] of Object.entries(summary)) {
    console.log(`${name.padEnd(24)} ${s.p50us.toFixed(1).padStart(7)} ${s.p99us.toFixed(1).padStart(8)} ${Math.round(s.callsPerSec).toString().padStart(9)}`);
  }
  console.log(`ratio bulkhead/IPC: p50 ${(b.p50us / base.p50us).toFixed(2)}×, throughput ${(b.callsPerSec / base.callsPerSec).toFixed(2)}×`);
  return { date: new Date().toISOString(), node: process.version, summary };
}
