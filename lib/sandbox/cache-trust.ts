/**
 * Whether helpers on this host may load the broker's caches of code from disk
 * at all: Node's compile cache, the runtime's code cache, the precompiled
 * validators modules and their code caches (lib/sandbox/broker-caches.ts).
 *
 * Those files are code, and they live in the broker's `TMPDIR`, shared by every
 * broker of its uid. They stay the broker's alone only where an OS layer keeps
 * every sandboxed helper from writing them: bubblewrap's read-only bind, or a
 * root broker's uid drop (setpriv). On a host with neither (a broker that is not
 * root, without a working bubblewrap), a sandboxed helper runs as the broker's
 * uid, and only Landlock (the write paths) and Node's permission model stand
 * between it and those directories: a helper whose write paths reach them (a
 * `"write": ["/tmp"]` profile, in this broker or another app's broker of the
 * same uid) can plant code there, and a file the broker checked could be
 * swapped before a helper reads it. So there no helper is given the caches, and
 * the broker starts no cache writer (its writers run unsandboxed, as the
 * broker: a planted compile-cache entry would run in them). Helpers then compile
 * their runtime without V8's cache, and their validators from the module's text,
 * which the broker passes by value (lib/broker/validators-by-value.ts).
 *
 * An unsandboxed launch does not wait for the whole host probe (it runs node and other processes: 50–110 ms on
 * the 2-core test machine). Its answer needs only bubblewrap's test run (7–20 ms there), which the broker starts
 * when it is made ({@link startCacheTrustProbe}), so it has usually settled by the first launch. Until then a
 * launch uses the cheap rule "root with setpriv" (every sandboxed helper of a root broker is dropped to a uid of
 * its own), else waits for that test run, at most {@link CACHE_TRUST_WAIT_MS}, and withholds the caches when it
 * has not settled by then. Waiting is the cheaper side: a launch without the caches costs its helper 6–9 ms of
 * CPU, and the broker the generation of the validators module's text (bench/README.md, round nine).
 * @module
 */
import { findBinary, probeCacheLayers, settledCacheLayers, type CacheLayers } from './host-probe.js';

/**
 * Longest an unsandboxed launch waits for bubblewrap's test run before it goes without the caches (fail closed).
 * Far above the run's 7–20 ms, so a loaded machine still waits (going without costs more); it only bounds a host
 * where bubblewrap hangs.
 */
export const CACHE_TRUST_WAIT_MS = 1000;

/** Whether an OS layer keeps the broker's caches read-only for every sandboxed helper of a host probed as `probe`. */
export function osKeepsCachesReadOnly(probe: CacheLayers): boolean {
  return probe.bwrap !== null || (probe.isRoot && probe.setpriv !== null);
}

let rootWithSetpriv: boolean | undefined;

/** For an unsandboxed launch with `nodePath`: whether its helper may be given the caches, when that is known now; else undefined. */
export function cachesTrustedNow(nodePath: string): boolean | undefined {
  const layers = settledCacheLayers(nodePath);
  if (layers !== undefined) return osKeepsCachesReadOnly(layers);
  rootWithSetpriv ??= process.getuid?.() === 0 && findBinary('setpriv') !== null;
  return rootWithSetpriv ? true : undefined;
}

/**
 * Starts finding out, in the background, whether helpers of `nodePath` may be given the caches (bubblewrap's test
 * run), unless that is known already. Never throws, never waits: the broker calls it when it is made.
 */
export function startCacheTrustProbe(nodePath: string): void {
  if (cachesTrustedNow(nodePath) === undefined) probeCacheLayers(nodePath).catch(() => undefined);
}

/**
 * For an unsandboxed launch with `nodePath`: whether its helper may be given the caches (see the module comment).
 * Call it when {@link cachesTrustedNow} cannot tell; false when bubblewrap's test run did not settle within
 * {@link CACHE_TRUST_WAIT_MS}, or failed.
 */
export async function cachesTrusted(nodePath: string): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(resolve, CACHE_TRUST_WAIT_MS, false);
  });
  try {
    return await Promise.race([probeCacheLayers(nodePath).then(osKeepsCachesReadOnly, () => false), late]);
  } finally {
    clearTimeout(timer);
  }
}
