/**
 * The broker's caches of code (the runtime code cache and Node's compile
 * cache, the precompiled validators) inside a profile's write paths.
 *
 * Helpers load code from these directories, and only the broker may write
 * them: a helper that could would plant code that other helpers run. The
 * plan binds every path read-only except the write paths, so a write path
 * that contains a cache directory (`"write": ["/tmp"]` with the default
 * `TMPDIR`), or lies inside one, would make it writable. So:
 * - under bubblewrap every cache directory is bound read-only again, after
 *   every other bind (a mount over the writable one), whether or not the plan
 *   sees a write path reach it (a symlinked write path may be swapped between
 *   planning and bubblewrap);
 * - with a uid drop the files stay the broker's, 0644 in 0755 directories;
 * - with neither, only Node's permission model stands, and it cannot take a
 *   directory out of a write grant: that helper is not given the caches (their
 *   variables are removed), and the plan reports that it can write them.
 *
 * A write path above the directory that holds the caches (the broker's
 * `TMPDIR`) is refused ({@link refuseWritesAboveCaches}): a helper could rename
 * that directory away and rebuild it with caches of its own, which no mount
 * over the old path stops, and which other helpers and the broker's cache
 * writers (unsandboxed) would run. A write path that is that directory itself
 * (`"write": ["/tmp"]`) stays allowed: the caches in it are mount points of
 * the read-only binds, which a rename cannot move (EBUSY).
 * @module
 */
import { dirname } from 'node:path';
import { bulkheadError } from '../errors.js';
import { isWithin, pruneNested, withRealPath } from './paths.js';

/** What the broker tells the sandbox layer about its caches of code. */
export interface BrokerCaches {
  /** The directories (absolute) whose files only the broker writes and helpers load as code. */
  dirs: string[];
  /** The helper's variables that point at them, removed when its sandbox cannot keep them read-only. */
  env: string[];
}

/** What {@link cachesInWritePaths} found. */
export interface ExposedCaches {
  /** The cache directories (each as listed and symlink-resolved) inside a write path or containing one; shortest first. */
  exposedCaches: string[];
  /** True when some are exposed and no OS layer keeps them read-only: the helper must not be given them. */
  withholdCaches: boolean;
}

/**
 * Which of the broker's cache directories `writes` reach. When the host has
 * no OS layer for them (`osKeepsReadOnly`: bubblewrap's bind, or a uid other
 * than the broker's), says so in the `fs.write` rule of `rules`.
 */
export function cachesInWritePaths(dirs: readonly string[], writes: readonly string[], osKeepsReadOnly: boolean, rules: readonly { rule: string; detail?: string }[]): ExposedCaches {
  const found = new Set<string>();
  for (const dir of dirs) {
    const forms = withRealPath(dir);
    if (forms.some((d) => writes.some((w) => isWithin(d, w) || isWithin(w, d)))) for (const d of forms) found.add(d);
  }
  const exposedCaches = [...found].sort((a, b) => a.length - b.length || a.localeCompare(b));
  const withholdCaches = exposedCaches.length > 0 && !osKeepsReadOnly;
  const rule = withholdCaches ? rules.find((r) => r.rule === 'fs.write') : undefined;
  if (rule !== undefined) {
    rule.detail = `${rule.detail ?? ''}; the write paths contain the broker's caches of code (${exposedCaches.join(', ')}), which Node's permission model cannot take out of a write grant: this helper can write them, so it is not given them`;
  }
  return { exposedCaches, withholdCaches };
}

/**
 * Refuses write paths (`writes`, as written and symlink-resolved) that lie strictly above the directory holding a
 * cache directory of `dirs` (as written and resolved): see the module comment.
 * @throws BulkheadError `ERR_INVALID_PROFILE` naming the write path and the cache directory
 */
export function refuseWritesAboveCaches(dirs: readonly string[], writes: readonly string[], context: { profile: string; service: string }): void {
  const forms = (path: string): string[] => [...new Set(withRealPath(path))];
  const writeForms = writes.flatMap(forms);
  for (const dir of dirs) {
    const parents = new Set([...forms(dir).map((d) => dirname(d)), ...forms(dirname(dir))]);
    for (const parent of parents) {
      const above = writeForms.find((w) => w !== parent && isWithin(parent, w));
      if (above === undefined) continue;
      throw bulkheadError(
        'ERR_INVALID_PROFILE',
        `Service "${context.service}": sandbox profile "${context.profile}" lets the helper write ${above}, which holds ${parent}, the directory of the broker's caches of code (${dir}): the helper could rename it away and plant code that other helpers and the broker run. Narrow the write path (to ${parent} itself or below it, or elsewhere), or start the broker with TMPDIR pointing outside ${above}.`,
        { profile: context.profile, pointer: '/fs/write', problems: [{ pointer: '/fs/write', message: `${above} is above ${parent}, where the broker keeps its caches of code` }] },
      );
    }
  }
}

/** What {@link planBrokerCaches} decided: {@link ExposedCaches}, and the directories bound read-only after every write bind. */
export interface BrokerCachesPlan extends ExposedCaches {
  /** Under bubblewrap every cache directory (as listed and resolved), reached or not; else `exposedCaches`. */
  readOnlyCaches: string[];
}

/**
 * The caches' part of a plan: refuses `requested` write paths above them ({@link refuseWritesAboveCaches}), finds those
 * `writes` (the full write list, resolved) reach ({@link cachesInWritePaths}), and which to bind read-only. Under
 * bubblewrap every cache directory is, reached or not: a write path's symlink swapped after planning, or a cache this
 * launch's own protocol did not need, is still not the helper's to write.
 * @throws BulkheadError `ERR_INVALID_PROFILE` for a write path above the caches
 */
export function planBrokerCaches(dirs: readonly string[], requested: readonly string[], writes: readonly string[], host: { bwrap: boolean; dropUser: boolean; rules: readonly { rule: string; detail?: string }[]; profile: string; service: string }): BrokerCachesPlan {
  refuseWritesAboveCaches(dirs, requested, host);
  const exposed = cachesInWritePaths(dirs, writes, host.bwrap || host.dropUser, host.rules);
  return { ...exposed, readOnlyCaches: host.bwrap ? pruneNested(dirs.flatMap(withRealPath)) : exposed.exposedCaches };
}

/** `env` without the variables of `caches` (a copy; `env` is left as it is). */
export function withoutCacheVariables(env: Readonly<Record<string, string>>, caches: BrokerCaches): Record<string, string> {
  const copy = { ...env };
  for (const name of caches.env) Reflect.deleteProperty(copy, name);
  return copy;
}
