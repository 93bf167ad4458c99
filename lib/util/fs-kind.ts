/**
 * Whether a path is a file or a directory, false when it does not exist or
 * cannot be looked at (for checks that only want a yes or no).
 * @module
 */
import { statSync } from 'node:fs';

/** True when `path` is a regular file (following links). */
export function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false; // missing or unreadable: not a file we can use
  }
}

/** True when `path` is a directory (following links). */
export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false; // missing or unreadable: not a directory we can use
  }
}
