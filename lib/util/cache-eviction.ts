/**
 * Eviction of the broker's code caches (lib/broker/code-cache.ts,
 * lib/broker/validators-code-cache.ts), so that they do not grow with every
 * node binary, bulkhead build and protocol version a user ever ran:
 * - in the compile-cache directory, the `runtime-<binary>` directories of
 *   other node binaries, and the `runtime-*.v8cache` files of the layout before
 *   those directories;
 * - in a `runtime-<binary>` directory, the caches of other runtime builds and
 *   of validators modules, and work directories a killed writer left;
 * - in the compile-cache directory, Node's own compile-cache subdirectories
 *   (`v24.22.3-x64-964aae3f-0`: one per node version, V8 flag set and uid) and
 *   the links the broker makes to them for helpers of other uids
 *   (lib/broker/compile-cache.ts);
 * - in the validators directory, the precompiled validators modules
 *   (`<schema hash>-<ajv install>-<format>.cjs`, lib/protocol/precompiled.ts)
 *   of other protocol versions and bulkhead installs.
 *
 * Only the broker's cache writers run it (its own node processes, after they
 * saved a file; never a helper, never on a launch's path). "Last used" is the
 * modification time: writers write, and the broker touches a binary's
 * directory when it hands it out (when it makes it, then at most daily while launches come, lib/broker/code-cache.ts; made again if evicted meanwhile),
 * a cache file it finds up to date, a validators module when a launch first uses it (again daily), and Node's
 * compile-cache subdirectory (and its link for a uid) when its writer has run (once per broker process, again daily). What was not used for {@link EVICT_AFTER_MS}
 * goes (another app of this uid may still use a recent one), and of the other
 * binaries' directories at most {@link KEEP_OTHER_BINARIES} stay, the most
 * recent. A removed cache only means one uncached launch and a writer run.
 *
 * Safe against another broker doing the same at once (a file already gone is
 * fine; writers write beside a name and rename), and never follows a link: an
 * entry is judged by `lstat`, only plain files and real directories of the
 * expected names are removed, and a directory's removal unlinks links inside
 * it rather than following them.
 * @module
 */

/** An entry not written or used for this long is evicted (another app of this uid may still use a recent one). */
export const EVICT_AFTER_MS = 7 * 24 * 3600 * 1000;

/** The most other binaries' runtime directories kept, however recent (~1.2 MB each). */
export const KEEP_OTHER_BINARIES = 4;

/** Prefix of a code-cache writer's work directory inside a runtime directory (lib/code-cache-writer.ts). */
export const WARM_UP_PREFIX = 'warm-up-';

/** A writer's work directory older than this was left by a killed writer (a run takes seconds). */
const WORK_DIR_MAX_MS = 3600 * 1000;

const RUNTIME_DIR = /^runtime-[0-9a-f]{8}$/;
const OLD_LAYOUT_FILE = /^runtime-[0-9a-f]{16}-.+\.v8cache$/;
const CACHE_FILE = /^(runtime-[0-9a-f]{16}|validators-[0-9a-f]{64}-[0-9a-f]{16})-.+\.v8cache$/;
/** Node's compile-cache subdirectory: `v<version>-<arch>-<V8 flag hash>-<uid>` (the version may carry a pre-release tag). */
const NODE_COMPILE_CACHE_DIR = /^v\d+\.\d+\.\d+[\w.+-]*-[0-9a-f]{8}-\d+$/;
/** A precompiled validators module, in the current (`-d`) or an older format. */
const VALIDATORS_MODULE = /^[0-9a-f]{64}-[0-9a-f]{16}(-[a-z])?\.cjs$/;

/** One entry of a cache directory as lstat saw it. */
interface Entry {
  readonly name: string;
  readonly path: string;
  readonly dir: boolean;
  readonly file: boolean;
  /** A symbolic link (its own times, never its target's). */
  readonly link: boolean;
  readonly mtimeMs: number;
}

/** The entries of `dir` (lstat: a link is neither a file nor a directory here); empty when it cannot be read. */
function entries(dir: string): Entry[] {
  const fs = process.getBuiltinModule('node:fs');
  const found: Entry[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return found;
  }
  for (const name of names) {
    const path = `${dir}/${name}`;
    try {
      const st = fs.lstatSync(path);
      found.push({ name, path, dir: st.isDirectory(), file: st.isFile(), link: st.isSymbolicLink(), mtimeMs: st.mtimeMs });
    } catch {
      // Gone meanwhile (another broker evicting): nothing to judge.
    }
  }
  return found;
}

/** Removes `path` (a file, or a directory and what is in it, links unlinked, never followed); gone already is fine. */
function remove(path: string): void {
  try {
    process.getBuiltinModule('node:fs').rmSync(path, { recursive: true, force: true });
  } catch {
    // Busy or refused: tried again by the next writer.
  }
}

/**
 * In the compile-cache directory `root`: removes the runtime directories of other node binaries than `current` (a
 * name in `root`) unused for {@link EVICT_AFTER_MS}, or beyond the {@link KEEP_OTHER_BINARIES} most recent, and the
 * old layout's `runtime-*.v8cache` files unused for as long. Returns the names removed.
 */
export function evictOtherBinaries(root: string, current: string, now: number = Date.now()): string[] {
  const removed: string[] = [];
  const all = entries(root);
  const others = all.filter((e) => e.dir && e.name !== current && RUNTIME_DIR.test(e.name)).sort((a, b) => b.mtimeMs - a.mtimeMs);
  others.forEach((e, i) => {
    if (i >= KEEP_OTHER_BINARIES || now - e.mtimeMs > EVICT_AFTER_MS) removed.push(e.name);
  });
  for (const e of all) if (e.file && OLD_LAYOUT_FILE.test(e.name) && now - e.mtimeMs > EVICT_AFTER_MS) removed.push(e.name);
  for (const name of removed) remove(`${root}/${name}`);
  return removed;
}

/**
 * In a runtime directory `dir`: removes cache files (the runtime's of any build, validators modules') other than
 * `keep` (names in `dir`) unused for {@link EVICT_AFTER_MS}, and writers' work directories older than an hour.
 * Returns the names removed.
 */
export function evictInBinaryDir(dir: string, keep: readonly string[], now: number = Date.now()): string[] {
  const removed: string[] = [];
  for (const e of entries(dir)) {
    if (keep.includes(e.name)) continue;
    if ((e.file && CACHE_FILE.test(e.name) && now - e.mtimeMs > EVICT_AFTER_MS) || (e.dir && e.name.startsWith(WARM_UP_PREFIX) && now - e.mtimeMs > WORK_DIR_MAX_MS)) removed.push(e.name);
  }
  for (const name of removed) remove(`${dir}/${name}`);
  return removed;
}

/**
 * In the compile-cache directory `root`: removes Node's compile-cache subdirectories (real directories) and the
 * broker's links named like them (the link itself, never its target) unused for {@link EVICT_AFTER_MS}.
 * Returns the names removed.
 */
export function evictNodeCompileCaches(root: string, now: number = Date.now()): string[] {
  const removed = entries(root).filter((e) => (e.dir || e.link) && NODE_COMPILE_CACHE_DIR.test(e.name) && now - e.mtimeMs > EVICT_AFTER_MS).map((e) => e.name);
  for (const name of removed) remove(`${root}/${name}`);
  return removed;
}

/**
 * In the validators directory `dir`: removes precompiled validators modules (plain files) other than `keep` (names in
 * `dir`) unused for {@link EVICT_AFTER_MS}. Returns the names removed.
 */
export function evictValidatorsModules(dir: string, keep: readonly string[], now: number = Date.now()): string[] {
  const removed = entries(dir).filter((e) => e.file && !keep.includes(e.name) && VALIDATORS_MODULE.test(e.name) && now - e.mtimeMs > EVICT_AFTER_MS).map((e) => e.name);
  for (const name of removed) remove(`${dir}/${name}`);
  return removed;
}

/** Marks `path` (a file, directory or link, never through a link) used now; false when it cannot. */
export function touch(path: string, now: number = Date.now()): boolean {
  try {
    const time = new Date(now);
    process.getBuiltinModule('node:fs').lutimesSync(path, time, time);
    return true;
  } catch {
    return false;
  }
}
