/**
 * V8's code cache of the helper runtime itself, on every Node line (20
 * included): the broker writes it, helpers read it (lib/util/runtime-loader.ts
 * says how it is keyed and checked). The first launch for a node binary and
 * V8 flag set starts, in the background, the writer (lib/code-cache-writer.ts:
 * same binary, the helper's V8 flags only, unsandboxed as the broker) which
 * loads the runtime, runs a hello and calls through it and saves the cache
 * into the compile-cache directory (lib/broker/compile-cache.ts: the broker's,
 * mode 0755, in every helper's read set, read-only under every profile). That
 * launch runs uncached; later ones read the file. A helper never writes it:
 * cached bytecode is code, and one a helper could write would run in the next.
 * @module
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync } from 'node:fs';
import { binaryIdentity } from '../util/binary-identity.js';
import { touch } from '../util/cache-eviction.js';
import { join } from 'node:path';
import { cachedDataFor, CACHE_FLAG, codeCacheFile, runtimeBuildId } from '../util/runtime-loader.js';
import { compileCacheDir, forgetCompileCaches, plannedNodeFlags } from './compile-cache.js';
import { PACKAGE_ROOT } from './package-paths.js';
import { runWriter } from './writer-process.js';
import { forgetValidatorsCaches, validatorsCacheWrites, warmPlannedValidatorsCache, type ValidatorsLaunchInput } from './validators-code-cache.js';

/** The runtime script every helper loads. */
export const RUNTIME_SCRIPT = join(PACKAGE_ROOT, 'dist', 'lib', 'service.runtime.cjs');
const WRITER = join(PACKAGE_ROOT, 'dist', 'lib', 'code-cache-writer.js');

/** Writer runs started (or done) in this process, by node binary and flags: the file written, if any. */
const written = new Map<string, Promise<string | undefined>>();

/** The key of a writer run: the node binary (its cache directory, which names its identity) and the V8 flags among `flags`. */
function writerKey(dir: string, flags: readonly string[]): { key: string; v8Flags: string[] } {
  const v8Flags = flags.filter((f) => CACHE_FLAG.test(f));
  return { key: JSON.stringify([dir, v8Flags]), v8Flags };
}

/** The runtime cache directory of each node path, with the identity of the binary it was made for. */
const binaryDirs = new Map<string, { identity: string; dir: string | undefined }>();

/**
 * The directory of the runtime code cache for the node binary `nodePath`:
 * `<compile-cache dir>/runtime-<binary>`, where `<binary>` hashes the binary
 * file's device, inode, size and mtime. The file name inside carries the node
 * version, but two builds of one version (a distro's and nodejs.org's) are
 * different binaries: V8 ≥ 12 refuses another build's cache (its read-only
 * snapshot checksum), Node 20's V8 does not check it. A helper is told this
 * directory (`BULKHEAD_CODE_CACHE`), so it spends nothing at start on it.
 * The binary is stat'ed on every call (~2 µs: an in-place upgrade of node
 * under a running broker gets a directory, and a writer run, of its own),
 * which a launch makes once (lib/broker/helper-environment.ts passes the
 * directory down to the cache writers);
 * the directory is made once per binary. Undefined without a cache directory
 * or when the binary cannot be read.
 */
export function runtimeCacheDir(nodePath: string): string | undefined {
  const root = compileCacheDir();
  if (root === undefined) return undefined;
  const identity = binaryIdentity(nodePath);
  // Unreadable binary: helpers of it start without the runtime cache.
  if (identity === undefined) return undefined;
  const known = binaryDirs.get(nodePath);
  // Still there: another binary's writer may have evicted it (lib/util/cache-eviction.ts), then it is made again.
  if (known?.identity === identity && (known.dir === undefined || existsSync(known.dir))) return known.dir;
  let dir: string | undefined;
  try {
    const sub = join(root, `runtime-${fnv1a(identity)}`);
    mkdirSync(sub, { recursive: true, mode: 0o755 });
    // Made by this uid in a directory only this uid writes; a link there is not ours to follow.
    if (lstatSync(sub).isDirectory()) {
      chmodSync(sub, 0o755); // whatever the umask: helpers of other uids read it
      touch(sub); // in use: not evicted (lib/util/cache-eviction.ts)
      dir = sub;
    }
  } catch {
    // Full tmp: helpers of this binary start without the runtime cache.
  }
  binaryDirs.set(nodePath, { identity, dir });
  return dir;
}

/** 32-bit FNV-1a of a short string, as 8 hex digits. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

/**
 * Makes sure the cache holds the runtime for `nodePath` with the V8 flags among `flags` (once per
 * broker process and flag set; skipped when a file for this very runtime is there). Never throws;
 * settles with the cache file, or undefined when none could be made. `dir`: the binary's runtime cache directory,
 * when the caller found it already this launch ({@link runtimeCacheDir}; the binary is then not stat'ed again).
 */
export function warmCodeCache(nodePath: string, flags: readonly string[], dir: string | undefined = runtimeCacheDir(nodePath)): Promise<string | undefined> {
  if (dir === undefined) return Promise.resolve(undefined);
  const { key, v8Flags } = writerKey(dir, flags);
  let run = written.get(key);
  if (run === undefined) {
    run = runWriter(nodePath, [...v8Flags, WRITER, dir]).then(({ code, out }) => (code === 0 && out.startsWith(`${dir}/`) ? out : undefined));
    written.set(key, run);
  }
  return run;
}

/** Settles once every writer started so far has finished (the validators modules' too: lib/broker/validators-code-cache.ts). */
export async function codeCacheWrites(): Promise<void> {
  await Promise.all([...written.values(), validatorsCacheWrites()]);
}

/**
 * After a launch was planned: makes sure the cache holds the runtime (and the launch's validators module) for the node and flags this
 * launch uses (in the background; this launch does not wait). Skips the writer when the file is
 * there and holds this runtime's source (the broker's own earlier run, or another broker's of this uid).
 */
export function warmPlannedCodeCache(plan: { command: string; args: readonly string[]; withholdCaches?: boolean }, input: ValidatorsLaunchInput & { readonly runtimeCache: string | undefined }): void {
  // A helper that can write the caches (lib/sandbox/broker-caches.ts) may be rewriting them now: no writer runs for its launch.
  if (input.compileCache === undefined || plan.withholdCaches === true) return;
  // Found once per launch, when its input was made (lib/broker/helper-environment.ts): the binary is not stat'ed again.
  const dir = input.runtimeCache;
  if (dir === undefined) return;
  recheckDaily(dir);
  warmPlannedValidatorsCache(plan, input, dir);
  const flags = plannedNodeFlags([plan.command, ...plan.args], input.nodePath, input.entry);
  if (flags === undefined) return;
  const { key } = writerKey(dir, flags);
  if (written.has(key)) return;
  if (upToDate(dir, input.nodePath, flags)) {
    written.set(key, Promise.resolve(undefined));
    return;
  }
  void warmCodeCache(input.nodePath, flags, dir);
}

/**
 * Whether the cache file for this runtime, node and flags exists and holds exactly this runtime's source; when it
 * does, it is marked used (not evicted: lib/util/cache-eviction.ts).
 */
function upToDate(dir: string, nodePath: string, flags: readonly string[]): boolean {
  // Only for the broker's own node: another binary's version is not known here without running it.
  if (nodePath !== process.execPath) return false;
  try {
    const source = readFileSync(RUNTIME_SCRIPT);
    const id = runtimeBuildId(source);
    const file = id === undefined ? undefined : codeCacheFile(dir, id, flags);
    return file !== undefined && cachedDataFor(readFileSync(file), source) !== undefined && touch(file);
  } catch {
    return false;
  }
}

/** A long-running broker checks its caches again (and so marks them used, or writes them again) this often. */
const RECHECK_MS = 24 * 3600 * 1000;
let checkedAt = Date.now();

/**
 * Once a day, forgets which caches were found or written, so that the next launch of each finds them again (marking
 * them used: another broker's writer evicts what was not used for a week) or writes them again (evicted meanwhile).
 */
function recheckDaily(dir: string): void {
  const now = Date.now();
  if (now - checkedAt < RECHECK_MS) return;
  checkedAt = now;
  touch(dir, now);
  written.clear();
  forgetValidatorsCaches();
  forgetCompileCaches();
}
