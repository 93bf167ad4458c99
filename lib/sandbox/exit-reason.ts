/**
 * Turns a helper's exit into the sandbox limit that caused it. Wrappers that
 * stay as the helper's parent (bubblewrap with a pid namespace) report a
 * signal death as exit code 128 + signal number, so both forms are read.
 * @module
 */
import { constants } from 'node:os';

/** The limits an exit can be blamed on. */
export interface ExitLimits {
  memoryMiB?: number;
  cpuSeconds?: number;
  fileSizeMiB?: number;
}

/** Lines node prints when it dies of memory exhaustion (V8 heap or malloc failure). */
const OOM_PATTERN = /heap out of memory|Allocation failed|process out of memory|Reached heap limit/i;

/** The signal behind an exit, whether reported as a signal or as 128 + n by a wrapper. */
export function effectiveSignal(code: number | null, signal: NodeJS.Signals | null): NodeJS.Signals | null {
  if (signal !== null) return signal;
  if (code === null || code <= 128 || code > 128 + 64) return null;
  const n = code - 128;
  for (const [name, value] of Object.entries(constants.signals)) {
    if (value === n) return name as NodeJS.Signals;
  }
  return null;
}

/**
 * Names the sandbox limit that explains an exit, if any.
 * @param limits - the limits the launch ran under
 * @param code - exit code (null when killed by a signal)
 * @param signal - terminating signal (null when it exited)
 * @param stderrTail - last stderr lines, when the caller has them (sharpens the memory verdict)
 * @returns e.g. "memory limit (256 MiB)", or undefined when no limit explains it
 */
export function explainExit(limits: ExitLimits, code: number | null, signal: NodeJS.Signals | null, stderrTail?: string | readonly string[]): string | undefined {
  const sig = effectiveSignal(code, signal);
  const tail = stderrTail === undefined ? '' : typeof stderrTail === 'string' ? stderrTail : stderrTail.join('\n');
  if (sig === 'SIGXCPU' && limits.cpuSeconds !== undefined) return `CPU time limit (${limits.cpuSeconds} s)`;
  if (sig === 'SIGXFSZ' && limits.fileSizeMiB !== undefined) return `file size limit (${limits.fileSizeMiB} MiB)`;
  // Only the seccomp filter of a profile with "syscalls": { "onViolation": "kill" } sends SIGSYS.
  if (sig === 'SIGSYS') return 'refused system call (seccomp, onViolation "kill")';
  if (limits.memoryMiB !== undefined) {
    // V8 aborts (SIGABRT) when the heap limit or RLIMIT_DATA is hit; the kernel's OOM killer sends SIGKILL.
    if (OOM_PATTERN.test(tail)) return `memory limit (${limits.memoryMiB} MiB)`;
    if (sig === 'SIGABRT') return `memory limit (${limits.memoryMiB} MiB), probably: the helper aborted`;
  }
  return undefined;
}
