/**
 * Reads the daemon's persisted log (pino JSON lines in
 * `<state-dir>/logs/daemon.N.log`, rolled by pino-roll, or the lines
 * `journalctl -o cat` prints for a daemon under systemd) back into the
 * entries `bulkhead logs` prints, for when no daemon is running to ask.
 * @module
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeLogEvent, type LogEntry } from '../daemon/log-store.js';

/** The rolled files of a log directory, oldest first (daemon.1.log, daemon.2.log, ...). */
export function rolledLogFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((name) => ({ name, n: Number(/^daemon\.(\d+)\.log$/.exec(name)?.[1] ?? NaN) }))
    .filter((f) => Number.isInteger(f.n))
    .sort((a, b) => a.n - b.n)
    .map((f) => join(dir, f.name));
}

/**
 * One daemon log line (a pino JSON object) as a {@link LogEntry}; undefined for
 * a line that is not one (a journal line from something else, a torn last line).
 */
export function entryFromLogLine(line: string, seq: number): LogEntry | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const o = parsed as Record<string, unknown>;
  const event = o['event'];
  if (typeof event !== 'string') return undefined;
  const time = typeof o['time'] === 'string' ? Date.parse(o['time']) : typeof o['time'] === 'number' ? o['time'] : NaN;
  const service = typeof o['service'] === 'string' ? o['service'] : null;
  const pid = typeof o['pid'] === 'number' && event !== 'listening' ? o['pid'] : null;
  if (event === 'output' && (o['stream'] === 'stdout' || o['stream'] === 'stderr') && typeof o['line'] === 'string') {
    return { seq, time: Number.isFinite(time) ? time : 0, service, pid, stream: o['stream'], text: o['line'] };
  }
  const data = Object.fromEntries(Object.entries(o).filter(([key]) => key !== 'level' && key !== 'time'));
  return { seq, time: Number.isFinite(time) ? time : 0, service, pid, stream: 'event', text: describeLogEvent({ ...data, event }), data };
}

/** Entries of the log files in `dir` (oldest first), filtered like the daemon's `logs` query, the last `limit` of them. */
export function readLogFiles(dir: string, filter: { service?: string; events?: boolean; limit: number }): LogEntry[] {
  const entries: LogEntry[] = [];
  let seq = 0;
  for (const file of rolledLogFiles(dir)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const entry = entryFromLogLine(line, ++seq);
      if (entry === undefined) continue;
      if (filter.service !== undefined && entry.service !== filter.service) continue;
      if (filter.events === true && entry.stream !== 'event') continue;
      entries.push(entry);
    }
  }
  return entries.slice(-filter.limit);
}
