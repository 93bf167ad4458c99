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
import { chmodSync, lstatSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cachedDataFor, CACHE_FLAG, codeCacheFile, runtimeBuildId } from '../util/runtime-loader.js';
import { compileCacheDir, plannedNodeFlags } from './compile-cache.js';
import { PACKAGE_ROOT } from './package-paths.js';
import { runWriter } from './writer-process.js';
import { validatorsCacheWrites, warmPlannedValidatorsCache, type ValidatorsLaunchInput } from './validators-code-cache.js';

/** The runtime script every helper loads. */
export const RUNTIME_SCRIPT = join(PACKAGE_ROOT, 'dist', 'lib', 'service.runtime.cjs');
const WRITER = join(PACKAGE_ROOT, 'dist', 'lib', 'code-cache-writer.js');

/** Writer runs started (or done) in this process, by node binary and flags: the file written, if any. */
const written = new Map<string, Promise<string | undefined>>();

/** The key of a writer run: the node binary and the V8 flags among `flags`. */
function writerKey(nodePath: string, flags: readonly string[]): { key: string; v8Flags: string[] } {
  const v8Flags = flags.filter((f) => CACHE_FLAG.test(f));
  return { key: JSON.stringify([nodePath, v8Flags]), v8Flags };
}

/** The runtime cache directory of each node binary, once per broker process (undefined: none usable). */
const binaryDirs = new Map<string, string | undefined>();

/**
 * The directory of the runtime code cache for the node binary `nodePath`:
 * `<compile-cache dir>/runtime-<binary>`, where `<binary>` hashes the binary
 * file's device, inode, size and mtime. The file name inside carries the node
 * version, but two builds of one version (a distro's and nodejs.org's) are
 * different binaries: V8 ≥ 12 refuses another build's cache (its read-only
 * snapshot checksum), Node 20's V8 does not check it. A helper is told this
 * directory (`BULKHEAD_CODE_CACHE`), so it spends nothing at start on it.
 * Undefined without a cache directory or when the binary cannot be read.
 */
export function runtimeCacheDir(nodePath: string): string | undefined {
  if (binaryDirs.has(nodePath)) return binaryDirs.get(nodePath);
  let dir: string | undefined;
  const root = compileCacheDir();
  try {
    if (root !== undefined) {
      const st = statSync(nodePath, { bigint: true });
      const sub = join(root, `runtime-${fnv1a(`${String(st.dev)}:${String(st.ino)}:${String(st.size)}:${String(st.mtimeNs)}`)}`);
      mkdirSync(sub, { recursive: true, mode: 0o755 });
      // Made by this uid in a directory only this uid writes; a link there is not ours to follow.
      if (lstatSync(sub).isDirectory()) {
        chmodSync(sub, 0o755); // whatever the umask: helpers of other uids read it
        dir = sub;
      }
    }
  } catch {
    // Unreadable binary or full tmp: helpers of this binary start without the runtime cache.
  }
  binaryDirs.set(nodePath, dir);
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
 * settles with the cache file, or undefined when none could be made.
 */
export function warmCodeCache(nodePath: string, flags: readonly string[]): Promise<string | undefined> {
  const dir = runtimeCacheDir(nodePath);
  if (dir === undefined) return Promise.resolve(undefined);
  const { key, v8Flags } = writerKey(nodePath, flags);
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
export function warmPlannedCodeCache(plan: { command: string; args: readonly string[] }, input: ValidatorsLaunchInput): void {
  if (input.compileCache === undefined) return;
  const binaryDir = runtimeCacheDir(input.nodePath);
  if (binaryDir !== undefined) warmPlannedValidatorsCache(plan, input, binaryDir);
  const flags = plannedNodeFlags([plan.command, ...plan.args], input.nodePath, input.entry);
  if (flags === undefined) return;
  const { key } = writerKey(input.nodePath, flags);
  if (written.has(key)) return;
  const dir = runtimeCacheDir(input.nodePath);
  if (dir === undefined) return;
  if (upToDate(dir, input.nodePath, flags)) {
    written.set(key, Promise.resolve(undefined));
    return;
  }
  void warmCodeCache(input.nodePath, flags);
}

/** Whether the cache file for this runtime, node and flags exists and holds exactly this runtime's source. */
function upToDate(dir: string, nodePath: string, flags: readonly string[]): boolean {
  // Only for the broker's own node: another binary's version is not known here without running it.
  if (nodePath !== process.execPath) return false;
  try {
    const source = readFileSync(RUNTIME_SCRIPT);
    const id = runtimeBuildId(source);
    return id !== undefined && cachedDataFor(readFileSync(codeCacheFile(dir, id, flags)), source) !== undefined;
  } catch {
    return false;
  }
}
