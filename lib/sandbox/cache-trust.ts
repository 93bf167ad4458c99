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
 * An unsandboxed launch does not wait for the host probe (it runs processes,
 * tens of ms): it uses the probe when it has settled, else the cheap rule
 * "root with setpriv" (every sandboxed helper of a root broker is dropped to a
 * uid of its own), else withholds the caches for that launch and starts the
 * probe, so that later launches know.
 * @module
 */
import { findBinary, probeHost, settledHostProbe, type HostProbe } from './host-probe.js';

/** Whether an OS layer keeps the broker's caches read-only for every sandboxed helper of a host probed as `probe`. */
export function osKeepsCachesReadOnly(probe: Pick<HostProbe, 'bwrap' | 'isRoot' | 'setpriv'>): boolean {
  return probe.bwrap !== null || (probe.isRoot && probe.setpriv !== null);
}

let rootWithSetpriv: boolean | undefined;

/**
 * For an unsandboxed launch with `nodePath`: whether its helper may be given the caches (see the module comment).
 * Never waits; when it cannot tell yet, answers false and starts the probe.
 */
export function cachesTrustedWithoutWaiting(nodePath: string): boolean {
  const probe = settledHostProbe(nodePath);
  if (probe !== undefined) return osKeepsCachesReadOnly(probe);
  rootWithSetpriv ??= process.getuid?.() === 0 && findBinary('setpriv') !== null;
  if (rootWithSetpriv) return true;
  probeHost(nodePath).catch(() => undefined);
  return false;
}
