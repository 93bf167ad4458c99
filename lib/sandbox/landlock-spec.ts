/**
 * The Landlock vocabulary shared by the broker ({@link ./landlock.ts}) and
 * the pre-exec step ({@link ./landlock-exec.ts}): the spec one passes to the
 * other, and the kernel's access-right bits. Pure data, no imports.
 * @module
 */

/** What to restrict: the spec the broker passes as the first argument. */
export interface LandlockSpec {
  /** Scopes (ABI 6): refuse abstract Unix sockets and signals that leave the domain; omitted (with `fs`): no Landlock at all. */
  scope?: { abstractUnix: boolean; signal: boolean };
  /** Filesystem rules; omitted: the filesystem is not restricted by Landlock. */
  fs?: { abi: number; read: string[]; write: string[]; exec: string[] };
  /** The exec guard's seccomp program, base64 (lib/sandbox/exec-guard-stage.ts); omitted: a plain execve. */
  execGuard?: string;
  /** koffi's native binary, loaded directly (faster than koffi's index.js); omitted: require('koffi'). */
  koffi?: string;
}

/** LANDLOCK_ACCESS_FS_* bits. */
export const FS = {
  EXECUTE: 1 << 0, WRITE_FILE: 1 << 1, READ_FILE: 1 << 2, READ_DIR: 1 << 3, REMOVE_DIR: 1 << 4, REMOVE_FILE: 1 << 5,
  MAKE_CHAR: 1 << 6, MAKE_DIR: 1 << 7, MAKE_REG: 1 << 8, MAKE_SOCK: 1 << 9, MAKE_FIFO: 1 << 10, MAKE_BLOCK: 1 << 11, MAKE_SYM: 1 << 12,
  REFER: 1 << 13, TRUNCATE: 1 << 14, IOCTL_DEV: 1 << 15,
} as const;

/** Every fs access right the given ABI knows (1: 13 rights; 2 adds REFER; 3 TRUNCATE; 5 IOCTL_DEV). */
export function handledFs(abi: number): number {
  let bits = (1 << 13) - 1;
  if (abi >= 2) bits |= FS.REFER;
  if (abi >= 3) bits |= FS.TRUNCATE;
  if (abi >= 5) bits |= FS.IOCTL_DEV;
  return bits;
}

