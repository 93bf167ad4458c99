/**
 * The broker's code-cache writer for one protocol's precompiled validators
 * module, a node process of its own (`node [the helper's V8 flags]
 * validators-cache-writer.js <cache dir> <validators module>`, started by
 * lib/broker/validators-code-cache.ts): loads the module from source exactly
 * as a helper does (lib/protocol/validators-loader.ts), runs each validator
 * once on a few values so V8 compiles their bytecode, and saves V8's code
 * cache with a copy of the module's bytes in front (the runtime cache's format,
 * lib/util/runtime-loader.ts), then prints the file's path. The file is
 * written beside its final name and renamed, so a helper never reads half of
 * one. Helpers only ever read it.
 *
 * The module is code the broker generated (ajv's standalone output) in its own
 * owner-only directory; running it here is what every helper of that protocol does.
 * @module
 */
import { chmodSync, closeSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { codeCacheContents } from './util/runtime-loader.js';
import { loadValidatorsModule, validatorsCacheFile } from './protocol/validators-loader.js';

const fail = (message: string, code: number): never => {
  process.stderr.write(`validators-cache-writer: ${message}\n`);
  process.exit(code);
};

const [dir, file] = process.argv.slice(2);
if (dir === undefined || dir === '' || file === undefined || file === '') fail('usage: validators-cache-writer.js <cache directory> <validators module>', 64);
const target = validatorsCacheFile(dir!, file!, process.execArgv) ?? fail(`${file!} is not named like a precompiled validators module`, 65);
// From source: the cache saved is this compile's, never one read from the directory.
const loaded = loadValidatorsModule(file!, undefined);
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

const tmp = `${target}.${String(process.pid)}.tmp`;
// wx: never write through a file (or link) someone left under this name (nor remove it).
const fd = openSync(tmp, 'wx', 0o644);
try {
  try {
    writeFileSync(fd, codeCacheContents(loaded.source, loaded.script.createCachedData()));
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o644); // whatever the umask: helpers of other uids read it
  renameSync(tmp, target);
} catch (err) {
  rmSync(tmp, { force: true });
  fail((err as Error).message, 70);
}
process.stdout.write(target);
