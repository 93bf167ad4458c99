/**
 * Which of bulkhead's own code a packaged validators module (lib/protocol/packaged-validators.ts) was made with.
 * The module's validators, its key table, its canonical JSON and hash, and the document check it lets the loader
 * skip all come from bulkhead's code as much as from the protocol file and ajv: the ajv set-up and the endpoint
 * keyword (ajv.ts, endpoint-keyword.ts), the generator (validators-module.ts), the schema table and the document
 * check (compiled-protocol.ts, document.ts), the hash (hash.ts), and what they import. `npm run build` writes the
 * module; a later `tsc` alone rebuilds that code and leaves the module as it was.
 *
 * So the build records, in the module, the compiled files of that code (the static import graph of
 * {@link VALIDATORS_CODE_ROOTS} under dist/lib) and one hash of their bytes; the loader hashes the same files as
 * they are now and takes the module only when the two agree. Any change to the graph changes a file in it (the
 * importer), so the recorded list needs no upkeep. Reading and hashing them is ~50 KB, once per process.
 *
 * The broker's per-helper validators modules (lib/protocol/precompiled.ts) are named by the same hash
 * ({@link validatorsCodeKey}), so a module another build of bulkhead left in the cache is never handed to helpers.
 * @module
 */
// Nothing at the top level: validators-module.ts imports this file and sits in the helper's bundle (unused there), where
// esbuild keeps any top-level statement with an effect and a helper would run it at start-up. Builtins are taken at use.
const fs = (): typeof import('node:fs') => process.getBuiltinModule('node:fs');
const path = (): typeof import('node:path') => process.getBuiltinModule('node:path');

/** dist/lib: the directory the recorded files are relative to. */
export function ownLibDir(): string {
  return path().join(process.getBuiltinModule('node:url').fileURLToPath(import.meta.url), '..', '..');
}

/** The modules whose import graph shapes a packaged module: its generator, and the loader the build checks the document with. */
export const VALIDATORS_CODE_ROOTS: readonly string[] = ['protocol/validators-module.js', 'protocol/registry.js'];

/** What a packaged module records of the code it was made with. */
export interface ValidatorsCode {
  /** Files relative to dist/lib, `/`-separated, sorted. */
  files: string[];
  /** {@link validatorsCodeHash} of those files when the module was made. */
  hash: string;
}

/** Relative module specifiers in compiled JavaScript: `from './x.js'`, `import './x.js'`, `import('./x.js')`. */
const RELATIVE_SPECIFIER = /\b(?:from|import)\s*\(?\s*(['"])(\.\.?\/[^'"\n]+)\1/g;

/**
 * The files of `roots`' static import graph under `libDir` (build time): each root and every relative module it
 * imports or re-exports, transitively. A specifier that names no file (in a comment, say) is passed over.
 * @param libDir - the compiled lib directory (dist/lib)
 * @param roots - files relative to `libDir`
 */
export function validatorsCodeFiles(libDir: string = ownLibDir(), roots: readonly string[] = VALIDATORS_CODE_ROOTS): string[] {
  const seen = new Set<string>();
  const pending = [...roots];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (seen.has(file) || !fs().existsSync(path().join(libDir, file))) continue;
    seen.add(file);
    for (const match of fs().readFileSync(path().join(libDir, file), 'utf8').matchAll(RELATIVE_SPECIFIER)) {
      const { posix } = path();
      const target = posix.normalize(posix.join(posix.dirname(file), match[2]!));
      if (!target.startsWith('../')) pending.push(target);
    }
  }
  return [...seen].sort();
}

/**
 * One SHA-256 over `files` (names and bytes) as they are under `libDir` now, or undefined when one cannot be read.
 * @param files - relative to `libDir`, as {@link validatorsCodeFiles} gives them
 */
export function validatorsCodeHash(files: readonly string[], libDir: string = ownLibDir()): string | undefined {
  const hash = process.getBuiltinModule('node:crypto').createHash('sha256');
  for (const file of files) {
    let bytes: Buffer;
    try {
      bytes = fs().readFileSync(path().join(libDir, file));
    } catch {
      return undefined;
    }
    // Name and length first, so no two lists of files hash alike.
    hash.update(`${file}\0${bytes.length}\0`).update(bytes);
  }
  return hash.digest('hex');
}

/** The record a build writes into a packaged module: the graph's files and their hash now. */
export function validatorsCodeNow(libDir: string = ownLibDir()): ValidatorsCode {
  const files = validatorsCodeFiles(libDir);
  const hash = validatorsCodeHash(files, libDir);
  if (hash === undefined) throw new Error(`validators-code-key: cannot read the files of ${VALIDATORS_CODE_ROOTS.join(', ')} under ${libDir}`);
  return { files, hash };
}

/** Whether `recorded` (a module's `__code`, untyped) names files that hash now as they did when it was made. */
export function validatorsCodeMatches(recorded: unknown, libDir: string = ownLibDir()): boolean {
  if (typeof recorded !== 'object' || recorded === null) return false;
  const { files, hash } = recorded as Partial<Record<string, unknown>>;
  if (!Array.isArray(files) || files.length === 0 || typeof hash !== 'string') return false;
  if (!files.every((f): f is string => typeof f === 'string' && !f.startsWith('/') && !f.split('/').includes('..'))) return false;
  return validatorsCodeHash(files, libDir) === hash;
}

let ownKey: string | undefined;

/**
 * {@link validatorsCodeNow}'s hash for this process's own dist/lib, computed at first use and kept: the broker names
 * its validators modules by it (validators-module.ts), so it costs one read and hash of the graph per process, and
 * nothing in a helper (which is handed the module's path). Throws when a file of the graph cannot be read.
 */
export function validatorsCodeKey(): string {
  ownKey ??= validatorsCodeNow().hash;
  return ownKey;
}
