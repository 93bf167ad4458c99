/**
 * `node:diagnostics_channel` events for tools (APMs, tracers, tests), as
 * undici publishes its requests: subscribe with
 * `diagnostics_channel.subscribe('bulkhead:call', (message) => ...)`.
 * Messages are published only while a channel has subscribers, so they cost
 * nothing otherwise.
 *
 * - `bulkhead:launch` `{ service, pid }`: a helper was spawned.
 * - `bulkhead:exit` `{ service, pid, code, signal, reason, requested, uptimeMs }`: a helper exited.
 * - `bulkhead:call` `{ service, method, seconds, code }`: a call to a helper
 *   settled (`code` null on success, else the error's code; ERR_INTERRUPTED
 *   when the helper exited first).
 * @module
 */
import { channel } from 'node:diagnostics_channel';
import type { Emitter } from '../util/emitter.js';
import type { ExitInfo } from './helper-process.js';
import type { BrokerMetrics } from './metrics.js';
import type { CallBatch } from '../connection/call-meter.js';

/** The channels' names. */
export const DIAGNOSTICS_CHANNELS = {
  launch: 'bulkhead:launch',
  exit: 'bulkhead:exit',
  call: 'bulkhead:call',
} as const;

const launchChannel = channel(DIAGNOSTICS_CHANNELS.launch);
const exitChannel = channel(DIAGNOSTICS_CHANNELS.exit);
const callChannel = channel(DIAGNOSTICS_CHANNELS.call);

/** A settled call, as the broker's `call` event and the `bulkhead:call` channel carry it. */
export interface CallRecord {
  method: string;
  /** From the broker sending the call to the answer arriving. */
  seconds: number;
  /** null on success, else the code the caller got. */
  code: string | null;
}

/** The broker events this module listens to. */
interface ObservedEvents {
  launch: [service: string, pid: number];
  exit: [service: string, info: ExitInfo];
  call: [service: string, call: CallRecord];
  calls: [service: string, batch: CallBatch];
  [key: string]: unknown[];
}

/**
 * Feeds a broker's launch, exit and call events to its metrics and to the
 * diagnostics channels. A call's timed record (and the broker's `call` event)
 * is made only while something reads it: the metrics after their first render
 * (the duration histogram), a `call` listener besides this one, or a
 * `bulkhead:call` subscriber (told to the metrics here). The helpers count
 * every call in the metrics' CallTally either way.
 */
export function observeBroker(broker: Emitter<ObservedEvents>, metrics: BrokerMetrics): void {
  const pids = new Map<string, number>();
  broker.on('launch', (service, pid) => {
    pids.set(service, pid);
    metrics.launched(service, pid);
    if (launchChannel.hasSubscribers) launchChannel.publish({ service, pid });
  });
  broker.on('exit', (service, info) => {
    metrics.exited(service, info);
    if (exitChannel.hasSubscribers) exitChannel.publish({ service, pid: pids.get(service) ?? null, code: info.code, signal: info.signal, reason: info.reason ?? null, requested: info.requested, uptimeMs: info.uptimeMs });
  });
  broker.on('call', (service, call) => {
    // Counted already (the helper bumped the service's CallTally): the duration only.
    metrics.timed(service, call.seconds);
    if (callChannel.hasSubscribers) callChannel.publish({ service, ...call });
  });
  metrics.timeCallsWhile(() => callChannel.hasSubscribers || broker.listenerCount('call') > 1);
  broker.on('calls', (service, batch) => metrics.callBatch(service, batch));
}
