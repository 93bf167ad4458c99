/**
 * The per-launch private scratch directory: the helper's cwd, HOME and
 * TMPDIR, the one place every profile may write. Created fresh (mode 0700)
 * for each launch and removed after the helper exited.
 *
 * Its name carries the broker's pid and start time
 * (`bulkhead-scratch.<pid>-<start>.<service>-XXXXXX`), so the next broker can
 * tell the scratch of a broker that died without cleaning up (SIGKILL) and
 * reap it ({@link reapStaleScratch}). Removal never fails silently: a tree
 * nested past PATH_MAX, which Node's `fs.rm` cannot remove (ENAMETOOLONG), is
 * removed by `rm -rf`, which walks it with directory fds; what still stays
 * makes `remove()` reject, naming it.
 * @module
 */
import { execFile } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync } from 'node:fs';
import { lstat, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brokerAlive, brokerTag } from './broker-tag.js';
import { findBinary } from './host-probe.js';

/** Prefix of every scratch directory bulkhead creates in the temp dir. */
export const SCRATCH_PREFIX = 'bulkhead-scratch.';

/** A created scratch directory. */
export interface Scratch {
  /** Absolute path (the helper's cwd and HOME). */
  readonly path: string;
  /** `<path>/tmp`, the helper's TMPDIR. */
  readonly tmp: string;
  /** Deletes the directory and everything in it. Idempotent; rejects, naming the path, when something stays. */
  remove(): Promise<void>;
}

/** A service name made safe for a file or cgroup name (names are validated by the manifest; keep them tame regardless). */
export function scratchLabel(service: string): string {
  return service.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
}

/**
 * Creates a scratch directory for one launch.
 * @param service - service name (appears in the directory name, for humans)
 * @param owner - uid/gid to hand the directory to when the helper will run as another user
 */
export function createScratch(service: string, owner?: { uid: number; gid: number }): Scratch {
  // Synchronous on purpose: it is on every sandboxed launch's critical path, and four calls through the thread
  // pool cost ~0.35 ms of wall time there against ~0.05 ms of blocking here (a local mkdir or chown never waits long).
  const path = mkdtempSync(join(tmpdir(), `${SCRATCH_PREFIX}${brokerTag() ?? process.pid}.${scratchLabel(service)}-`));
  const tmp = join(path, 'tmp');
  mkdirSync(tmp, { mode: 0o700 });
  if (owner !== undefined) {
    chownSync(path, owner.uid, owner.gid);
    chownSync(tmp, owner.uid, owner.gid);
  }
  let removal: Promise<void> | undefined;
  return { path, tmp, remove: () => (removal ??= removeTree(path)) };
}

/** Removes a directory tree of any depth; rejects with what stayed. */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true, maxRetries: 2 });
    return;
  } catch (err) {
    // ENAMETOOLONG on trees nested past PATH_MAX (Node's rm works with full paths): rm -rf walks with fds.
    const first = err as NodeJS.ErrnoException;
    const rmBin = findBinary('rm') ?? '/bin/rm';
    const result = await new Promise<string | null>((resolve) => {
      execFile(rmBin, ['-rf', '--one-file-system', '--', path], { timeout: 60_000 }, (error, _stdout, stderr) => resolve(error === null ? null : stderr.trim() || error.message));
    });
    if (result === null && !(await exists(path))) return;
    throw new Error(`could not remove scratch dir ${path}: ${first.code ?? first.message}${result !== null ? `; rm -rf: ${result}` : ''}`, { cause: err });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes the scratch dirs of brokers that are no longer running, from the temp dir.
 * Only real directories (not symlinks), and as non-root only the broker's own uid's.
 * @returns the directories removed
 */
export async function reapStaleScratch(dir: string = tmpdir()): Promise<string[]> {
  const uid = process.getuid?.() ?? -1;
  const reaped: string[] = [];
  let names: string[];
  try {
    names = (await readdir(dir)).filter((name) => name.startsWith(SCRATCH_PREFIX));
  } catch {
    return reaped;
  }
  for (const name of names) {
    const tag = /^bulkhead-scratch\.(\d+-\d+)\./.exec(name)?.[1];
    if (tag === undefined || brokerAlive(tag)) continue;
    const path = join(dir, name);
    try {
      const st = await lstat(path);
      if (!st.isDirectory() || (uid !== 0 && st.uid !== uid)) continue;
      await removeTree(path);
      reaped.push(path);
    } catch {
      // gone meanwhile, or not removable: the next broker start tries again
    }
  }
  return reaped;
}
