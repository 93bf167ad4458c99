/**
 * How Node finds a module's code, as the read set's walk (module-graph.ts) follows it: the specifiers a module's
 * text names, where Node looks a package up, the files it tries for a path, and the targets of a package's
 * `exports` / `imports` map under every condition Node may apply. Pure functions of paths and package.json values,
 * apart from the directory and file checks.
 * @module
 */
import { dirname, join, resolve, sep } from 'node:path';
import { parse } from 'es-module-lexer';
import { isDirectory } from '../util/fs-kind.js';

/** The package.json fields the walk reads. */
export interface PackageJson {
  name?: unknown;
  main?: unknown;
  exports?: unknown;
  imports?: unknown;
  dependencies?: unknown;
  optionalDependencies?: unknown;
  peerDependencies?: unknown;
}

/** Conditions Node may apply when it loads a package's `exports`/`imports` (both import and require). */
const CONDITIONS = new Set(['node', 'import', 'require', 'module-sync', 'node-addons', 'default']);

/** Extensions CommonJS resolution tries after the exact path. */
const REQUIRE_EXTENSIONS = ['.js', '.json', '.node', '.cjs', '.mjs'];

/** A literal `require('x')` (CommonJS code, or a `createRequire` in ESM), which the lexer does not report. */
const REQUIRE_CALL = /\brequire\s*\(\s*(['"])([^'"\\\n]+)\1\s*\)/g;
const URL_REFERENCE = /\bnew\s+URL\s*\(\s*(['"])(\.{1,2}\/[^'"\\\n]+)\1\s*,\s*import\.meta\.url\s*\)/g;

/**
 * Import specifiers named in a module's text (static, literal dynamic, literal require, `new URL(…, import.meta.url)`).
 * es-module-lexer's `init` must have resolved first.
 */
export function specifiersOf(source: string, file: string): string[] {
  const found: string[] = [];
  try {
    const [imports] = parse(source, file);
    for (const entry of imports) {
      if (entry.type === 'import-meta' || (entry.type === 'dynamic' ? entry.probablyTypeOnly || entry.glob : entry.typeOnly)) continue;
      if (typeof entry.specifier === 'string') found.push(entry.specifier);
    }
  } catch {
    // Not lexable as a module (old CommonJS syntax, say): the require scan below still runs.
  }
  for (const match of source.matchAll(REQUIRE_CALL)) found.push(match[2]!);
  for (const match of source.matchAll(URL_REFERENCE)) found.push(match[2]!);
  return found;
}

/** `@scope/name/sub` → name `@scope/name`, subpath `./sub`. */
export function splitSpecifier(specifier: string): { name: string | undefined; subpath: string } {
  const parts = specifier.split('/');
  const count = specifier.startsWith('@') ? 2 : 1;
  if (parts.length < count || parts.slice(0, count).some((p) => p === '' || p === '.' || p === '..')) return { name: undefined, subpath: '.' };
  const rest = parts.slice(count).join('/');
  return { name: parts.slice(0, count).join('/'), subpath: rest === '' ? '.' : `./${rest}` };
}

/** `<dir>/node_modules/<name>` for dir and each ancestor, as Node looks packages up. */
export function findPackage(name: string, fromDir: string): string | undefined {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    if (!dir.endsWith(`${sep}node_modules`)) {
      const candidate = join(dir, 'node_modules', name);
      if (isDirectory(candidate)) return candidate;
    }
    if (dir === dirname(dir)) return undefined;
  }
}

/** What Node would try for a path, in order: exact file, with an extension, a directory's main, its index. */
export function fileCandidates(path: string, readJson: (dir: string) => PackageJson | undefined): string[] {
  const list = [path, ...REQUIRE_EXTENSIONS.map((ext) => path + ext)];
  if (isDirectory(path)) {
    const main = readJson(path)?.main;
    if (typeof main === 'string') {
      const target = resolve(path, main);
      list.push(target, ...REQUIRE_EXTENSIONS.map((ext) => target + ext), ...REQUIRE_EXTENSIONS.map((ext) => join(target, `index${ext}`)));
    }
    list.push(...REQUIRE_EXTENSIONS.map((ext) => join(path, `index${ext}`)));
  }
  return list;
}

/**
 * Targets of `key` in an `exports` or `imports` map, under every condition Node
 * may use (import and require both: the helper may do either).
 */
export function mapTargets(map: unknown, key: string): string[] {
  if (map === undefined || map === null) return [];
  // Sugar: "exports": "./x.js" or a conditions object at the top means { ".": ... }.
  const isSubpathMap = typeof map === 'object' && !Array.isArray(map) && Object.keys(map).some((k) => k.startsWith('.') || k.startsWith('#'));
  if (!isSubpathMap) return key === '.' ? conditionTargets(map) : [];
  const entries = map as Record<string, unknown>;
  if (Object.hasOwn(entries, key)) return conditionTargets(entries[key]);
  // The longest matching "prefix*suffix" pattern wins, as in Node.
  let best: { prefix: string; value: unknown; star: string } | undefined;
  for (const [pattern, value] of Object.entries(entries)) {
    const star = pattern.indexOf('*');
    if (star === -1) continue;
    const prefix = pattern.slice(0, star);
    const suffix = pattern.slice(star + 1);
    if (key.length >= pattern.length - 1 && key.startsWith(prefix) && key.endsWith(suffix) && (best === undefined || prefix.length > best.prefix.length)) {
      best = { prefix, value, star: key.slice(prefix.length, key.length - suffix.length) };
    }
  }
  if (best === undefined) return [];
  const star = best.star;
  return conditionTargets(best.value).map((target) => target.split('*').join(star));
}

function conditionTargets(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(conditionTargets);
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value as Record<string, unknown>).filter(([condition]) => CONDITIONS.has(condition)).flatMap(([, target]) => conditionTargets(target));
}
