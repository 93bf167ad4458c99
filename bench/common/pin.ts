/**
 * CPU pinning with `taskset`: sequential round trips swing between ~25 and
 * ~70 µs on a shared 2-core machine depending on whether the two processes
 * wake on the same CPU, so the bench also measures p50 with both processes
 * (every thread) on one CPU, alternating the CPU between rounds.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { processTree } from './proc.js';

let usable: boolean | undefined;

/**
 * The CPUs this process may use, counted once at load, before any pinning: `availableParallelism()`
 * reads this process's own affinity, so once the bench pinned itself it said 1, and `unpin` then
 * "freed" every process to CPU 0 only and `cpuForRound` never alternated (round seven, bench/README.md).
 */
const CPUS = availableParallelism();

/** True when `taskset` exists and may change this process's affinity. */
export function canPin(): boolean {
  if (usable === undefined) {
    try {
      execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
      usable = CPUS > 1;
    } catch {
      usable = false;
    }
  }
  return usable;
}

function setAffinity(pids: readonly number[], cpus: string): void {
  for (const root of pids) {
    for (const pid of processTree(root)) {
      try {
        execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
      } catch {
        // the process exited meanwhile
      }
    }
  }
}

/** The CPU round `round` pins to (alternating). */
export function cpuForRound(round: number): number {
  return round % CPUS;
}

/** Pins `pids` (with their descendants and all their threads) to one CPU. */
export function pin(pids: readonly number[], cpu: number): void {
  setAffinity(pids, String(cpu));
}

/** Lets `pids` run on every CPU again. */
export function unpin(pids: readonly number[]): void {
  setAffinity(pids, `0-${CPUS - 1}`);
}
