/**
 * Loads a protocol's precompiled validators module (lib/protocol/precompiled.ts)
 * in a helper through `node:vm`, with V8's code cache when the broker made one
 * for this very module, node binary and flag set: the same design as the
 * runtime's own cache (lib/util/runtime-loader.ts). The broker's writer
 * (lib/validators-cache-writer.ts) loads the module the same way from source,
 * runs each validator once and saves `script.createCachedData()`, so a helper
 * neither compiles the module nor its validators at its first call.
 *
 * The module is a CommonJS file; here it is compiled inside the same function
 * wrapper node's CommonJS loader uses, which also skips that loader's resolution
 * and file checks. A cache file holds a copy of the module's bytes (V8 checks
 * only the source's length) and is used only when that copy equals the module
 * file byte for byte; it is named after the module (whose name is its schema
 * hash and ajv install), the wrapper ({@link WRAPPER_ID}: V8 would take a same-length
 * change of it), and node version, architecture and V8 flags. Missing,
 * stale, corrupt or refused caches compile from source.
 * @module
 */
import type { Script } from 'node:vm';
import { codeCacheTail, compileWithCodeCache, type CodeCacheState } from '../util/runtime-loader.js';
import { lazyRequire } from '../util/lazy-require.js';

/** The function wrapper the module is compiled in (node's CommonJS wrapper: the module may use any of these). */
const WRAP_HEAD = '(function (exports, require, module, __filename, __dirname) {';
const WRAP_TAIL = '\n})';

/**
 * The wrapper's id (FNV-1a of its text), in the cache file's name: the cache file's copy of the source covers the
 * module only, and V8 checks only the length, so a loader with another wrapper (another bulkhead) must not take it.
 */
export const WRAPPER_ID = ((text: string): string => {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
})(`${WRAP_HEAD}\0${WRAP_TAIL}`);

/** A validators module's file name: schema hash, ajv install hash, format letter. */
const MODULE_NAME = /^([0-9a-f]{64}-[0-9a-f]{16}-[a-z])\.cjs$/;

/** A validators module as loaded: its exports and how. */
export interface LoadedValidators {
  readonly exports: Record<string, unknown>;
  /** The compiled script (the cache writer saves its code cache). */
  readonly script: Script;
  /** The module file's bytes, as compiled. */
  readonly source: Buffer;
  readonly codeCache: CodeCacheState;
}

/**
 * The cache file of validators module `file` in `dir` for this node binary and the cache-relevant
 * flags among `execArgv`; undefined when the file is not named like a broker-made module.
 */
export function validatorsCacheFile(dir: string, file: string, execArgv: readonly string[]): string | undefined {
  const name = MODULE_NAME.exec(file.slice(file.lastIndexOf('/') + 1))?.[1];
  return name === undefined ? undefined : `${dir}/validators-${name}-w${WRAPPER_ID}-${codeCacheTail(execArgv)}`;
}

/**
 * Loads the validators module `file`, with the code cache from `cacheDir` when one fits (see the module
 * comment). A missing, stale, corrupt or refused cache only means compiling from source. `source`, when given, is
 * compiled instead of the file's bytes (the cache writer's own module, which it checked: lib/validators-cache-writer.ts).
 */
export function loadValidatorsModule(file: string, cacheDir: string | undefined, source: Buffer = process.getBuiltinModule('node:fs').readFileSync(file)): LoadedValidators {
  const cacheFile = cacheDir === undefined || cacheDir === '' ? undefined : validatorsCacheFile(cacheDir, file, process.execArgv);
  // One string, decoded from the wrapped bytes: a template of the three parts is a cons string, which V8 flattens
  // into a second copy of the module's text to compile it (~15 KB of young objects at a cold helper's start for the
  // echo protocol; bench/README.md, "Round eleven: Node 20 cold launch"). The wrapper is ASCII, so the text is the same.
  const { Buffer } = process.getBuiltinModule('node:buffer');
  const text = Buffer.concat([Buffer.from(WRAP_HEAD, 'latin1'), source, Buffer.from(WRAP_TAIL, 'latin1')]).toString('utf8');
  const { script, codeCache } = compileWithCodeCache(text, file, source, cacheFile);
  const module = { exports: {} as Record<string, unknown> };
  // Made at first use (lib/util/lazy-require.ts): most modules never call require.
  const fileRequire = lazyRequire(file);
  const moduleRequire = (id: string): unknown => fileRequire()(id);
  const body = script.runInThisContext() as (exports: unknown, require: unknown, module: unknown, filename: string, dirname: string) => void;
  body(module.exports, moduleRequire, module, file, file.slice(0, file.lastIndexOf('/')));
  return { exports: module.exports, script, source, codeCache };
}
