/**
 * Crash-safe file writes for the identity layer's state (keys, certificates, the
 * revocation list, signature manifests): the data goes to a uniquely named
 * temporary file in the same directory, created with its final mode and fsynced,
 * which is then renamed (replace) or hard-linked (create only) into place. A
 * reader sees the old file or the new one, never a torn one, and a private key is
 * never readable by others, not even for a moment.
 * @module
 */
import { closeSync, fchmodSync, fsyncSync, linkSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';

/**
 * Writes `data` to `path` atomically with permission bits `mode`, replacing any
 * existing file.
 * @param path - the file to create or replace
 * @param data - the whole content
 * @param mode - permission bits, e.g. `0o600`
 */
export function writeFileAtomic(path: string, data: string, mode: number): void {
  const tmp = writeTemp(path, data, mode);
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dirname(path));
}

/**
 * Writes `data` to `path` atomically with permission bits `mode`, only if `path`
 * does not exist; otherwise throws the `EEXIST` error of `link(2)` and leaves the
 * existing file alone.
 */
export function writeFileExclusive(path: string, data: string, mode: number): void {
  const tmp = writeTemp(path, data, mode);
  try {
    linkSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
  fsyncDir(dirname(path));
}

/** Creates `<path>.<pid>.<random>.tmp` with `mode`, writes and fsyncs `data`; returns its path. */
function writeTemp(path: string, data: string, mode: number): string {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', mode);
  try {
    fchmodSync(fd, mode); // the umask may have removed bits we asked for
    writeSync(fd, data);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  return tmp;
}

/** Flushes a directory entry change (the rename or link) to disk. */
function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
