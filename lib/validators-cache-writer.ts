/**
 * The broker's code-cache writer for one protocol's precompiled validators
 * module, a node process of its own (`node [the helper's V8 flags]
 * validators-cache-writer.js <cache dir> <validators module> <protocol file>`,
 * started by lib/broker/validators-code-cache.ts): loads the module from source exactly
 * as a helper does (lib/protocol/validators-loader.ts), runs each validator
 * once on a few values so V8 compiles their bytecode, and saves V8's code
 * cache with a copy of the module's bytes in front (the runtime cache's format,
 * lib/util/runtime-loader.ts), then prints the file's path. The file is
 * written beside its final name and renamed, so a helper never reads half of
 * one. Helpers only ever read it.
 *
 * This process runs the module unsandboxed, as the broker, so it runs only
 * bytes it generated itself: it regenerates the module from the protocol file
 * (lib/protocol/validators-module.ts, deterministic) and compares. A file under
 * the module's name that differs (left there by anyone who could write the
 * directory, before or after the broker handed out its path) is never run:
 * the genuine module replaces it (written beside it and renamed) and is what
 * gets compiled and cached. A protocol file whose schema hash is no longer the
 * module's (edited since the broker loaded it) is refused.
 * @module
 */
import { readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { codeCacheContents } from './util/runtime-loader.js';
import { writeFileAtomically } from './util/atomic-write.js';
import { evictInBinaryDir, evictValidatorsModules } from './util/cache-eviction.js';
import { loadValidatorsModule, validatorsCacheFile } from './protocol/validators-loader.js';
import { validatorsModuleName, validatorsModuleSource } from './protocol/validators-module.js';
import { loadProtocolFile } from './protocol/registry.js';

const fail = (message: string, code: number): never => {
  process.stderr.write(`validators-cache-writer: ${message}\n`);
  process.exit(code);
};

const [dir, file, protocolFile] = process.argv.slice(2);
if (dir === undefined || dir === '' || file === undefined || file === '' || protocolFile === undefined || protocolFile === '') fail('usage: validators-cache-writer.js <cache directory> <validators module> <protocol file>', 64);
const target = validatorsCacheFile(dir!, file!, process.execArgv) ?? fail(`${file!} is not named like a precompiled validators module`, 65);
let protocol: ReturnType<typeof loadProtocolFile>;
try {
  // Not eager: only its schemas and hash are needed here, not validators compiled for this process.
  protocol = loadProtocolFile(protocolFile!, undefined, { eager: false });
} catch (err) {
  fail(`${protocolFile!}: ${(err as Error).message}`, 65);
}
if (validatorsModuleName(protocol!) !== basename(file!)) fail(`${file!} is not the module of ${protocolFile!} (changed since the broker loaded it?)`, 65);
const genuine = validatorsModuleSource(protocol!);
let onDisk: Buffer | undefined;
try {
  onDisk = readFileSync(file!);
} catch {
  // Gone: written again below.
}
if (onDisk === undefined || !onDisk.equals(genuine)) {
  try {
    writeFileAtomically(file!, genuine);
  } catch (err) {
    fail(`cannot replace ${file!}: ${(err as Error).message}`, 70);
  }
  process.stderr.write(`validators-cache-writer: ${file!} was not the module the broker generates; replaced\n`);
}
// From the bytes generated here, never the file's (which anyone who can write its directory may change meanwhile);
// nor a cache read from the directory: the cache saved is this compile's.
const loaded = loadValidatorsModule(file!, undefined, genuine);
const keys = loaded.exports['__keys'];
if (typeof keys !== 'object' || keys === null) fail(`${file!} has no validator table`, 65);
// V8 compiles a function's bytecode at its first call: one call each puts every validator in the cache.
const samples: unknown[] = [undefined, null, {}, [], '', 0];
for (const id of Object.values(keys as Record<string, string>)) {
  const validate = loaded.exports[id];
  if (typeof validate !== 'function') continue;
  for (const value of samples) {
    try {
      (validate as (data: unknown) => unknown)(value);
    } catch {
      // A validator that throws on odd input is still compiled.
    }
  }
}

try {
  writeFileAtomically(target, codeCacheContents(loaded.source, loaded.script.createCachedData()));
} catch (err) {
  fail((err as Error).message, 70);
}
// Caches no broker used for a week (old protocol versions, other builds: lib/util/cache-eviction.ts).
evictInBinaryDir(dir!, [basename(target)]);
// And the modules themselves, in their own directory (lib/protocol/precompiled.ts).
evictValidatorsModules(dirname(file!), [basename(file!)]);
process.stdout.write(target);
