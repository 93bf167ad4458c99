/**
 * The log of `bulkhead daemon`: one JSON object per line (pino), on stderr
 * and, with `--log-file`, in files rolled by size (pino-roll).
 *
 * Each line is a daemon log entry (`event`: launch, exit, throttled,
 * failed, denied, kickstart, stop, reload, connect, listening, stopped, or
 * `output` for a line a helper printed, with `service`, `pid`, `stream`,
 * `line`) plus pino's `level` (30 info, 40 warn, 50 error) and `time` (ISO 8601):
 * ```json
 * {"level":40,"time":"2026-05-14T10:31:09.020Z","event":"exit","service":"echo","pid":4242,"code":null,"signal":"SIGABRT","reason":"memory limit (128 MiB)","requested":false}
 * ```
 * Unrequested exits, throttling and denials are warnings; a tripped
 * crash-loop breaker is an error: `jq 'select(.level >= 40)'` shows what
 * went wrong.
 * @module
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type Logger } from 'pino';

/** Options of {@link createDaemonLogger}. */
export interface DaemonLogOptions {
  /** Also write to files rolled by size: `<base>.1.log`, `<base>.2.log`, ... and a `current.log` symlink beside them. */
  file?: string | undefined;
  /** Roll the file at this size ("10m", "512k", or a number of MB). @default "10m" */
  size?: string | undefined;
  /** Rolled files kept besides the current one. @default 5 */
  keep?: number | undefined;
  /** Write the lines to stdout instead of stderr (under systemd, where stdout is the journal). @default false */
  stdout?: boolean | undefined;
}

/** A daemon logger: `write(entry)` for every daemon log entry, `flush()` before exit. */
export interface DaemonLogger {
  write(entry: Record<string, unknown>): void;
  flush(): Promise<void>;
  /** The file being written, when --log-file was given. */
  readonly file: string | undefined;
}

/** The pino level of a daemon log entry. */
export function levelOf(entry: Record<string, unknown>): 'info' | 'warn' | 'error' {
  switch (entry['event']) {
    case 'failed':
      return 'error';
    case 'denied':
    case 'throttled':
      return 'warn';
    case 'exit':
      return entry['requested'] === false ? 'warn' : 'info';
    case 'job':
      return entry['result'] === 'error' ? 'warn' : 'info';
    default:
      return 'info';
  }
}

/** Creates the logger (opens the rolled file first, so a bad path fails before the daemon starts). */
export async function createDaemonLogger(options: DaemonLogOptions = {}): Promise<DaemonLogger> {
  const streams: pino.StreamEntry[] = [{ stream: pino.destination({ dest: options.stdout === true ? 1 : 2, sync: false }) }];
  let file: string | undefined;
  if (options.file !== undefined) {
    const { default: roll } = await import('pino-roll');
    mkdirSync(dirname(options.file), { recursive: true, mode: 0o700 });
    const stream = await roll({ file: options.file, size: options.size ?? '10m', limit: { count: options.keep ?? 5 }, symlink: true, mkdir: true });
    file = stream.file;
    streams.push({ stream });
  }
  const logger: Logger = pino({ base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, pino.multistream(streams));
  return {
    file,
    write: (entry) => logger[levelOf(entry)](entry),
    flush: () => new Promise<void>((resolve) => logger.flush(() => resolve())),
  };
}
