/** Where a tap run's shared test CA lives (test/shared-ca.ts); no tap import, so tap's `after` script can use it. */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The directory for the run whose tap runner (or, a file run on its own, the file's process) is `pid`. */
export function sharedCaRootOf(pid: number): string {
  // The process's start time (field 22 of /proc/PID/stat, counted after the command) tells a reused pid apart.
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '0';
  return join(tmpdir(), `bulkhead-test-ca-${String(pid)}-${startTime}`);
}
