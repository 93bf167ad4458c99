/**
 * What a code signature covers in a service directory (lib/identity/code-signing.ts): which files, by a walk that
 * skips {@link DEFAULT_SKIP} unless `include` names it, follows links that stay inside and refuses the rest, and each
 * file's SHA-256.
 * @module
 */
import { closeSync, constants as fsConstants, fstatSync, lstatSync, openSync, readdirSync, readSync, realpathSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, sep } from 'node:path';
import { bulkheadError } from '../errors.js';

/** Name of the signature file at the top of a signed service directory. */
export const SIGNATURE_FILE = 'bulkhead.signature.json';

/** Directory and file names skipped at any depth unless `include` names them. */
export const DEFAULT_SKIP: readonly string[] = ['node_modules', '.git'];

/** Most files one signature may list. */
export const MAX_SIGNED_FILES = 100_000;

/** A file the signature covers: its real path to hash, or why it cannot be signed. */
export type Entry = { ok: true; path: string } | { ok: false; why: string };

/**
 * Lists every file the signature covers, by relative path, each either a real path
 * to hash or the reason it cannot be signed. Sorted by path.
 */
export function listEntries(root: string, include: readonly string[]): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const skip = new Set(DEFAULT_SKIP);
  const scopeOf = (rel: string): 'all' | 'partial' | 'none' => {
    if (include.some((i) => rel === i || rel.startsWith(`${i}/`))) return 'all';
    if (include.some((i) => i.startsWith(`${rel}/`))) return 'partial';
    return 'none';
  };
  const inside = (real: string): boolean => real === root || real.startsWith(root.endsWith(sep) ? root : root + sep);

  // scope: 'normal' applies DEFAULT_SKIP; 'partial' keeps only paths towards an include; 'all' keeps everything.
  const visit = (absDir: string, relDir: string, scope: 'normal' | 'partial' | 'all', ancestors: Set<string>): void => {
    const names = readdirSync(absDir).sort();
    for (const name of names) {
      const rel = relDir === '' ? name : `${relDir}/${name}`;
      if (relDir === '' && name === SIGNATURE_FILE) continue;
      let childScope = scope;
      if (scope === 'partial' || (scope === 'normal' && skip.has(name))) {
        const s = scopeOf(rel);
        if (s === 'none') continue;
        childScope = s;
      }
      const abs = join(absDir, name);
      let st = lstatSync(abs);
      let target = abs;
      if (st.isSymbolicLink()) {
        let real: string;
        try {
          real = realpathSync(abs);
        } catch {
          out.set(rel, { ok: false, why: 'a symbolic link that dangles or loops' });
          continue;
        }
        if (!inside(real)) {
          out.set(rel, { ok: false, why: 'a symbolic link to outside the service directory' });
          continue;
        }
        target = real;
        st = statSync(real);
      }
      if (st.isDirectory()) {
        const real = target === abs ? realpathSync(abs) : target;
        if (ancestors.has(real)) {
          out.set(rel, { ok: false, why: 'a symbolic link that loops back to a parent directory' });
          continue;
        }
        visit(abs, rel, childScope, new Set([...ancestors, real]));
      } else if (st.isFile()) {
        out.set(rel, { ok: true, path: target });
      } else {
        out.set(rel, { ok: false, why: 'not a regular file (FIFO, socket or device)' });
      }
      if (out.size > MAX_SIGNED_FILES) {
        throw bulkheadError('ERR_INVALID_OPTION', `The service directory has more than ${MAX_SIGNED_FILES} files.`, { option: 'dir' });
      }
    }
  };
  visit(root, '', 'normal', new Set([root]));
  return out;
}

/** SHA-256 hex of a regular file, opened without following a final symlink. */
export function hashFile(path: string): string | { why: string; missing?: boolean } {
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { why: 'it disappeared', missing: true };
    return { why: `it cannot be read (${code ?? String(err)})` };
  }
  try {
    if (!fstatSync(fd).isFile()) return { why: 'it is no longer a regular file' };
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
    }
    return hash.digest('hex');
  } finally {
    closeSync(fd);
  }
}
