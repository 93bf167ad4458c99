/**
 * How one helper's end reaches its callers: the exit record made from what the broker knows of it, the
 * error its calls in flight get, and the short wait for its stdio that makes the stderr tail complete.
 * HelperProcess builds both at its exit, and also at its channel's close when the kernel already shows
 * its end (exit-at-close.ts), so the two give the same code, signal, reason and texts.
 * @module
 */
import type { ChildProcess } from 'node:child_process';
import { bulkheadError, type BulkheadError } from '../errors.js';
import { describeExit, exitData, innerExit, thrownHeadline, type ExitInfo } from './exit-report.js';

/** How long to wait for stdio to drain after exit, for a complete stderr tail. */
const STDIO_DRAIN_MS = 200;

/** What a helper's end is told from, besides its code and signal. */
export interface EndFacts {
  /** The service's name. */
  readonly service: string;
  /** The spawned child's pid (the outermost wrapper's when sandboxed). */
  readonly pid: number | undefined;
  /** Launched inside sandbox wrappers: an exit code 128 + N (bubblewrap's relay of a death by signal N) is signal N. */
  readonly wrapped: boolean;
  /** Why, when the broker knows it before any limit is looked at: the spawn failed, or it killed the helper ("watchdog"). */
  readonly knownReason: string | undefined;
  /** The sandbox limit that explains an exit, if any (the launch plan's `explainExit`). */
  explain(code: number | null, signal: NodeJS.Signals | null, stderrTail: readonly string[]): string | undefined;
  /** True when the broker asked it to stop; `stopReason` is then the exit's reason. */
  readonly requested: boolean;
  readonly stopReason: string;
  /** Its stderr's last lines, oldest first. */
  readonly stderr: readonly string[];
  /** When it was spawned (Date.now()). */
  readonly startedAt: number;
  /** launch.watchdogMs, when the watchdog killed it. */
  readonly watchdogMs: number | undefined;
}

/** The exit record of an end the spawned child reports as `code` and `signal`. */
export function exitRecord(facts: EndFacts, code: number | null, signal: NodeJS.Signals | null): ExitInfo {
  // A wrapper (bubblewrap) relays its child's death by signal N as exit code 128+N.
  const inner = innerExit(code, signal, facts.wrapped);
  const reason = facts.knownReason ?? facts.explain(code, signal, facts.stderr) ?? (facts.requested ? facts.stopReason : undefined);
  return {
    code: inner.code, signal: inner.signal, reason, requested: facts.requested, stderrTail: facts.stderr.slice(-20),
    thrown: thrownHeadline(facts.stderr), at: Date.now(), uptimeMs: Date.now() - facts.startedAt,
  };
}

/** The ERR_INTERRUPTED of the calls in flight on a helper that ended as `info`. */
export function interruptedError(facts: EndFacts, info: ExitInfo): BulkheadError {
  const watchdog = facts.watchdogMs === undefined ? '' : `: its event loop sent nothing for over ${facts.watchdogMs} ms (launch.watchdogMs), so the broker killed it`;
  return bulkheadError('ERR_INTERRUPTED', `${facts.service} (pid ${facts.pid ?? '?'}) ${describeExit(info)}${watchdog} while the call was in flight; the next call relaunches it.`, { service: facts.service, ...exitData(info) });
}

/** Runs `then` once, when the exited `child`'s stdio has closed (a complete stderr tail), or after a short wait at most. */
export function afterStdioDrains(child: ChildProcess, then: () => void): void {
  let done = false;
  const once = (): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    then();
  };
  const timer = setTimeout(once, STDIO_DRAIN_MS);
  child.once('close', once);
  if (child.stdout === null || (child.stdout.readableEnded && child.stderr?.readableEnded)) once();
}
