/**
 * The two measurements most scenarios share: sequential round-trip latency
 * and pipelined throughput with CPU per call on each side.
 * @module
 */
import { CONFIG } from './config.js';
import { cpuMicrosOf, ownCpuMicros } from './proc.js';
import { latencyPercentiles } from './stats.js';
import { MESSAGE, type Transport } from './transports.js';

/** p50/p99 (µs) of `calls` sequential echo calls. */
export async function latency(t: Transport, calls: number): Promise<{ p50: number; p99: number }> {
  const samples = new Float64Array(calls);
  for (let i = 0; i < calls; i++) {
    const start = process.hrtime.bigint();
    await t.call('echo', MESSAGE);
    samples[i] = Number(process.hrtime.bigint() - start) / 1000;
  }
  return latencyPercentiles(samples);
}

/** What one pipelined run measured. */
export interface Pipelined {
  /** Calls per second. */
  rate: number;
  /** CPU µs per call in this process (the broker / client side). */
  cpuSelf: number;
  /** CPU µs per call in the other process, or NaN when in-process. */
  cpuPeer: number;
  /** CPU µs per call of each extra process asked for. */
  cpuOther: Record<string, number>;
}

/**
 * `calls` echo calls with {@link CONFIG.window} in flight: calls/s, and CPU
 * per call of this process, of the transport's peer and of `others` (name → pid).
 */
export async function pipelined(t: Transport, calls: number, others: Record<string, number> = {}): Promise<Pipelined> {
  const peer = t.peerPid;
  const other0 = Object.fromEntries(Object.entries(others).map(([k, pid]) => [k, cpuMicrosOf(pid)]));
  const self0 = ownCpuMicros();
  const peer0 = peer === undefined ? 0 : cpuMicrosOf(peer);
  const start = performance.now();
  let sent = 0;
  const lane = async () => {
    while (sent < calls) {
      sent++;
      await t.call('echo', MESSAGE);
    }
  };
  await Promise.all(Array.from({ length: CONFIG.window }, lane));
  const seconds = (performance.now() - start) / 1000;
  const cpuSelf = (ownCpuMicros() - self0) / calls;
  const cpuPeer = peer === undefined ? Number.NaN : (cpuMicrosOf(peer) - peer0) / calls;
  const cpuOther = Object.fromEntries(Object.entries(others).map(([k, pid]) => [k, (cpuMicrosOf(pid) - other0[k]!) / calls]));
  return { rate: calls / seconds, cpuSelf, cpuPeer, cpuOther };
}

