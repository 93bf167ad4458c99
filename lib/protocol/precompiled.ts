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
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ValidateFunction } from 'ajv';
import type { CompiledProtocol, KnownHash } from './compiled-protocol.js';
import { canonicalJson } from './hash.js';
import { createAjv } from './ajv.js';
import { HELPER_ENV } from '../wire/helper-env.js';
import { loadValidatorsModule } from './validators-loader.js';

// Made at first use (the broker's half only): the helper's bundle imports this module and should not pay for it.
let requireOf: NodeJS.Require | undefined;
const ownRequire = (): NodeJS.Require => (requireOf ??= createRequire(import.meta.url));
// Builtins without an ESM import: this module is in the helper's bundle (loadPrecompiled), where an
// ESM import of node:fs builds a facade that runs its lazy getters (~3.6 ms of start-up on Node 24) and node:crypto
// costs ~6–7 ms; only the broker's half (precompileValidators) needs them.
const { lstatSync, mkdirSync, renameSync, writeFileSync, existsSync } = process.getBuiltinModule('node:fs');

/** Where a helper's precompiled validators come from (environment variable; see HELPER_ENV). */
export const VALIDATORS_ENV = HELPER_ENV.validators;

/**
 * Per-user cache directory. Only its owner may write it (the code in it runs
 * in helpers); others may read it, since a sandboxed helper can run as
 * another uid. Schemas are not secrets.
 */
function cacheDir(): string | undefined {
  const dir = join(tmpdir(), `bulkhead-${process.getuid?.() ?? 'user'}-validators`);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const st = lstatSync(dir);
  // Another user could have made this directory first: then it is not ours to trust.
  if (!st.isDirectory() || (process.getuid !== undefined && st.uid !== process.getuid()) || (st.mode & 0o022) !== 0) return undefined;
  return dir;
}

/**
 * Writes (once per schema hash) the precompiled validators of a protocol and
 * returns the module's path, or undefined when no safe cache directory exists
 * (the helper then compiles its schemas itself).
 */
export function precompileValidators(protocol: CompiledProtocol): string | undefined {
  const dir = cacheDir();
  if (dir === undefined) return undefined;
  // The module requires ajv's runtime helpers by absolute path, so the cache key includes
  // which ajv (another install of bulkhead with the same schemas must not use ours).
  const ajvPackage = ownRequire().resolve('ajv/package.json');
  // `-d`: the format that carries the document's canonical JSON and hash (a module from before `-c` lacks them; see
  // loadPrecompiled) and makes its require of ajv's helpers lazily (createRequire costs ~0.25 ms of a cold start).
  const file = join(dir, `${protocol.hash}-${process.getBuiltinModule('node:crypto').createHash('sha256').update(ajvPackage).digest('hex').slice(0, 16)}-d.cjs`);
  if (existsSync(file)) return file;
  const ajv = createAjv({ code: { source: true } });
  const keys: Record<string, string> = {};
  protocol.schemas().forEach(({ key, schema }, i) => {
    ajv.addSchema(schema, `v${i}`);
    keys[key] = `v${i}`;
  });
  const standaloneCode = (ownRequire()('ajv/dist/standalone/index.js') as { default: (ajv: unknown, refs: Record<string, string>) => string }).default;
  const code = standaloneCode(ajv, Object.fromEntries(Object.values(keys).map((id) => [id, id])));
  // The module lives outside any node_modules: resolve ajv's runtime helpers from bulkhead's own location.
  const base = JSON.stringify(ajvPackage);
  const body = `"use strict";\nlet __bulkheadRequireOf;\nconst __bulkheadRequire = (id) => (__bulkheadRequireOf ??= require("node:module").createRequire(${base}))(id);\n${code.replace(/require\("/g, '__bulkheadRequire("')}\nmodule.exports.__keys = ${JSON.stringify(keys)};\n`
    + `module.exports.__hash = ${JSON.stringify(protocol.hash)};\nmodule.exports.__canonical = ${JSON.stringify(canonicalJson(protocol.document))};\n`;
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, body, { mode: 0o644 });
  renameSync(temp, file);
  return file;
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
 * when one was made for it (lib/protocol/validators-loader.ts); `state` is told what became of that cache.
 */
export function loadPrecompiled(file: string, cacheDir?: string, state?: { validatorsCache: string }): Precompiled {
  const loaded = loadValidatorsModule(file, cacheDir);
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
