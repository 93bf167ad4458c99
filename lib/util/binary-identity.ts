/**
 * The identity of a node binary file: device, inode, size and modification
 * time (ns). An in-place upgrade (a package manager renames a new file over
 * the path) changes it; the same file by another path (a symlink) keeps it.
 * One `stat` (~2 µs), so the broker reads it on every launch.
 * @module
 */

/** The identity of the file `path` (see the module comment); undefined when it cannot be stat'ed. */
export function binaryIdentity(path: string): string | undefined {
  try {
    const st = process.getBuiltinModule('node:fs').statSync(path, { bigint: true });
    return `${String(st.dev)}:${String(st.ino)}:${String(st.size)}:${String(st.mtimeNs)}`;
  } catch {
    return undefined;
  }
}
