/**
 * Validators compiled at build time for the protocols bulkhead ships
 * (`protocols/`, i.e. the daemon's `bulkhead.control`): `npm run build`
 * (scripts/build-packaged-validators.mjs) writes each one's ajv standalone
 * module to `dist/lib/protocol/packaged/<name>.validators.cjs`. A CLI command
 * that talks to the daemon otherwise builds an ajv instance, meta-checks the
 * protocol file and compiles every schema at run time: ~170 ms of CPU of a
 * ~0.45 s command (Node 20, bench/README.md "Round eleven").
 *
 * The module is keyed by what it was compiled from, not by its name: it
 * carries the canonical JSON of the protocol document it was made from, the
 * ajv and ajv-formats versions, ajv's options, and a hash of bulkhead's own
 * code that shapes it (its keyword, generator, document check and hash;
 * validators-code-key.ts). It is used only when the protocol file read now has
 * exactly that canonical JSON, the installed ajv and the options are the same,
 * and that code hashes now as it did; anything else (an edited protocol file,
 * a rebuilt ajv, bulkhead's code rebuilt by `tsc` alone, a missing or broken
 * module) is loaded and compiled with ajv as before, so neither a changed
 * protocol nor changed code is met by a stale validator.
 * The module is part of the package's own code (dist/), trusted as the rest of it.
 * @module
 */
// Not an ESM import of node:fs (see registry.ts).
const { readFileSync } = process.getBuiltinModule('node:fs');
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ValidateFunction } from 'ajv';
import { lazyRequire } from '../util/lazy-require.js';
import { AJV_OPTIONS } from './ajv.js';
import { CompiledProtocol } from './compiled-protocol.js';
import { canonicalEquals } from './hash.js';
import { loadProtocol, protocolPath } from './registry.js';
import { validatorsCodeMatches } from './validators-code-key.js';
import { ajvVersions } from './validators-module.js';

const ownRequire = lazyRequire(import.meta.url);

/** The directory the build writes packaged modules to (dist/lib/protocol/packaged). */
export const PACKAGED_VALIDATORS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'packaged');

/** The packaged module of shipped protocol `name`. */
export function packagedValidatorsFile(name: string): string {
  return join(PACKAGED_VALIDATORS_DIR, `${name}.validators.cjs`);
}

/** What a packaged module exports (lib/protocol/validators-module.ts, packagedModuleSource). */
interface PackagedModule {
  __keys: Record<string, string>;
  __hash: string;
  __canonical: string;
  __ajv: string;
  __options: string;
  __code: unknown;
  [id: string]: unknown;
}

/** How a protocol was loaded: with the build's validators, or compiled with ajv now. */
export interface LoadedProtocol {
  protocol: CompiledProtocol;
  validators: 'packaged' | 'compiled';
}

/** Loaded protocols by file and text, as registry.ts keeps them (one load per process). */
const loaded = new Map<string, LoadedProtocol>();

/**
 * Loads protocol `name` from `dir` with the packaged validators `moduleFile` when it was made from exactly this
 * document (see the module comment), else as {@link loadProtocol} does (ajv checks the document and compiles it).
 * @throws BulkheadError `ERR_UNKNOWN_PROTOCOL` or `ERR_INVALID_PROTOCOL`, as {@link loadProtocol}
 */
export function loadWithPackagedValidators(dir: string, name: string, moduleFile: string = packagedValidatorsFile(name)): LoadedProtocol {
  const file = protocolPath(dir, name);
  let text: string;
  let value: unknown;
  try {
    text = readFileSync(file, 'utf8');
    value = JSON.parse(text);
  } catch {
    // Missing or not JSON: the registry's load throws the typed error for it.
    return { protocol: loadProtocol(dir, name), validators: 'compiled' };
  }
  const key = `${file}\0${moduleFile}\0${text}`;
  let result = loaded.get(key);
  if (result === undefined) {
    const packaged = packagedFor(value, moduleFile);
    const protocol = packaged === undefined ? undefined : CompiledProtocol.from(value, file, {
      // Exactly the document the build checked and compiled (its canonical JSON): its check and schemas are done.
      trusted: true,
      eager: false,
      known: { canonical: packaged.__canonical, hash: packaged.__hash },
      validators: validatorsOf(packaged),
    });
    result = protocol !== undefined && protocol.name === name ? { protocol, validators: 'packaged' } : { protocol: loadProtocol(dir, name), validators: 'compiled' };
    loaded.set(key, result);
  }
  return result;
}

/** The packaged module `moduleFile` when it was made from the document `value` with this ajv, these options and this code; else undefined. */
function packagedFor(value: unknown, moduleFile: string): PackagedModule | undefined {
  let mod: Record<string, unknown>;
  try {
    mod = ownRequire()(moduleFile) as Record<string, unknown>;
  } catch {
    // Not built (a tsc-only build) or unreadable: compile with ajv.
    return undefined;
  }
  if (typeof mod['__canonical'] !== 'string' || typeof mod['__hash'] !== 'string' || typeof mod['__keys'] !== 'object' || mod['__keys'] === null) return undefined;
  if (mod['__options'] !== JSON.stringify(AJV_OPTIONS) || mod['__ajv'] !== ajvVersions()) return undefined;
  if (!canonicalEquals(value, mod['__canonical'])) return undefined;
  // Last: it reads and hashes bulkhead's files (~50 KB), the one check that costs more than a comparison.
  return validatorsCodeMatches(mod['__code']) ? mod as PackagedModule : undefined;
}

function validatorsOf(mod: PackagedModule): Record<string, ValidateFunction> {
  const validators: Record<string, ValidateFunction> = {};
  for (const [key, id] of Object.entries(mod.__keys)) {
    const validate = mod[id];
    if (typeof validate === 'function') validators[key] = validate as ValidateFunction;
  }
  return validators;
}
