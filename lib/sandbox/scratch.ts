/**
 * The per-launch private scratch directory: the helper's cwd, HOME and
 * TMPDIR, the one place every profile may write. Created fresh (mode 0700)
 * for each launch and removed after the helper exited.
 * @module
 */
import { chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A created scratch directory. */
export interface Scratch {
  /** Absolute path (the helper's cwd and HOME). */
  readonly path: string;
  /** `<path>/tmp`, the helper's TMPDIR. */
  readonly tmp: string;
  /** Deletes the directory and everything in it. Idempotent; never throws. */
  remove(): Promise<void>;
}

/**
 * Creates a scratch directory for one launch.
 * @param service - service name (appears in the directory name, for humans)
 * @param owner - uid/gid to hand the directory to when the helper will run as another user
 */
export async function createScratch(service: string, owner?: { uid: number; gid: number }): Promise<Scratch> {
  // Service names are validated by the manifest, but keep the path tame regardless.
  const label = service.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);
  const path = await mkdtemp(join(tmpdir(), `bulkhead-${label}-`));
  const tmp = join(path, 'tmp');
  await mkdir(tmp, { mode: 0o700 });
  if (owner !== undefined) {
    await chown(path, owner.uid, owner.gid);
    await chown(tmp, owner.uid, owner.gid);
  }
  let removal: Promise<void> | undefined;
  return {
    path,
    tmp,
    remove: () => (removal ??= rm(path, { recursive: true, force: true, maxRetries: 2 }).catch(() => undefined)),
  };
}
