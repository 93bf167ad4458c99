/**
 * What the payloads scenario and its caller processes share: the sizes, the
 * timed echo loop, the transports by name, and the line of messages between
 * the bench process (which orders the rounds) and each caller process (which
 * holds one transport and times its echoes).
 * @module
 */
import { CONFIG } from './config.js';
import { bulkheadReleasingTransport, bulkheadTransport, forkTransport, rawBytesTransport, rawCborTransport, workerTransport, type Transport } from './transports.js';

/** Payload sizes echoed, in bytes. */
export const PAYLOAD_SIZES = [64 * 1024, 1024 * 1024, 16 * 1024 * 1024];

/** `64 KiB`, `1 MiB`, `16 MiB`. */
export const sizeLabel = (size: number): string => (size >= 1024 * 1024 ? `${size / 1024 / 1024} MiB` : `${size / 1024} KiB`);

/** Echoes per round of one size: CONFIG.payloadBytes worth, at least 3. */
export const echoesOf = (size: number): number => Math.max(3, Math.round(CONFIG.payloadBytes / size));

/** The transports a caller process can build, by kind. */
export const PAYLOAD_TRANSPORTS = {
  bulkhead: () => bulkheadTransport('bulkhead (validated)'),
  'bulkhead-release': () => bulkheadReleasingTransport('bulkhead + releaseBytes'),
  raw: () => rawBytesTransport(),
  cbor: () => rawCborTransport(false),
  fork: () => forkTransport('advanced'),
  worker: () => workerTransport(),
} satisfies Record<string, () => Promise<Transport>>;

/** A key of PAYLOAD_TRANSPORTS. */
export type PayloadTransportKind = keyof typeof PAYLOAD_TRANSPORTS;

/** True when `kind` names a transport a caller process can build. */
export function isPayloadTransportKind(kind: string): kind is PayloadTransportKind {
  return Object.hasOwn(PAYLOAD_TRANSPORTS, kind);
}

/**
 * Untimed echoes of the smallest size each transport makes before the first round: as many as every other
 * scenario's warm-up calls (CONFIG.warmup, 3000). V8 13/14 optimize a function with TurboFan only after 3000
 * invocations (`--invocation-count-for-turbofan`), and a transport's JavaScript runs once or a few times per
 * echo, so a shorter warm-up times the tier-up instead of the transport (bench/README.md, round seven).
 */
export const warmupEchoes = (): number => CONFIG.warmup;

/** Bench process → caller process. */
export type CallerRequest = { op: 'warmup'; echoes: number } | { op: 'rate'; size: number; echoes: number };

/** Caller process → bench process. */
export type CallerReply =
  | { type: 'ready'; name: string }
  | { type: 'done' }
  /** MB/s of the run, and CPU µs per echo of the caller's process and of its peer (0 when the peer is a thread of the caller). */
  | { type: 'rate'; rate: number; callerCpu: number; peerCpu: number }
  | { type: 'error'; message: string };

/** Echoes `data` `echoes` times in sequence; payload MB/s (10^6 bytes / round-trip second). */
export async function echoRate(t: Transport, data: Buffer, echoes: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < echoes; i++) {
    const result = (await t.call('bytes', { data })) as { data: Uint8Array };
    if (result.data.length !== data.length) throw new Error(`${t.name} echoed ${result.data.length} bytes of ${data.length}`);
    t.done?.(result);
  }
  return (data.length * echoes) / ((performance.now() - start) / 1000) / 1e6;
}
