/**
 * V8's compile cache for helpers (Node ≥ 22, `NODE_COMPILE_CACHE`): a helper
 * then loads its ES modules (the `bulkhead/service` facade and the runtime
 * loader, the prewarm entry, an unsandboxed service's own modules) from cached
 * bytecode. The runtime script itself has its own code cache, on every Node
 * line, in the same directory (lib/broker/code-cache.ts).
 *
 * Who writes it: only the broker. Cached bytecode is code; a helper that could
 * write the cache could plant code that its own next launch, or another
 * service's, would run. So the broker fills the cache with a short node process
 * of its own (same binary, same V8 flags as the helper) that imports the
 * bundle, and helpers get the directory read-only: a read-only bind in
 * bubblewrap, or files owned by the broker's uid when the helper runs as
 * another uid. Node's permission model reads the cache only with a write grant
 * on it (compile.ts adds that grant only under one of those two layers).
 *
 * Staleness: Node keys the cache itself. Entries live in a subdirectory named
 * after the Node version, architecture, V8 flag hash and uid
 * (`v24.22.3-x64-964aae3f-0`), and each entry stores the source's length and
 * checksum, so a changed file or another Node is a miss, never a stale hit
 * (measured on Node 22.23, 24.22, 26.12 with NODE_DEBUG_NATIVE=COMPILE_CACHE).
 * A helper dropped to a uid of its own looks in `…-<its uid>`: the broker links
 * that name to the directory its writer filled, so the files stay the broker's.
 * @module
 */
import { chmodSync, lstatSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CACHE_FLAG } from '../util/runtime-loader.js';
import { binaryIdentity } from '../util/binary-identity.js';
import { touch } from '../util/cache-eviction.js';
import { PACKAGE_ROOT } from './package-paths.js';
import { runWriter } from './writer-process.js';

/** The variable that turns the compile cache on in a helper (read by node itself). */
export const COMPILE_CACHE_ENV = 'NODE_COMPILE_CACHE';

/** Node's own switch: set to `1` in the broker's environment, helpers launch without the compile cache. */
export const COMPILE_CACHE_OFF_ENV = 'NODE_DISABLE_COMPILE_CACHE';

/** What the cache writer imports: `bulkhead/service`, which every helper loads (the facade and the loader it imports). */
const BUNDLE = join(PACKAGE_ROOT, 'dist', 'lib', 'service.bundle.js');

/**
 * The helper's flags the writer passes on: V8 flags only (CACHE_FLAG, lib/util/runtime-loader.ts),
 * never one that loads or runs code or reads a file: the writer runs unsandboxed, as the broker.
 */
const WRITER_FLAG = CACHE_FLAG;

/** The flags of a helper's node command that its cache writer runs with (see WRITER_FLAG). */
export function writerFlags(flags: readonly string[]): string[] {
  return flags.filter((f) => WRITER_FLAG.test(f));
}

let root: string | null | undefined;

/**
 * The per-user cache directory (`<tmp>/bulkhead-<uid>-compile-cache`), or
 * undefined when it is not safe to use: it must be ours and writable by no one
 * else, since the code in it runs in helpers. Others may read it (a sandboxed
 * helper may run as another uid).
 */
export function compileCacheDir(): string | undefined {
  if (process.env[COMPILE_CACHE_OFF_ENV] === '1') return undefined;
  if (root !== undefined) return root ?? undefined;
  root = null;
  try {
    const dir = join(tmpdir(), `bulkhead-${process.getuid?.() ?? 'user'}-compile-cache`);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const st = lstatSync(dir);
    if (st.isDirectory() && (process.getuid === undefined || st.uid === process.getuid()) && (st.mode & 0o022) === 0) root = dir;
  } catch {
    // No usable tmp: helpers start without the cache.
  }
  return root ?? undefined;
}

/** Writer runs started (or done) in this process, by node binary (path and identity) and flags: the cache subdirectory they filled. */
const warmed = new Map<string, Promise<string | undefined>>();

/**
 * The node flags of a planned launch: what stands between the node binary and
 * the entry in its command line (the sandbox's wrappers come before it).
 */
export function plannedNodeFlags(command: readonly string[], nodePath: string, entry: string): string[] | undefined {
  const at = command.lastIndexOf(nodePath);
  const end = command.lastIndexOf(entry);
  if (at < 0 || end <= at) return undefined;
  return command.slice(at + 1, end);
}

/**
 * Fills the cache for `nodePath` with `flags` (once per broker process and
 * flag set): a node process imports the runtime bundle with the cache on, then
 * its files are made readable for helpers of other uids (node writes them 0600).
 * A helper that runs as `uid` finds them under its own subdirectory name (a link).
 * `binary` names the binary's identity: by default read now ({@link binaryIdentity}); a launch passes its runtime
 * cache directory, whose name hashes that identity (lib/broker/code-cache.ts), so the binary is stat'ed once per launch.
 * Never throws; a launch before it finished just runs uncached.
 */
export function warmCompileCache(nodePath: string, flags: readonly string[], uid?: number, binary: string | undefined = binaryIdentity(nodePath)): Promise<void> {
  const dir = compileCacheDir();
  if (dir === undefined) return Promise.resolve();
  const v8Flags = writerFlags(flags);
  // The binary's identity, not only its path: node upgraded in place under a running broker is filled again.
  const key = JSON.stringify([nodePath, binary, v8Flags]);
  let run = warmed.get(key);
  if (run === undefined) {
    const script = `await import(${JSON.stringify(pathToFileURL(BUNDLE).href)}); const m = await import('node:module'); process.stdout.write(m.getCompileCacheDir?.() ?? '');`;
    run = runWriter(nodePath, [...v8Flags, '--input-type=module', '-e', script], { [COMPILE_CACHE_ENV]: dir }).then(({ code, out }) => {
      // The subdirectory node used, when it is where we asked (`<dir>/<version>-<arch>-<flags>-<uid>`).
      const tag = out.trim();
      if (code !== 0 || tag === '' || dirname(tag) !== dir) return undefined;
      // Only this writer's subdirectory: the whole tree (every node version and flag set) took 0.25-0.6 s of blocked loop.
      shareSubdirectory(tag);
      return basename(tag);
    });
    warmed.set(key, run);
  }
  return run.then((tag) => {
    if (tag !== undefined && uid !== undefined && uid !== process.getuid?.()) linkForUid(dir, tag, uid);
  });
}

/** Settles once every cache writer started so far has finished (and its links are made). */
export async function compileCacheWrites(): Promise<void> {
  await Promise.all(warmed.values());
}

/** `<version>-<arch>-<flags>-<uid>` → the broker's own subdirectory of the same flags. */
function linkForUid(dir: string, tag: string, uid: number): void {
  const name = tag.replace(/-\d+$/, `-${uid}`);
  if (name === tag) return;
  try {
    symlinkSync(tag, join(dir, name));
  } catch {
    // EEXIST: linked before (or made by a helper of that uid before the broker wrote the cache: node then ignores it).
    // Marked used (the link itself), once per broker process and day: not evicted (lib/util/cache-eviction.ts).
    if (!usedLinks.has(name)) {
      usedLinks.add(name);
      touch(join(dir, name));
    }
  }
}

/** The links {@link linkForUid} found already there and marked used since the last {@link forgetCompileCaches}. */
const usedLinks = new Set<string>();

/**
 * Forgets which writer runs were made (the next launch of each flag set runs its writer again, which marks its
 * subdirectory used, or fills it again if evicted meanwhile): a long-running broker does this daily (lib/broker/code-cache.ts).
 */
export function forgetCompileCaches(): void {
  warmed.clear();
  usedLinks.clear();
}

/** `sub` (a real directory, never a link) 0755, and what is below it as shareReadOnly makes it. */
function shareSubdirectory(sub: string): void {
  try {
    if (!lstatSync(sub).isDirectory()) return;
    chmodSync(sub, 0o755);
    touch(sub); // in use: not evicted (lib/util/cache-eviction.ts)
    shareReadOnly(sub);
  } catch {
    // Gone meanwhile: the next writer run fixes modes.
  }
}

/** Directories 0755 and files 0644 below `dir` (node creates them 0700 / 0600). */
function shareReadOnly(dir: string): void {
  try {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        chmodSync(path, 0o755);
        shareReadOnly(path);
      } else if (entry.isFile()) {
        chmodSync(path, 0o644);
      }
    }
  } catch {
    // A helper of our own uid may be writing here at the same time; the next writer run fixes modes.
  }
}

/**
 * After a launch was planned: makes sure the cache holds the runtime for the
 * node and flags this launch uses (in the background; this launch does not wait).
 */
export function warmPlannedCompileCache(plan: { command: string; args: readonly string[]; runAs?: { uid: number } | undefined; withholdCaches?: boolean }, input: { nodePath: string; entry: string; compileCache?: string; runtimeCache: string | undefined }): void {
  // A helper that can write the cache (lib/sandbox/broker-caches.ts) may be rewriting it now: no writer runs for its launch.
  if (input.compileCache === undefined || plan.withholdCaches === true) return;
  const flags = plannedNodeFlags([plan.command, ...plan.args], input.nodePath, input.entry);
  // The launch's runtime directory names the binary (found once per launch); without one, its identity is read here.
  if (flags !== undefined) void warmCompileCache(input.nodePath, flags, plan.runAs?.uid, input.runtimeCache ?? binaryIdentity(input.nodePath));
}
