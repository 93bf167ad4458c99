/**
 * Path handling for profiles: `${placeholder}` expansion, symlink
 * resolution (a layer must see the path the kernel and Node's ESM loader
 * really use) and pruning of paths already covered by a parent.
 * @module
 */
import { dirname, isAbsolute, join, normalize, relative, sep } from 'node:path';
import { bulkheadError } from '../errors.js';
import { realPathNative } from './fs-answers.js';

/** Placeholders every launch defines; others come from the broker (`SandboxLaunchInput.paths`). */
export const BUILTIN_PLACEHOLDERS = ['serviceDir', 'scratch'] as const;

const PLACEHOLDER = /^\$\{([A-Za-z][A-Za-z0-9]*)\}/;

/**
 * Expands a profile path.
 * @throws BulkheadError `ERR_INVALID_MANIFEST` when the placeholder is not defined for this service
 */
export function expandPath(path: string, vars: Readonly<Record<string, string>>, context: { service: string; profile: string }): string {
  const match = PLACEHOLDER.exec(path);
  if (match === null) return normalize(path);
  const name = match[1]!;
  const value = Object.hasOwn(vars, name) ? vars[name] : undefined;
  if (value === undefined) {
    throw bulkheadError(
      'ERR_INVALID_MANIFEST',
      `Service "${context.service}": sandbox profile "${context.profile}" uses \${${name}}, which this service does not define. Grant it in the manifest's sandboxPaths (e.g. "sandboxPaths": { "${name}": "/some/dir" }) or use another profile.`,
      { service: context.service, profile: context.profile, placeholder: name, pointer: `/sandboxPaths/${name}` },
    );
  }
  if (!isAbsolute(value)) {
    throw bulkheadError('ERR_INVALID_MANIFEST', `Service "${context.service}": sandbox path \${${name}} must be absolute, got "${value}".`, { service: context.service, placeholder: name, pointer: `/sandboxPaths/${name}` });
  }
  return normalize(value + path.slice(match[0].length));
}

/** The path and, when it differs, its symlink-resolved form (missing paths resolve to themselves). */
export function withRealPath(path: string): string[] {
  const real = realPathNative(path);
  return real === undefined || real === path ? [path] : [path, real];
}

/**
 * True when `path` (whose symlink-resolved form is `real`) lies inside one of `writes` (paths the helper may write) and
 * resolves, below that write path, to somewhere else: a symlink in a directory the helper writes, which it could have
 * made to point anywhere the broker can read. Binding such a read path (or granting its target) would hand the helper
 * that target at its next launch.
 */
export function linkedBelowWrite(path: string, real: string, writes: readonly string[]): boolean {
  for (const write of writes) {
    if (!isWithin(path, write)) continue;
    const realWrite = withRealPath(write).at(-1)!;
    if (real !== (path === write ? realWrite : join(realWrite, relative(write, path)))) return true;
  }
  return false;
}

/** True when `child` is `parent` or lies below it. */
export function isWithin(child: string, parent: string): boolean {
  if (parent === '/') return true;
  return child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);
}

/** Removes duplicates and paths inside another path of the list; sorted shortest first. */
export function pruneNested(paths: readonly string[]): string[] {
  const sorted = [...new Set(paths)].sort((a, b) => a.length - b.length || a.localeCompare(b));
  const kept: string[] = [];
  for (const path of sorted) {
    if (!kept.some((parent) => isWithin(path, parent))) kept.push(path);
  }
  return kept;
}

/** Every ancestor directory of `path`, root excluded, shortest first. */
export function ancestors(path: string): string[] {
  const list: string[] = [];
  for (let dir = dirname(path); dir !== '/' && dir !== '.'; dir = dirname(dir)) list.unshift(dir);
  return list;
}
