/**
 * Writes a file of code the broker shares with helpers (a code cache, a
 * validators module) so that no reader ever sees half of it: a temporary file
 * beside the target, created exclusively (`wx`: never written through a file
 * or link someone left under that name), mode 0644 whatever the umask (helpers
 * of other uids read it), then renamed over the target. The temporary file is
 * removed on any failure.
 * @module
 */

/**
 * Writes `contents` to `target` atomically (see the module comment).
 * @throws the file system's error (EEXIST for a leftover temporary name, ENOENT when the directory is gone, ...)
 */
export function writeFileAtomically(target: string, contents: Uint8Array | string): void {
  // Not an ESM import: this module is in the helper's bundle (through lib/protocol/precompiled.ts), which should not
  // pay for node:fs's facade.
  const fs = process.getBuiltinModule('node:fs');
  const tmp = `${target}.${String(process.pid)}.tmp`;
  let fd: number;
  try {
    fd = fs.openSync(tmp, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Left by a process of this pid that died between open and rename (in a container the pid repeats across
    // restarts): remove the name (unlink never follows a link) and create it afresh, still exclusively.
    fs.unlinkSync(tmp);
    fd = fs.openSync(tmp, 'wx', 0o644);
  }
  try {
    try {
      fs.writeFileSync(fd, contents);
    } finally {
      fs.closeSync(fd);
    }
    fs.chmodSync(tmp, 0o644);
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
