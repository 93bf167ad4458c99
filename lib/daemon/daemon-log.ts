/**
 * What a daemon logs: its own events and its broker's (launch, exit, takeover, throttled, failed, denied, job) as
 * structured entries, each kept in the daemon's {@link LogStore} (what `bulkhead logs` reads) and written to its log
 * sink (JSON lines on stderr unless `DaemonOptions.log` names another); a helper's output lines go to both as
 * `output` entries.
 * @module
 */
import type { Broker } from '../broker/broker.js';
import { describeLogEvent, type LogStore } from './log-store.js';

/** One structured log entry. */
export type DaemonLogEntry = Record<string, unknown> & { event: string };

/** Where entries are written: a caller's sink, or JSON lines on stderr with the time in front. */
export type DaemonLogSink = (entry: Record<string, unknown>) => void;

/** The default sink: one JSON line per entry on stderr. */
export const stderrSink: DaemonLogSink = (entry) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);

/** The daemon's log function: each entry kept in `logs` under its service and pid, then written to `write`. */
export function daemonLog(logs: LogStore, write: DaemonLogSink): (entry: DaemonLogEntry) => void {
  return (entry) => {
    const service = typeof entry['service'] === 'string' ? entry['service'] : null;
    const pid = typeof entry['pid'] === 'number' && entry.event !== 'listening' ? entry['pid'] : null;
    logs.event(service, pid, describeLogEvent(entry), entry);
    write(entry);
  };
}

/** Logs `broker`'s lifecycle events through `log`, and its helpers' output lines into `logs` and `write`. */
export function logBrokerEvents(broker: Broker, log: (entry: DaemonLogEntry) => void, logs: LogStore, write: DaemonLogSink): void {
  const pids = new Map<string, number>();
  broker.on('exit', (service, info) => log({ event: 'exit', service, pid: pids.get(service) ?? null, code: info.code, signal: info.signal, reason: info.reason ?? null, requested: info.requested, uptimeMs: info.uptimeMs }));
  broker.on('launch', (service, pid) => {
    pids.set(service, pid);
    log({ event: 'launch', service, pid });
  });
  // Before the old helper's exit; the spare's `launch` follows that exit (docs/launch-policies.md), so `pids` waits for it.
  broker.on('takeover', (service, pid, replaced) => log({ event: 'takeover', service, pid, replaced }));
  broker.on('log', ({ service, pid, stream, line }) => {
    logs.line(service, pid, stream, line);
    write({ event: 'output', service, pid, stream, line });
  });
  broker.on('state', (service, state) => {
    if (state === 'throttled') log({ event: 'throttled', service });
    if (state === 'failed') log({ event: 'failed', service, message: broker.status(service).failure?.message ?? null });
  });
  broker.on('denied', ({ client, service, code }) => log({ event: 'denied', code, client, service }));
  broker.on('job', (service, run) => log({ event: 'job', service, result: run.result, trigger: run.trigger, durationMs: run.durationMs, ...(run.error === undefined ? {} : { error: run.error.code }) }));
}
