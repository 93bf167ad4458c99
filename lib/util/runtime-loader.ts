/**
 * Loads bulkhead's helper runtime (`dist/lib/service.runtime.cjs`, one classic
 * script built by scripts/build-runtime.mjs) through `node:vm`, with V8's code
 * cache when the broker made one for this runtime, node binary and flag set.
 * `bulkhead/service` is a small ESM facade over what this returns; the broker's
 * cache writer (lib/code-cache-writer.ts) loads the runtime the same way, warms
 * it up and saves `script.createCachedData()`.
 *
 * Why a classic script: V8 caches the bytecode of every function compiled so
 * far when `createCachedData()` runs, so a cache made after a warm-up (a hello
 * and a call) spares a helper compiling the runtime *and* the functions its
 * first call runs. Node has no such API for an ES module (Node 20 has no code
 * cache for modules at all).
 *
 * Why the cache file holds a copy of the source: V8 checks a cache's version,
 * flags and the source's *length*, not its content; a cache made for one script
 * is accepted for another of the same length and runs the old code. The file
 * name carries the runtime's build id (a hash of its content, written into its
 * first line by the build) and the node version, architecture and V8 flags; the
 * loader then uses the cache only when the source copy in it equals the runtime
 * file byte for byte (a memcmp, far cheaper than hashing on a cold start).
 *
 * Imports nothing: it runs first in every helper, before anything is loaded.
 * @module
 */
import type { Script } from 'node:vm';

/** What became of the code cache in this load. */
export type CodeCacheState =
  /** No cache directory given (not a helper, or the broker's cache is off). */
  | 'off'
  /** No cache file for this runtime, node and flags (yet), or it could not be read. */
  | 'missing'
  /** A cache file whose source copy is not this runtime file, or which is malformed: not used. */
  | 'stale'
  /** V8 refused the cache (another version or flags, or a bad payload): compiled from source. */
  | 'rejected'
  /** V8 took the cache. */
  | 'accepted';

/** The runtime as loaded: its exports and how. */
export interface LoadedRuntime {
  readonly exports: Record<string, unknown>;
  /** The compiled script (the cache writer saves its code cache). */
  readonly script: Script;
  /** The runtime file's bytes, as compiled. */
  readonly source: Buffer;
  /** The cache file for this runtime, node and flags; undefined without a cache directory or build id. */
  readonly cacheFile: string | undefined;
  readonly codeCache: CodeCacheState;
}

/** First bytes of a cache file, then the source length (u32 LE), the source, and V8's cache data. */
export const CODE_CACHE_MAGIC = 'bulkhead-code-cache-1\n';

/** The runtime's first line: `/*bulkhead-runtime:<16 hex digits>*\/`. */
const BUILD_ID = /^\/\*bulkhead-runtime:([0-9a-f]{16})\*\//;

/**
 * The node flags that change V8's cache check (its flag hash) and that the cache writer may
 * run with: V8 flags, never one that loads code or reads a file (`--import`, `--require`,
 * `--env-file`, ...), since the writer runs unsandboxed, as the broker. Helper and writer
 * both name the cache file after these, so a helper finds the one made for its flags.
 */
export const CACHE_FLAG = /^--(max-old-space-size|max-semi-space-size|max-heap-size|stack-size|stack-trace-limit)=\d+$|^--(jitless|expose-gc|predictable|single-threaded|single-threaded-gc|no-opt|no-sparkplug|no-maglev|no-turbofan|harmony(-[a-z0-9-]+)?|js-[a-z0-9-]+)$/;

/** 32-bit FNV-1a of a short string, as 8 hex digits (names a flag set in a file name). */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

/**
 * The cache file of runtime `buildId` for this node binary (version, architecture) and the
 * cache-relevant flags among `execArgv`.
 */
export function codeCacheFile(dir: string, buildId: string, execArgv: readonly string[]): string {
  return `${dir}/runtime-${buildId}-${codeCacheTail(execArgv)}`;
}

/**
 * The part of a cache file's name that says which V8 may use it: node version, architecture and a
 * hash of the cache-relevant flags among `execArgv`, then `.v8cache`.
 */
export function codeCacheTail(execArgv: readonly string[]): string {
  const flags = execArgv.filter((f) => CACHE_FLAG.test(f)).join(' ');
  return `${process.version}-${process.arch}-${fnv1a(flags)}.v8cache`;
}

/** The build id in a runtime file's first line, or undefined. */
export function runtimeBuildId(source: Buffer): string | undefined {
  return BUILD_ID.exec(source.toString('latin1', 0, 48))?.[1];
}

/** V8's data in a cache file whose source copy is exactly `source`, else undefined. */
export function cachedDataFor(file: Buffer, source: Buffer): Buffer | undefined {
  const head = CODE_CACHE_MAGIC.length;
  if (file.length < head + 4 || file.toString('latin1', 0, head) !== CODE_CACHE_MAGIC) return undefined;
  const length = file.readUInt32LE(head);
  const start = head + 4;
  if (length !== source.length || file.length <= start + length) return undefined;
  return file.subarray(start, start + length).equals(source) ? file.subarray(start + length) : undefined;
}

/** A cache file's bytes: the magic, the source copy and V8's data. */
export function codeCacheContents(source: Buffer, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32LE(source.length);
  return Buffer.concat([Buffer.from(CODE_CACHE_MAGIC, 'latin1'), length, source, data]);
}

/** A script compiled with V8's code cache, and what became of that cache. */
export interface CompiledWithCache {
  readonly script: Script;
  readonly codeCache: CodeCacheState;
}

/**
 * Compiles `text` (the script as V8 sees it, made from `source`, the file's bytes) with the code cache in `cacheFile`
 * when that file's source copy is exactly `source` (see the module comment). A missing, stale, corrupt or refused
 * cache only means compiling from source; no `cacheFile` is `off`.
 */
export function compileWithCodeCache(text: string, filename: string, source: Buffer, cacheFile: string | undefined): CompiledWithCache {
  let cachedData: Buffer | undefined;
  let codeCache: CodeCacheState = cacheFile === undefined ? 'off' : 'missing';
  if (cacheFile !== undefined) {
    try {
      cachedData = cachedDataFor(process.getBuiltinModule('node:fs').readFileSync(cacheFile), source);
      if (cachedData === undefined) codeCache = 'stale';
    } catch {
      // No cache yet (or not readable here): compile from source.
    }
  }
  const script = new (process.getBuiltinModule('node:vm').Script)(text, { filename, ...(cachedData === undefined ? {} : { cachedData }) });
  if (cachedData !== undefined) codeCache = script.cachedDataRejected === true ? 'rejected' : 'accepted';
  return { script, codeCache };
}

/**
 * Loads the runtime script `file`, with the code cache from `cacheDir` when one fits (see the
 * module comment). A missing, stale, corrupt or refused cache only means compiling from source.
 */
export function loadRuntime(file: string, cacheDir: string | undefined): LoadedRuntime {
  return loadRuntimeSource(file, process.getBuiltinModule('node:fs').readFileSync(file), cacheDir);
}

/** Where the `bulkhead/service` facade took the runtime from: the helper environment's file, or its own copy. */
export type RuntimeFrom = 'environment' | 'own';

/**
 * Loads the runtime for the `bulkhead/service` facade built with runtime `buildId`: from `preferred` (the broker's
 * runtime script, which the broker names in every helper's environment, HELPER_ENV.runtime) when that file's build id
 * is `buildId`, else from `own()`, the facade's own copy beside it. The build id hashes the runtime's content
 * (scripts/build-runtime.mjs), so either file holds the same code; what the first spares is the facade resolving
 * `import.meta` (Node's import.meta set-up: ~0.1 ms of a helper's start on Node 24, ~0.3 ms on Node 20; bench/README.md,
 * "Round ten: the helper's start-up CPU"). Any other file there (another build, unreadable, missing) means `own()`.
 */
export function loadRuntimeFor(buildId: string, preferred: string | undefined, own: () => string, cacheDir: string | undefined): LoadedRuntime & { readonly from: RuntimeFrom } {
  if (preferred !== undefined && preferred.startsWith('/')) {
    let source: Buffer | undefined;
    try {
      source = process.getBuiltinModule('node:fs').readFileSync(preferred);
    } catch {
      // Not readable here (a sandbox without it, a removed package): the facade's own copy.
    }
    if (source !== undefined && runtimeBuildId(source) === buildId) return { ...loadRuntimeSource(preferred, source, cacheDir), from: 'environment' };
  }
  return { ...loadRuntime(own(), cacheDir), from: 'own' };
}

/** {@link loadRuntime} of the runtime file `file` whose bytes are `source`. */
function loadRuntimeSource(file: string, source: Buffer, cacheDir: string | undefined): LoadedRuntime {
  const buildId = runtimeBuildId(source);
  const cacheFile = cacheDir === undefined || cacheDir === '' || buildId === undefined ? undefined : codeCacheFile(cacheDir, buildId, process.execArgv);
  // The file is ASCII (esbuild escapes the rest), so latin1 is its exact text and the cheapest decode.
  const { script, codeCache } = compileWithCodeCache(source.toString('latin1'), file, source, cacheFile);
  const module = { exports: {} as Record<string, unknown> };
  const body = script.runInThisContext() as (module: { exports: Record<string, unknown> }, require: NodeJS.Require, runtimeUrl: string) => void;
  // The runtime requires node builtins at its top level and packages (ajv's helpers, @opentelemetry/api) only on
  // first use: builtins come from process.getBuiltinModule, and node:module's createRequire is made only when a
  // package is required (why: lib/util/lazy-require.ts; not imported here, this module imports nothing).
  let fileRequire: NodeJS.Require | undefined;
  const runtimeRequire = (id: string): unknown => (id.startsWith('node:') ? process.getBuiltinModule(id) : (fileRequire ??= process.getBuiltinModule('node:module').createRequire(file))(id));
  body(module, runtimeRequire as NodeJS.Require, process.getBuiltinModule('node:url').pathToFileURL(file).href);
  return { exports: module.exports, script, source, cacheFile, codeCache };
}
