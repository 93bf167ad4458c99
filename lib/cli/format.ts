/**
 * Text formatting for `bulkhead ps`, `top` and `logs`: the status table
 * (cli-table3, borderless, like `docker ps`), durations, sizes and colours
 * (picocolors: on for a terminal, off for pipes, NO_COLOR and FORCE_COLOR
 * respected).
 * @module
 */
import Table from 'cli-table3';
import pc from 'picocolors';
import type { ServiceStatus } from '../broker/service-supervisor.js';
import type { ExitInfo } from '../broker/helper-process.js';
import type { LogEntry } from '../daemon/log-store.js';

/** picocolors' colour functions. */
export type Colors = ReturnType<typeof pc.createColors>;

/**
 * Whether `stream` is a terminal. `isTTY` is declared boolean by @types/node but is undefined on a
 * pipe or file, hence the optional type and the strict comparison.
 */
export function isTerminal(stream: { isTTY?: boolean }): boolean {
  return stream.isTTY === true;
}

/** Colours when `enabled` (default: what picocolors detected for this process), else identity functions. */
export function colors(enabled: boolean = pc.isColorSupported): Colors {
  return pc.createColors(enabled);
}

/** "850ms", "12s", "4m05s", "3h12m", "2d04h". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

/** "812 KiB", "61.4 MiB", "1.2 GiB". */
export function formatBytes(bytes: number | null): string {
  if (bytes === null) return '-';
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

/** "exit 3", "SIGKILL (memory limit (128 MiB))", "exit 0 (stopped by broker)". */
export function formatExit(exit: ExitInfo | null, maxReason = 48): string {
  if (exit === null) return '-';
  const how = exit.signal !== null ? exit.signal : exit.code !== null ? `exit ${exit.code}` : 'no start';
  if (typeof exit.reason !== 'string') return how; // also null, after a trip through the control protocol
  const reason = exit.reason.length > maxReason ? `${exit.reason.slice(0, maxReason - 1)}…` : exit.reason;
  return `${how} (${reason})`;
}

/** "pure-compute 13/13", "fs-reader 11/12 best-effort", "none" (no profile), "-" (never launched). */
export function formatSandbox(sandbox: ServiceStatus['sandbox']): string {
  if (sandbox === null) return '-';
  if (sandbox.profile === 'none') return 'none';
  const enforced = sandbox.rules.filter((r) => !r.unenforced).length;
  return `${sandbox.profile} ${enforced}/${sandbox.rules.length}${sandbox.enforcement === 'best-effort' ? ' best-effort' : ''}`;
}

/** "in 4m05s", "now", "-". */
export function formatNextRun(status: ServiceStatus, now: number): string {
  const next = status.schedule?.nextRunAt ?? null;
  if (next === null) return '-';
  return next <= now ? 'now' : `in ${formatDuration(next - now)}`;
}

function stateColor(state: string, c: Colors): (text: string) => string {
  switch (state) {
    case 'running': return c.green;
    case 'failed': return c.red;
    case 'throttled': return c.yellow;
    case 'launching':
    case 'stopping': return c.cyan;
    default: return c.dim;
  }
}

/**
 * The state, with what an operator must see at once: how long a running
 * helper's event loop has been silent ("running, unresponsive 3.2s"; the
 * watchdog kills it past launch.watchdogMs) and when a throttled one retries.
 */
export function formatState(s: ServiceStatus, now: number): string {
  const unresponsive = s.unresponsiveMs ?? 0;
  if (unresponsive > 0) return `${s.state}, unresponsive ${formatDuration(unresponsive)}`;
  if (s.state === 'throttled' && s.nextAttemptAt !== null) return `throttled, retry in ${formatDuration(Math.max(0, s.nextAttemptAt - now))}`;
  return s.state;
}

/** Column headers of the status table, in order. */
export const PS_COLUMNS = ['NAME', 'STATE', 'PID', 'UPTIME', 'LAUNCHES', 'CRASHES', 'LAST EXIT', 'CPU%', 'RSS', 'CALLS', 'INFLIGHT', 'NEXT RUN', 'SANDBOX'] as const;

/** The cells of one service's row, uncoloured. */
export function statusRow(s: ServiceStatus, now: number): string[] {
  return [
    s.name,
    formatState(s, now),
    s.pid === null ? '-' : String(s.pid),
    s.startedAt === null || s.pid === null ? '-' : formatDuration(now - s.startedAt),
    String(s.launches),
    String(s.crashes),
    formatExit(s.lastExit),
    s.cpuPercent === null ? '-' : s.cpuPercent.toFixed(1),
    formatBytes(s.rssBytes),
    String(s.callsServed),
    String(s.inFlight),
    formatNextRun(s, now),
    formatSandbox(s.sandbox),
  ];
}

/** The `ps` table: a header row and one row per service, columns aligned, no borders. */
export function statusTable(services: readonly ServiceStatus[], options: { now?: number; colors?: Colors } = {}): string {
  const now = options.now ?? Date.now();
  const c = options.colors ?? colors(false);
  const table = new Table({
    head: PS_COLUMNS.map((h) => c.bold(h)),
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
      left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0, compact: true },
    colAligns: ['left', 'left', 'right', 'right', 'right', 'right', 'left', 'right', 'right', 'right', 'right', 'left', 'left'],
  });
  for (const s of services) {
    const row = statusRow(s, now);
    row[1] = stateColor(s.state, c)(row[1]!);
    if (s.lastExit !== null && !s.lastExit.requested) row[6] = c.red(row[6]);
    table.push(row);
  }
  // cli-table3 pads every line to the table's width; trailing blanks help nobody.
  return table.toString().split('\n').map((line) => line.trimEnd()).join('\n');
}

/** `MM-DD HH:MM:SS.mmm` in local time. */
export function formatTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** One `bulkhead logs` line: `time service[pid] stream: text`. */
export function formatLogEntry(entry: LogEntry, c: Colors = colors(false)): string {
  const who = `${entry.service ?? 'daemon'}${entry.pid === null ? '' : `[${entry.pid}]`}`;
  const stream = entry.stream === 'event' ? c.cyan('event') : entry.stream === 'stderr' ? c.yellow('stderr') : 'stdout';
  return `${c.dim(formatTime(entry.time))} ${c.bold(who)} ${stream}: ${entry.text}`;
}
