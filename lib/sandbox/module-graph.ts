/**
 * A helper's own code, found the way Node would load it: the files its entry
 * imports (statically, by a literal dynamic `import()`, a literal `require()`
 * or `new URL('./x', import.meta.url)`), the package.json files Node reads to
 * load them, and the packages they import with those packages' dependencies.
 * The sandbox grants exactly this, so a helper reads its code and not its
 * siblings, the app's other packages or bulkhead's dev dependencies.
 *
 * Local files (reached by a relative, absolute, `#imports` or self-reference
 * specifier) are granted one by one and lexed in turn (es-module-lexer, which
 * also reads type-only TypeScript). A package reached by a bare specifier is
 * granted as its whole directory, with the packages its package.json depends on:
 * a package may load its own files in ways no lexer sees, and a package is
 * one unit of code. A package that holds files already granted (bulkhead's
 * own, whose runtime the broker lists file by file) is entered through its
 * `exports` like local code instead.
 *
 * Results are cached per entry and revalidated by the size and mtime of every
 * file and package.json they were built from (a file that appears where none
 * was, without any of those changing, is not noticed until one does). The
 * conditions applied do not depend on the Node line (all of Node's are
 * taken), so the node version is not part of the key.
 * @module
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, extname, isAbsolute, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { init } from 'es-module-lexer';
import { fileCandidates, findPackage, mapTargets, specifiersOf, splitSpecifier, type PackageJson } from './node-resolution.js';
import { isWithin } from './paths.js';
import { isFile } from '../util/fs-kind.js';

/** What a helper's code needs to be read. */
export interface ModuleReadSet {
  /** Module (and asset) files reached by path, granted one by one. */
  files: string[];
  /** package.json files Node reads to load them (module type, `imports`, `exports`). */
  manifests: string[];
  /** Package directories reached by bare specifiers, plus their dependencies' directories. */
  packages: string[];
  /** Specifiers no file answers (Node fails on them as well, or the code guards them). */
  unresolved: string[];
}

/** Files whose text is lexed for imports; others (JSON, addons, assets) are only granted. */
const CODE_EXTENSIONS = new Set(['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts', '.jsx', '.tsx']);

interface CacheEntry {
  set: ModuleReadSet;
  /** path → "size:mtimeMs" of every file the set was built from ("" when it was missing). */
  stamps: Map<string, string>;
}

const cache = new Map<string, CacheEntry>();

function stamp(path: string): string {
  try {
    const st = statSync(path);
    return `${st.size}:${st.mtimeMs}`;
  } catch {
    return '';
  }
}

/**
 * The granted files under the real directory of `real` that `file` (a path to it through a
 * symlink) stands for, at their paths through that same symlink.
 */
function linkedSiblings(file: string, real: string, granted: ReadonlySet<string>): string[] {
  // The longest common tail of both paths, from a separator: `/dist/lib/x.js` of `/app/node_modules/pkg` and `/src/pkg`.
  let i = file.length;
  let j = real.length;
  while (i > 0 && j > 0 && file[i - 1] === real[j - 1]) {
    i--;
    j--;
  }
  const tail = file.indexOf(sep, i);
  if (tail < 0) return [];
  const linkRoot = file.slice(0, tail);
  const realRoot = real.slice(0, j + tail - i);
  const out: string[] = [];
  for (const path of granted) {
    if (path === real || !isWithin(path, realRoot)) continue;
    try {
      if (statSync(path).isFile()) out.push(linkRoot + path.slice(realRoot.length));
    } catch {
      // gone: nothing to grant
    }
  }
  return out;
}

function realPath(path: string): string {
  try {
    return realpathSync.native(path);
  } catch {
    return path;
  }
}

/**
 * The read set of one or more entry modules (cached; a changed or removed file
 * or package.json it was built from makes the next call recompute it).
 * @param entries - absolute paths of the entry modules
 * @param granted - files already granted by the caller (bulkhead's runtime): not entered again
 */
export async function moduleReadSet(entries: readonly string[], granted: readonly string[] = []): Promise<ModuleReadSet> {
  const key = JSON.stringify([entries, granted]);
  const hit = cache.get(key);
  if (hit !== undefined && [...hit.stamps].every(([path, seen]) => stamp(path) === seen)) return hit.set;
  await init();
  const walk = new GraphWalk(new Set(granted));
  for (const entry of entries) walk.addFile(entry);
  walk.drain();
  const set = walk.result();
  cache.set(key, { set, stamps: walk.stamps });
  return set;
}

/** Drops every cached read set (tests measure the cold path with it). */
export function clearModuleReadSetCache(): void {
  cache.clear();
}

/**
 * Directories of the named packages as Node finds them from `fromDir`, plus the
 * directories of their dependencies (package.json `dependencies`,
 * `optionalDependencies`, `peerDependencies`), transitively.
 */
export function packageClosure(names: readonly string[], fromDir: string): string[] {
  const walk = new GraphWalk(new Set());
  for (const name of names) walk.addPackage(name, fromDir, name);
  return walk.result().packages;
}

class GraphWalk {
  readonly stamps = new Map<string, string>();
  private readonly files = new Set<string>();
  private readonly manifests = new Set<string>();
  private readonly packages = new Set<string>();
  private readonly unresolved = new Set<string>();
  private readonly queue: string[] = [];
  private readonly json = new Map<string, PackageJson | undefined>();

  constructor(private readonly granted: ReadonlySet<string>) {}

  result(): ModuleReadSet {
    return { files: [...this.files], manifests: [...this.manifests], packages: [...this.packages], unresolved: [...this.unresolved] };
  }

  /** True when the caller already grants this path (exactly, or a directory holding it). */
  private isGranted(path: string): boolean {
    if (this.granted.has(path)) return true;
    for (const granted of this.granted) if (isWithin(path, granted)) return true;
    return false;
  }

  addFile(file: string): void {
    if (this.files.has(file) || this.isGranted(file)) return;
    const real = realPath(file);
    if (this.isGranted(real)) {
      // A granted file reached through a symlinked package (npm link, workspaces): Node opens it at this path too,
      // and the granted files beside it (bulkhead's facade loads its loader and runtime script relative to itself).
      this.files.add(file);
      for (const sibling of linkedSiblings(file, real, this.granted)) this.files.add(sibling);
      return;
    }
    this.files.add(file);
    this.stamps.set(file, stamp(file));
    if (CODE_EXTENSIONS.has(extname(file))) this.queue.push(file);
    const scope = this.scopeOf(file);
    if (scope !== undefined) this.manifests.add(scope);
  }

  drain(): void {
    for (let file = this.queue.pop(); file !== undefined; file = this.queue.pop()) {
      let source: string;
      try {
        source = readFileSync(file, 'utf8');
      } catch {
        continue; // vanished or unreadable: Node will say so at launch
      }
      for (const specifier of specifiersOf(source, file)) this.resolveFrom(specifier, file);
    }
  }

  /** The nearest package.json above a file (its package scope), read and stamped. */
  private scopeOf(file: string): string | undefined {
    for (let dir = dirname(file); ; dir = dirname(dir)) {
      const candidate = join(dir, 'package.json');
      if (this.readJson(candidate) !== undefined) return candidate;
      if (dir === dirname(dir) || dir.endsWith(`${sep}node_modules`)) return undefined;
    }
  }

  private readJson(path: string): PackageJson | undefined {
    if (this.json.has(path)) return this.json.get(path);
    let value: PackageJson | undefined;
    try {
      const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
      value = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : undefined;
    } catch {
      value = undefined;
    }
    this.json.set(path, value);
    this.stamps.set(path, stamp(path));
    return value;
  }

  private resolveFrom(specifier: string, from: string): void {
    if (specifier.startsWith('node:') || isBuiltin(specifier)) return;
    if (specifier.startsWith('file:')) {
      try {
        return this.addPath(fileURLToPath(specifier), specifier);
      } catch {
        return void this.unresolved.add(specifier);
      }
    }
    if (specifier.startsWith('./') || specifier.startsWith('../') || specifier === '.' || specifier === '..' || isAbsolute(specifier)) {
      return this.addPath(resolve(dirname(from), specifier.split(/[?#]/)[0]!), specifier);
    }
    const scope = this.scopeOf(from);
    const scopeJson = scope === undefined ? undefined : this.readJson(scope);
    if (specifier.startsWith('#')) {
      const targets = scopeJson === undefined ? [] : mapTargets(scopeJson.imports, specifier);
      if (targets.length === 0) this.unresolved.add(specifier);
      for (const target of targets) {
        if (target.startsWith('./')) this.addPath(resolve(dirname(scope!), target), specifier);
        else this.resolveFrom(target, from); // an import map entry may name a package
      }
      return;
    }
    const { name, subpath } = splitSpecifier(specifier);
    if (name === undefined) return void this.unresolved.add(specifier);
    // Self-reference: a module of package P importing P/... goes through P's own exports.
    if (scopeJson !== undefined && scopeJson.name === name && scopeJson.exports !== undefined) {
      return this.enterPackage(dirname(scope!), scopeJson, subpath, specifier);
    }
    this.addPackage(name, dirname(from), specifier, subpath);
  }

  /** Finds package `name` above `fromDir` and grants it (or enters it file by file when it holds granted files). */
  addPackage(name: string, fromDir: string, specifier: string, subpath = '.'): void {
    const root = findPackage(name, fromDir);
    if (root === undefined) return void this.unresolved.add(specifier);
    const manifest = join(root, 'package.json');
    const json = this.readJson(manifest);
    const realRoot = realPath(root);
    if (this.isGranted(root)) return; // granted whole already (a runtime package)
    if (this.isGranted(realRoot)) {
      // The same package reached through a symlink (pnpm, npm link): Node looks it up at this path first.
      this.packages.add(root);
      return;
    }
    if ([...this.granted].some((file) => isWithin(file, realRoot))) {
      this.manifests.add(manifest);
      return this.enterPackage(root, json ?? {}, subpath, specifier);
    }
    if (this.packages.has(root)) return;
    this.packages.add(root);
    if (json === undefined) return;
    for (const field of [json.dependencies, json.optionalDependencies, json.peerDependencies]) {
      if (field === null || typeof field !== 'object') continue;
      for (const dependency of Object.keys(field)) {
        const depRoot = findPackage(dependency, root);
        if (depRoot !== undefined && !this.packages.has(depRoot)) this.addPackage(dependency, root, dependency);
      }
    }
  }

  /** Resolves `subpath` inside a package by its exports (or main/paths) and adds the files as local code. */
  private enterPackage(root: string, json: PackageJson, subpath: string, specifier: string): void {
    if (json.exports !== undefined) {
      const targets = mapTargets(json.exports, subpath);
      if (targets.length === 0) this.unresolved.add(specifier);
      for (const target of targets) if (target.startsWith('./')) this.addPath(resolve(root, target), specifier);
      return;
    }
    this.addPath(subpath === '.' ? root : join(root, subpath), specifier);
  }

  /** Adds the file a path names, as Node's resolution would find it (exact, with an extension, or a directory's main/index). */
  private addPath(path: string, specifier: string): void {
    const file = fileCandidates(path, (dir) => this.readJson(join(dir, 'package.json'))).find(isFile);
    if (file === undefined) this.unresolved.add(specifier);
    else this.addFile(file);
  }
}

