/**
 * How a helper's end is told: the exit record, the signal behind a wrapper's
 * 128+N exit code, the line an uncaught exception printed (not the loader's
 * stack frames nor `Node.js v20.x`), and the texts built from them.
 * @module
 */
import { effectiveSignal } from '../sandbox/exit-reason.js';

/** How a helper's process ended. */
export interface ExitInfo {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  /**
   * Signal name, or null. A sandbox wrapper's exit code 128+N (bubblewrap
   * relays its child's death by signal N that way) is reported as signal N,
   * with `code` null.
   */
  signal: NodeJS.Signals | null;
  /** Why, when known: a sandbox limit, "watchdog", "stopped by broker", "spawn failed: ...". */
  reason: string | undefined;
  /** True when the broker asked it to stop. */
  requested: boolean;
  /** Last lines of its stderr. */
  stderrTail: string[];
  /**
   * What the helper threw, when it died of an uncaught exception: the header
   * node printed (e.g. `Error: API_KEY is not set`), or V8's fatal error line
   * (`Fatal process out of memory: ...`); null when stderr has neither.
   */
  thrown?: string | null;
  /** Milliseconds since the Unix epoch. */
  at: number;
  /** How long it ran, in ms. */
  uptimeMs: number;
}

/**
 * Reads an exit as the process inside the wrappers saw it: a relayed 128+N
 * becomes signal N. Only for wrapped (sandboxed) launches; a bare node's own
 * `process.exit(137)` is an exit code.
 */
export function innerExit(code: number | null, signal: NodeJS.Signals | null, wrapped: boolean): { code: number | null; signal: NodeJS.Signals | null } {
  if (!wrapped || signal !== null) return { code, signal };
  const inner = effectiveSignal(code, null);
  return inner === null ? { code, signal } : { code: null, signal: inner };
}

/** A stack frame line (`    at fn (file:1:2)`). */
const FRAME = /^\s+at\s/;
/** The line node or V8 prints for a fatal error (`# Fatal process out of memory: ...`, `FATAL ERROR: ...`). */
const FATAL = /^(#\s*)?(Fatal (error|process)|FATAL ERROR:)/;
/** Node's closing line of a fatal report. */
const NODE_VERSION = /^Node\.js v\d+/;

/**
 * V8's fatal error line when there is one, else the header of the uncaught
 * exception node printed on stderr: the lines just
 * before the first stack frame, back to the blank line after the source
 * excerpt and its caret (`Error: API_KEY is not set`, with its code and
 * cause lines when node printed them). Null when the tail has no stack frame.
 */
export function thrownHeadline(lines: readonly string[]): string | null {
  // A fatal V8/node error (out of memory, a failed CHECK) prints native frames, not JS ones.
  const fatal = lines.find((line) => FATAL.test(line));
  if (fatal !== undefined) return fatal.replace(/^#\s*/, '').trim().slice(0, 500);
  const first = lines.findIndex((line) => FRAME.test(line));
  if (first <= 0) return null;
  const header: string[] = [];
  for (let i = first - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (line.trim() === '' || /^\s*\^+\s*$/.test(line)) break;
    header.unshift(line.trim());
    if (header.length >= 3) break;
  }
  return header.length === 0 ? null : header.join(' ').slice(0, 500);
}

/** "exited with code 1", "was killed by SIGKILL (memory limit)". */
export function describeExit(info: Pick<ExitInfo, 'code' | 'signal' | 'reason'>): string {
  const how = info.signal !== null ? `was killed by ${info.signal}` : info.code !== null ? `exited with code ${info.code}` : 'could not start';
  return info.reason === undefined ? how : `${how} (${info.reason})`;
}

/**
 * What the helper said about its end, on one line, for messages: what it
 * threw, else its last meaningful stderr lines (without node's version line).
 */
export function tailText(info: Pick<ExitInfo, 'stderrTail'> & { thrown?: string | null }): string {
  if (info.thrown !== undefined && info.thrown !== null) return FATAL.test(info.thrown) ? `it died: ${info.thrown}` : `it threw ${info.thrown}`;
  const lines = info.stderrTail.filter((line) => line.trim() !== '' && !NODE_VERSION.test(line));
  const tail = lines.slice(-5).join(' | ').slice(-800);
  return tail === '' ? 'stderr: (empty)' : `stderr: ${tail}`;
}

/** Plain data describing an exit, for error.data. */
export function exitData(info: ExitInfo): Record<string, unknown> {
  return { exitCode: info.code, signal: info.signal, reason: info.reason ?? null, thrown: info.thrown ?? null, stderrTail: info.stderrTail };
}
