/**
 * The broker's caches of code (the runtime code cache and Node's compile
 * cache, the precompiled validators) inside a profile's write paths.
 *
 * Helpers load code from these directories, and only the broker may write
 * them: a helper that could would plant code that other helpers run. The
 * plan binds every path read-only except the write paths, so a write path
 * that contains a cache directory (`"write": ["/tmp"]` with the default
 * `TMPDIR`), or lies inside one, would make it writable. So:
 * - under bubblewrap such a directory is bound read-only again, after every
 *   other bind (a mount over the writable one);
 * - with a uid drop the files stay the broker's, 0644 in 0755 directories;
 * - with neither, only Node's permission model stands, and it cannot take a
 *   directory out of a write grant: that helper is not given the caches (their
 *   variables are removed), and the plan reports that it can write them.
 * @module
 */
import { isWithin, withRealPath } from './paths.js';

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

/** `env` without the variables of `caches` (a copy; `env` is left as it is). */
export function withoutCacheVariables(env: Readonly<Record<string, string>>, caches: BrokerCaches): Record<string, string> {
  const copy = { ...env };
  for (const name of caches.env) Reflect.deleteProperty(copy, name);
  return copy;
}
