/**
 * V8's code cache of each protocol's precompiled validators module, on every
 * Node line: the broker writes it, helpers read it (lib/protocol/validators-loader.ts
 * says how it is keyed and checked). The first launch of a service for a node
 * binary and V8 flag set starts, in the background, the writer
 * (lib/validators-cache-writer.ts: same binary, the helper's V8 flags only,
 * unsandboxed as the broker), which saves the cache beside the runtime's, in
 * the runtime cache directory of that node binary (lib/broker/code-cache.ts:
 * inside the broker's compile-cache directory, in every helper's read set,
 * read-only under every profile). That launch runs
 * uncached; later ones read the file. A helper never writes it. The writer is
 * given the launch's protocol file too: it runs only the module it regenerates
 * from it, never the file's bytes as found.
 * @module
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE_FLAG, cachedDataFor } from '../util/runtime-loader.js';
import { validatorsCacheFile } from '../protocol/validators-loader.js';
import { isBrokerValidatorsModule, VALIDATORS_ENV } from '../protocol/precompiled.js';
import { plannedNodeFlags } from './compile-cache.js';
import { PACKAGE_ROOT } from './package-paths.js';
import { runWriter } from './writer-process.js';
import { HELPER_ENV } from '../wire/helper-env.js';
import { touch } from '../util/cache-eviction.js';

const WRITER = join(PACKAGE_ROOT, 'dist', 'lib', 'validators-cache-writer.js');

/** Writer runs started (or done, or found unneeded) in this process, by node binary, flags and module. */
const written = new Map<string, Promise<string | undefined>>();

/** What a planned launch says about its node, validators and cache (lib/sandbox's launch input). */
export interface ValidatorsLaunchInput {
  readonly nodePath: string;
  readonly entry: string;
  readonly compileCache?: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * After a launch was planned: makes sure `dir` (the runtime cache directory of the launch's node binary,
 * which the helper is told in `BULKHEAD_CODE_CACHE`) holds the cache of the launch's validators module for
 * the node and flags it uses (in the background; this launch does not wait). Skips the writer when the file
 * is there and holds this module's bytes. Never throws.
 */
export function warmPlannedValidatorsCache(plan: { command: string; args: readonly string[] }, input: ValidatorsLaunchInput, dir: string): void {
  const file = input.env[VALIDATORS_ENV];
  const protocolFile = input.env[HELPER_ENV.protocolFile];
  // Only a module path the broker itself returned (and the writer still runs only the bytes it regenerates from the protocol file).
  if (file === undefined || !isBrokerValidatorsModule(file) || protocolFile === undefined) return;
  const flags = plannedNodeFlags([plan.command, ...plan.args], input.nodePath, input.entry);
  if (flags === undefined) return;
  const v8Flags = flags.filter((f) => CACHE_FLAG.test(f));
  const key = JSON.stringify([input.nodePath, v8Flags, file]);
  if (written.has(key)) return;
  // The module is in use: not evicted (lib/util/cache-eviction.ts); again daily, when `written` is cleared.
  touch(file);
  // The file name holds the node version: known here only for the broker's own node.
  const target = input.nodePath === process.execPath ? validatorsCacheFile(dir, file, v8Flags) : undefined;
  if (target !== undefined && upToDate(target, file)) {
    written.set(key, Promise.resolve(undefined));
    return;
  }
  written.set(key, runWriter(input.nodePath, [...v8Flags, WRITER, dir, file, protocolFile]).then(({ code, out }) => (code === 0 && out.startsWith(`${dir}/validators-`) ? out : undefined)));
}

/** Forgets which caches were found or written (the next launch of each checks again: lib/broker/code-cache.ts). */
export function forgetValidatorsCaches(): void {
  written.clear();
}

/** Settles once every validators cache writer started so far has finished. */
export async function validatorsCacheWrites(): Promise<void> {
  await Promise.all(written.values());
}

/** Whether `target` exists and holds exactly the bytes of the module `file`; when it does, it is marked used (not evicted). */
function upToDate(target: string, file: string): boolean {
  try {
    return cachedDataFor(readFileSync(target), readFileSync(file)) !== undefined && touch(target);
  } catch {
    return false;
  }
}
