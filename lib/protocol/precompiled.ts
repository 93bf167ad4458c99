/**
 * Precompiled validators: the broker turns a protocol's schemas into one
 * CommonJS module with ajv's standalone code, cached by schema hash and ajv install, and
 * hands its path to the helper. The helper then validates without loading
 * or running ajv's compiler — the biggest part of its start-up otherwise.
 *
 * The module also carries the canonical JSON of the protocol document the
 * broker checked and its schema hash. A helper still reads and parses its
 * protocol file, but when the file's canonical JSON is that string it takes
 * the hash instead of computing it (SHA-256 on a cold start: ~2.5 ms of CPU,
 * plus loading a hash implementation). A changed file is compared, not
 * trusted: it is hashed as before, and the broker's hello check refuses it.
 * @module
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ValidateFunction } from 'ajv';
import type { CompiledProtocol, KnownHash } from './compiled-protocol.js';
import { validatorsModuleName, validatorsModuleSource } from './validators-module.js';
import { writeFileAtomically } from '../util/atomic-write.js';
import { HELPER_ENV } from '../wire/helper-env.js';
import { loadValidatorsModule } from './validators-loader.js';

// Builtins without an ESM import: this module is in the helper's bundle (loadPrecompiled), where an
// ESM import of node:fs builds a facade that runs its lazy getters (~3.6 ms of start-up on Node 24) and node:crypto
// costs ~6–7 ms; only the broker's half (precompileValidators) needs them.
const { lstatSync, mkdirSync, existsSync } = process.getBuiltinModule('node:fs');

/** Where a helper's precompiled validators come from (environment variable; see HELPER_ENV). */
export const VALIDATORS_ENV = HELPER_ENV.validators;

/** The per-user directory of precompiled validators modules (made by {@link precompileValidators}). */
export function validatorsDir(): string {
  return join(tmpdir(), `bulkhead-${process.getuid?.() ?? 'user'}-validators`);
}

/** The modules {@link precompileValidators} returned in this process: the only ones the broker's cache writer runs. */
const returnedModules = new Set<string>();

/** Whether `file` is a module {@link precompileValidators} returned in this process (not a path some env named). */
export function isBrokerValidatorsModule(file: string): boolean {
  return returnedModules.has(file);
}

/**
 * Per-user cache directory. Only its owner may write it (the code in it runs
 * in helpers); others may read it, since a sandboxed helper can run as
 * another uid. Schemas are not secrets.
 */
function cacheDir(): string | undefined {
  const dir = validatorsDir();
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const st = lstatSync(dir);
  // Another user could have made this directory first: then it is not ours to trust.
  if (!st.isDirectory() || (process.getuid !== undefined && st.uid !== process.getuid()) || (st.mode & 0o022) !== 0) return undefined;
  return dir;
}

/**
 * Writes (once per schema hash) the precompiled validators of a protocol into `dir` (by default the per-user
 * {@link validatorsDir}) and returns the module's path, or undefined when no safe cache directory exists (the helper
 * then compiles its schemas itself). A module file already there under its name is returned as it is: checking its
 * bytes means generating them (20–60 ms of ajv compiling, on the first launch of each service), so the broker hands
 * it to helpers unchecked, and its validators cache writer, the one that runs it unsandboxed, regenerates the module
 * and runs only those bytes (lib/validators-cache-writer.ts), replacing a file that differs.
 */
export function precompileValidators(protocol: CompiledProtocol, dir: string | undefined = cacheDir()): string | undefined {
  if (dir === undefined) return undefined;
  const file = join(dir, validatorsModuleName(protocol));
  if (existsSync(file)) {
    returnedModules.add(file);
    return file;
  }
  writeFileAtomically(file, validatorsModuleSource(protocol));
  returnedModules.add(file);
  return file;
}

/**
 * The precompiled validators the broker gave this helper for its protocol file `file`, or undefined when none: the
 * module's text itself (`validatorsSource`, where the broker's files may hold planted code: lib/sandbox/cache-trust.ts;
 * removed from the environment once read), else the module file it named, with the code cache of `codeCache`.
 */
export function brokerPrecompiled(file: string, state?: { validatorsCache: string }, env: NodeJS.ProcessEnv = process.env): Precompiled | undefined {
  const byValue = env[HELPER_ENV.validatorsSource];
  Reflect.deleteProperty(env, HELPER_ENV.validatorsSource);
  if (byValue !== undefined && byValue !== '') return loadPrecompiled(`${file}.validators.cjs`, undefined, state, Buffer.from(byValue, 'utf8'));
  const path = env[HELPER_ENV.validators];
  return path === undefined || path === '' ? undefined : loadPrecompiled(path, env[HELPER_ENV.codeCache], state);
}

/** What a precompiled module holds: validators by key, and (in the current format) the document's canonical JSON and hash. */
export interface Precompiled {
  /** Validator by key (`params:<method>`, ...). */
  validators: Record<string, ValidateFunction>;
  /** The canonical JSON and schema hash of the document the broker checked, when the module carries them. */
  known?: KnownHash;
}

/**
 * Loads a precompiled module (see {@link Precompiled}), with the broker's V8 code cache from `cacheDir`
 * when one was made for it (lib/protocol/validators-loader.ts); `state` is told what became of that cache. `source`, when
 * given, is the module's text (passed by value: {@link HELPER_ENV}'s `validatorsSource`), compiled instead of the file's.
 */
export function loadPrecompiled(file: string, cacheDir?: string, state?: { validatorsCache: string }, source?: Buffer): Precompiled {
  const loaded = source === undefined ? loadValidatorsModule(file, cacheDir) : loadValidatorsModule(file, undefined, source);
  if (state !== undefined) state.validatorsCache = loaded.codeCache;
  const mod = loaded.exports as Record<string, unknown> & { __keys: Record<string, string> };
  const validators: Record<string, ValidateFunction> = {};
  for (const [key, id] of Object.entries(mod.__keys)) {
    const validate = mod[id];
    if (typeof validate === 'function') validators[key] = validate as ValidateFunction;
  }
  const { __canonical: canonical, __hash: hash } = mod;
  return typeof hash === 'string' && typeof canonical === 'string' ? { validators, known: { canonical, hash } } : { validators };
}
