/**
 * Finds out once which sandbox layers this host really has: not "is the
 * binary installed" but "does it work here" (bubblewrap and user namespaces
 * are often present yet disabled in containers). Results are cached per node
 * binary for the life of the process.
 * @module
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { probeCgroups, type CgroupSupport } from './cgroup-probe.js';
import { probeKernel, type KernelProbe } from './kernel-layers.js';
import { MM_PRELOAD, nativeExecGuard } from './exec-guard.js';

/** Directories searched for helper binaries. Fixed, never the caller's PATH, so a planted binary is not picked up. */
export const SYSTEM_BIN_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'] as const;

/** Top-level system directories a sandboxed node needs for its shared libraries (bound read-only or recreated as symlinks). */
const RUNTIME_ROOTS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'] as const;

/** What Node's permission model offers in the node binary that will run the helper. */
export interface NodePermissionSupport {
  /** `--permission` (Node ≥ 22.13/23.5), `--experimental-permission` (Node 20–22), or null. */
  flag: '--permission' | '--experimental-permission' | null;
  /** `--allow-addons` exists (otherwise addons are always refused under the model). */
  allowAddons: boolean;
  /** `--disable-warning=` exists (to silence the ExperimentalWarning on stderr). */
  disableWarning: boolean;
  /**
   * `--allow-net` exists (Node ≥ 25): under the permission model every socket, including
   * adopting the inherited fd 3, is refused without it, so the compiler must pass it.
   */
  allowNet: boolean;
  /** Major version of that node binary (0 when it could not be read). */
  major: number;
  /**
   * Address space V8 reserves per isolate (main thread and each worker) that RLIMIT_DATA
   * counts, in MiB: an RLIMIT_DATA below it kills node before any JS runs (exit 133,
   * "Failed to reserve virtual memory for CodeRange"). See {@link isolateReserveMiB}.
   */
  isolateReserveMiB: number;
}

/**
 * What V8 reserves per isolate, counted by RLIMIT_DATA, by Node major. Measured with
 * `prlimit --data=N node -e 0` (smallest N that starts, plus one worker): Node 20.20 and
 * 22.23 start at 79 MiB and a worker adds ~1 MiB; Node 24.22 and 26.12 need 572 MiB and
 * each worker adds ~523 MiB. Rounded up with a margin.
 */
export function isolateReserveMiB(major: number): number {
  // Unknown version: assume the larger reservation, so the fallback never kills node.
  return major === 0 || major >= 24 ? 576 : 0;
}

/** A top-level runtime directory as it exists on the host. */
export interface RuntimeRoot {
  path: string;
  /** Target when the host has it as a symlink (merged /usr), else null. */
  symlink: string | null;
}

/** Which layers this host has, and why one is missing. */
export interface HostProbe {
  /** True when the broker runs as uid 0 (it may drop helpers to another uid). */
  isRoot: boolean;
  /** The broker's uid. */
  uid: number;
  /** Absolute path of a working bubblewrap, or null. */
  bwrap: string | null;
  /** This bubblewrap has `--size`, which caps a tmpfs (the scratch dir under `limits.scratchMiB`). */
  bwrapTmpfsSize: boolean;
  /** This bubblewrap has `--disable-userns` (0.8 or later). */
  bwrapDisableUserns: boolean;
  /** libseccomp and Landlock, as the broker can reach them (lib/sandbox/kernel-layers.ts). */
  kernel: KernelProbe;
  /** Why bubblewrap is not usable (not installed, or the test run failed). */
  bwrapProblem: string | null;
  /** Unprivileged user namespaces work (needed by bubblewrap and unshare when not root). */
  userNamespaces: boolean;
  /** Absolute paths of util-linux tools, or null when absent. */
  unshare: string | null;
  setpriv: string | null;
  prlimit: string | null;
  /** passt's `pasta` (user-mode networking for a helper's own network namespace under `network: "full"`), or null. */
  pasta: string | null;
  /** coreutils `env`, to strip variables a spawn hook adds after planning. */
  env: string | null;
  /** Node's permission model in the helper's node binary. */
  node: NodePermissionSupport;
  /** /usr, /lib, ... as found on the host (for bubblewrap's filesystem view). */
  runtimeRoots: RuntimeRoot[];
  /** `sh`, the first wrapper, which puts the helper into its cgroup before exec'ing the rest. */
  sh: string | null;
  /** Where per-helper cgroups can be made (memory, pids, cpu), or null when nowhere. */
  cgroup: CgroupSupport | null;
}

/** Rewrites a real probe; tests use it to simulate a host without a layer. */
export type HostProbeOverride = (probe: HostProbe) => HostProbe;

const cache = new Map<string, Promise<HostProbe>>();
let override: HostProbeOverride | undefined;

/**
 * Replaces what {@link probeHost} returns, e.g. `p => ({ ...p, bwrap: null, bwrapProblem: 'simulated' })`.
 * Meant for tests of the fail-closed path; pass undefined to restore the real probe.
 */
export function setHostProbeOverride(fn: HostProbeOverride | undefined): void {
  override = fn;
}

/** The first executable `name` in {@link SYSTEM_BIN_DIRS}, or null. */
export function findBinary(name: string): string | null {
  for (const dir of SYSTEM_BIN_DIRS) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not in this directory; try the next
    }
  }
  return null;
}

function run(file: string, args: string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 10_000, env: { PATH: SYSTEM_BIN_DIRS.join(':') } }, (err, stdout, stderr) => {
      resolve({ ok: err === null, stdout, stderr: stderr.trim() });
    });
  });
}

function runtimeRoots(): RuntimeRoot[] {
  const roots: RuntimeRoot[] = [];
  for (const path of RUNTIME_ROOTS) {
    try {
      const st = lstatSync(path);
      if (st.isSymbolicLink()) roots.push({ path, symlink: readlinkSync(path) });
      else if (st.isDirectory()) roots.push({ path, symlink: null });
    } catch {
      // this host has no such directory (e.g. no /lib32)
    }
  }
  return roots;
}

async function nodeSupport(nodePath: string): Promise<NodePermissionSupport> {
  const [help, version] = await Promise.all([run(nodePath, ['--help']), run(nodePath, ['--version'])]);
  const text = help.stdout;
  // Node 22.13+ lists "--experimental-permission, --permission" on one line: the stable name wins.
  const flag = /(?:^|[\s,])--permission\b/m.test(text) ? '--permission' : /--experimental-permission\b/.test(text) ? '--experimental-permission' : null;
  const major = Number(/^v(\d+)\./.exec(version.stdout.trim())?.[1] ?? 0);
  return { flag, allowAddons: /--allow-addons\b/.test(text), disableWarning: /--disable-warning\b/.test(text), allowNet: /--allow-net\b/.test(text), major, isolateReserveMiB: isolateReserveMiB(major) };
}

async function realProbe(nodePath: string): Promise<HostProbe> {
  const uid = process.getuid?.() ?? -1;
  const isRoot = uid === 0;
  const unshare = findBinary('unshare');
  const setpriv = findBinary('setpriv');
  const prlimit = findBinary('prlimit');
  const trueBin = findBinary('true') ?? '/bin/true';
  const userNs = unshare === null ? Promise.resolve(false) : run(unshare, ['--user', '--map-current-user', '--net', trueBin]).then((r) => r.ok);
  const bwrapPath = findBinary('bwrap');
  const bwrapHelp = bwrapPath === null ? Promise.resolve({ ok: false, stdout: '', stderr: '' }) : run(bwrapPath, ['--help']);
  const [userNamespaces, bwrapResult, node, help, execGuardNative] = await Promise.all([userNs, testBubblewrap(), nodeSupport(nodePath), bwrapHelp, nativeExecGuard()]);
  return {
    isRoot,
    uid,
    bwrap: bwrapResult.ok ? bwrapResult.path : null,
    bwrapTmpfsSize: help.stdout.includes('--size'),
    bwrapDisableUserns: help.stdout.includes('--disable-userns'),
    kernel: { ...probeKernel(), execGuardNative, mmPreload: execGuardNative !== null && existsSync(MM_PRELOAD) ? MM_PRELOAD : null },
    bwrapProblem: bwrapResult.path === null ? 'bubblewrap (bwrap) is not installed' : bwrapResult.ok ? null : `bubblewrap does not work here: ${bwrapResult.stderr || 'test run failed'}`,
    userNamespaces,
    unshare,
    setpriv,
    prlimit,
    pasta: findBinary('pasta'),
    env: findBinary('env'),
    node,
    runtimeRoots: runtimeRoots(),
    sh: findBinary('sh'),
    cgroup: probeCgroups(isRoot),
  };
}

let bubblewrapRun: Promise<{ path: string | null; ok: boolean; stderr: string }> | undefined;
/** What it tells the caches' trust, once settled (read without waiting by {@link settledCacheLayers}): made once, not per launch. */
let settledLayers: CacheLayers | undefined;

/**
 * Runs bubblewrap once in this process with the namespaces a real launch asks for (installed-but-blocked, as in
 * seccomp'd containers, is "missing"); the probe's `bwrap` comes from it. Shared, so whoever asks first starts it:
 * the caches' trust (cache-trust.ts) needs only this part of the probe, which takes a fraction of its time.
 */
function testBubblewrap(): Promise<{ path: string | null; ok: boolean; stderr: string }> {
  if (bubblewrapRun !== undefined) return bubblewrapRun;
  const path = findBinary('bwrap');
  const isRoot = process.getuid?.() === 0;
  bubblewrapRun = path === null
    ? Promise.resolve({ path, ok: false, stderr: 'not installed' })
    : run(path, [...(isRoot ? [] : ['--unshare-user']), '--unshare-net', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '--', findBinary('true') ?? '/bin/true']).then((r) => ({ path, ...r }));
  void bubblewrapRun.then((r) => (settledLayers = cacheLayers(r)));
  return bubblewrapRun;
}

/** What the trust in the broker's caches of code needs of the probe (lib/sandbox/cache-trust.ts). */
export type CacheLayers = Pick<HostProbe, 'bwrap' | 'isRoot' | 'setpriv'>;

function cacheLayers(bubblewrap: { path: string | null; ok: boolean }): CacheLayers {
  return { bwrap: bubblewrap.ok ? bubblewrap.path : null, isRoot: process.getuid?.() === 0, setpriv: findBinary('setpriv') };
}

/**
 * {@link CacheLayers} as soon as bubblewrap's test run settled, without waiting for the rest of the probe (node's
 * `--help` and the kernel checks take several times as long). Under an override it waits for the whole probe,
 * which the override rewrites.
 */
export async function probeCacheLayers(nodePath: string): Promise<CacheLayers> {
  if (override !== undefined) return probeHost(nodePath);
  const bubblewrap = await testBubblewrap();
  return settledLayers ?? cacheLayers(bubblewrap);
}

/** What {@link probeCacheLayers} would answer for `nodePath`, when that has settled; else undefined. */
export function settledCacheLayers(nodePath: string): CacheLayers | undefined {
  const probe = settledHostProbe(nodePath);
  return probe !== undefined || override !== undefined ? probe : settledLayers;
}

/**
 * Probes the host (once per node binary; later calls share the result).
 * @param nodePath - the node binary that will run helpers
 */
export async function probeHost(nodePath: string = process.execPath): Promise<HostProbe> {
  let probe = cache.get(nodePath);
  if (probe === undefined) {
    probe = realProbe(nodePath);
    cache.set(nodePath, probe);
  }
  const result = await probe;
  settled.set(nodePath, result);
  return override === undefined ? result : override(structuredClone(result));
}

/** Probes that have settled, by node binary (read without waiting by {@link settledHostProbe}). */
const settled = new Map<string, HostProbe>();

/** What {@link probeHost} would answer for `nodePath` (override applied), when its probe has already settled; else undefined. */
export function settledHostProbe(nodePath: string): HostProbe | undefined {
  const result = settled.get(nodePath);
  return result === undefined || override === undefined ? result : override(structuredClone(result));
}
