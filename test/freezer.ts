// A process made slow to die by a real mechanism: cgroup v1's freezer. A frozen task does not act on SIGKILL until it
// is thawed (cgroup v2's freeze lets a fatal signal through, so it cannot stand in), which is how the mm-holder tests
// make a holder that outlives the broker's SIGKILL. Needs root and the v1 freezer hierarchy; the tests skip without.
import type { Test } from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { polledUntil } from './helpers.js';

const FREEZER = '/sys/fs/cgroup/freezer';

/** Why this host cannot freeze a process here (no cgroup v1 freezer, or no right to make a cgroup in it), or false. */
export function noFreezer(): string | false {
  if (!existsSync(join(FREEZER, 'cgroup.procs'))) return 'no cgroup v1 freezer hierarchy at /sys/fs/cgroup/freezer';
  try {
    rmdirSync(mkdtempSync(join(FREEZER, 'bulkhead-probe-')));
    return false;
  } catch (err) {
    return `cannot make a freezer cgroup (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
}

/**
 * Freezes `pid` in a freezer cgroup of its own (asserted FROZEN: every task stopped, a bounded poll, as nothing
 * signals it); returns its thaw. At teardown the cgroup is thawed, whatever is left in it moved out, and removed.
 */
export async function freeze(t: Test, pid: number): Promise<() => void> {
  const dir = mkdtempSync(join(FREEZER, 'bulkhead-test-'));
  const state = join(dir, 'freezer.state');
  const thaw = (): void => writeFileSync(state, 'THAWED');
  t.teardown(() => {
    thaw();
    for (const left of readFileSync(join(dir, 'cgroup.procs'), 'latin1').split('\n').filter(Boolean)) writeFileSync(join(FREEZER, 'cgroup.procs'), left);
    rmdirSync(dir);
  });
  writeFileSync(join(dir, 'cgroup.procs'), String(pid));
  writeFileSync(state, 'FROZEN');
  t.ok(await polledUntil(() => readFileSync(state, 'latin1').trim() === 'FROZEN', 30_000, 10), `positive control: ${pid} frozen`);
  return thaw;
}

/** True once `pid` has SIGKILL pending: sent, not yet acted on (it is frozen). */
export function sigkillPending(pid: number): boolean {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  return [...status.matchAll(/^(?:SigPnd|ShdPnd):\s+([0-9a-f]+)$/gm)].some((m) => (BigInt(`0x${m[1]!}`) & 0x100n) !== 0n);
}
