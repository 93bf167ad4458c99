/**
 * The text of a protocol's precompiled validators module (ajv's standalone
 * code, see lib/protocol/precompiled.ts) and its file name. Generating it is
 * deterministic: the same protocol and ajv install give the same bytes, which
 * is how the broker's validators cache writer (lib/validators-cache-writer.ts)
 * tells the module the broker makes from a file someone else left under its
 * name, before it runs any of it.
 *
 * The broker's half only (it loads ajv's compiler); the helper never calls it.
 * @module
 */
import type { CompiledProtocol } from './compiled-protocol.js';
import { canonicalJson } from './hash.js';
import { AJV_OPTIONS, createAjv } from './ajv.js';
import { lazyRequire } from '../util/lazy-require.js';
import { validatorsCodeKey, type ValidatorsCode } from './validators-code-key.js';

// Made at first use (lib/util/lazy-require.ts): this module sits in the helper's bundle and should cost nothing there.
const ownRequire = lazyRequire(import.meta.url);

/**
 * The file name of `protocol`'s module: its schema hash, a hash of which ajv install it requires and of the bulkhead
 * code that generated it, and the format letter.
 */
export function validatorsModuleName(protocol: CompiledProtocol): string {
  // `-d`: the format that carries the document's canonical JSON and hash (a module from before `-c` lacks them; see
  // loadPrecompiled) and makes its require of ajv's helpers lazily (createRequire costs ~0.25 ms of a cold start).
  return `${protocol.hash}-${installKey()}-d.cjs`;
}

let ownInstallKey: string | undefined;

/** Which ajv install and which bulkhead code make this process's modules: 16 hex digits, once per process. */
function installKey(): string {
  // The module requires ajv's runtime helpers by absolute path, so the name includes which ajv (another install of
  // bulkhead with the same schemas must not use ours) and its versions (an ajv upgraded in place, at the same path,
  // generates other code). And which bulkhead code made it (ajv set-up and options, endpoint keyword, generator,
  // document check: validators-code-key.ts): after an upgrade that changed any of them, a module the old code left
  // under the old name is not handed to helpers; the new code's module has a name of its own.
  ownInstallKey ??= process.getBuiltinModule('node:crypto').createHash('sha256')
    .update(ownRequire().resolve('ajv/package.json')).update('\0').update(ajvVersions()).update('\0')
    .update(validatorsCodeKey()).digest('hex').slice(0, 16);
  return ownInstallKey;
}

/** The bytes of `protocol`'s precompiled validators module (20–60 ms of ajv compiling for a typical protocol). */
export function validatorsModuleSource(protocol: CompiledProtocol): Buffer {
  const ajvPackage = ownRequire().resolve('ajv/package.json');
  // The module lives outside any node_modules: resolve ajv's runtime helpers from bulkhead's own location.
  const base = JSON.stringify(ajvPackage);
  const head = `"use strict";\nlet __bulkheadRequireOf;\nconst __bulkheadRequire = (id) => (__bulkheadRequireOf ??= require("node:module").createRequire(${base}))(id);\n`;
  return moduleText(protocol, head, (code) => code.replace(/require\("/g, '__bulkheadRequire("'), '');
}

/**
 * The same module for a protocol shipped in the package, written by the build beside bulkhead's own code
 * (lib/protocol/packaged-validators.ts): it requires ajv's runtime helpers as any file of the package does, and
 * carries the ajv and ajv-formats versions (`__ajv`, {@link ajvVersions}) and ajv options (`__options`) it was made
 * with, and bulkhead's own code it was made with (`__code`: lib/protocol/validators-code-key.ts).
 */
export function packagedModuleSource(protocol: CompiledProtocol, code: ValidatorsCode): Buffer {
  const tail = `module.exports.__ajv = ${JSON.stringify(ajvVersions())};\nmodule.exports.__options = ${JSON.stringify(JSON.stringify(AJV_OPTIONS))};\n`
    + `module.exports.__code = ${JSON.stringify(code)};\n`;
  return moduleText(protocol, '"use strict";\n', (code) => code, tail);
}

/** The installed ajv and ajv-formats versions, as one string (a packaged module is used only with the ones it was made by). */
export function ajvVersions(): string {
  const version = (name: string): string => (ownRequire()(`${name}/package.json`) as { version: string }).version;
  return `ajv@${version('ajv')} ajv-formats@${version('ajv-formats')}`;
}

/** ajv's standalone code of every schema of `protocol`, in a CommonJS module with its key table, hash and document. */
function moduleText(protocol: CompiledProtocol, head: string, rewrite: (code: string) => string, tail: string): Buffer {
  const ajv = createAjv({ code: { source: true } });
  const keys: Record<string, string> = {};
  protocol.schemas().forEach(({ key, schema }, i) => {
    ajv.addSchema(schema, `v${i}`);
    keys[key] = `v${i}`;
  });
  const standaloneCode = (ownRequire()('ajv/dist/standalone/index.js') as { default: (ajv: unknown, refs: Record<string, string>) => string }).default;
  const code = standaloneCode(ajv, Object.fromEntries(Object.values(keys).map((id) => [id, id])));
  const body = `${head}${rewrite(code)}\nmodule.exports.__keys = ${JSON.stringify(keys)};\n`
    + `module.exports.__hash = ${JSON.stringify(protocol.hash)};\nmodule.exports.__canonical = ${JSON.stringify(canonicalJson(protocol.document))};\n${tail}`;
  return Buffer.from(body, 'utf8');
}
