/**
 * bubblewrap's arguments for one helper: the namespaces it unshares, the
 * binds that make up the helper's file system (its code, Node's runtime, the
 * profile's paths, /etc files), the capped scratch tmpfs, and a read-only
 * root. {@link ./compile.ts} places them in the wrapper chain.
 * @module
 */
import type { HostProbe } from './host-probe.js';
import { ancestors, isWithin, pruneNested, withRealPath } from './paths.js';
import type { SandboxProfile } from './profile.js';

/** Files outside the runtime a networked helper needs for name resolution and TLS. */
const NETWORK_ETC_FILES = ['/etc/resolv.conf', '/etc/hosts', '/etc/nsswitch.conf', '/etc/gai.conf', '/etc/host.conf', '/etc/ssl', '/etc/ca-certificates'] as const;

/** Harmless files every helper may read (time zone). */
const COMMON_ETC_FILES = ['/etc/localtime'] as const;

/** The /etc files a helper of `profile` may read: the time zone, plus name resolution and TLS with a `full` network. */
export function helperEtcFiles(profile: SandboxProfile): string[] {
  return [...COMMON_ETC_FILES, ...(profile.network === 'full' ? NETWORK_ETC_FILES : [])];
}

/** What {@link bwrapArgs} builds bubblewrap's arguments from. */
export interface BwrapArgsOptions {
  /** The profile: its network rule decides `--unshare-net` and which /etc files are bound. */
  profile: SandboxProfile;
  /** The host: root or not (`--unshare-user`), its runtime roots, and the setpriv/unshare binaries to bind. */
  probe: HostProbe;
  /** Paths bound read-only; those under a runtime root or a write path are left to that bind. */
  reads: readonly string[];
  /** Paths bound read-write (the scratch dir among them). */
  writes: readonly string[];
  /** The node binary the helper runs, bound (with its real path) when outside the runtime roots. */
  nodePath: string;
  /** The per-launch scratch dir: the helper's cwd, and a capped tmpfs when `scratchBytes` is set. */
  scratch: string;
  /** The scratch dir's `tmp/` (the helper's TMPDIR), recreated on that tmpfs. */
  scratchTmp: string;
  /** Drop every capability (`--cap-drop ALL`): root without setpriv to drop them. */
  capDrop: boolean;
  /** Size of the scratch tmpfs in bytes (`limits.scratchMiB`); undefined: scratch stays a plain bind. */
  scratchBytes: number | undefined;
  /** The kernel layers' bubblewrap arguments (`--seccomp 5`, `--disable-userns`), placed after the unshares. */
  kernelArgs: readonly string[];
  /** Files the kernel layers need inside the sandbox (the Landlock pre-exec wrapper). */
  kernelReads: readonly string[];
  /** Files bound over paths of /etc instead of the host's (destination → source); e.g. the helper's resolv.conf behind pasta. */
  etcOverrides?: ReadonlyMap<string, string>;
  /** Files bound read-only at a path of the sandbox's own, from `source` (the mm holder's library); a missing source is skipped, as a read is. */
  fileBinds?: readonly { path: string; source: string }[];
  /** Directories bound read-only after every other bind, over any write path that contains them (the broker's caches). */
  readOnlyOver?: readonly string[];
}

/** bubblewrap's arguments (before its `--`): namespaces, binds, the scratch tmpfs, a read-only root. */
export function bwrapArgs(options: BwrapArgsOptions): string[] {
  const { profile, probe, reads, writes, nodePath, scratch, scratchTmp, capDrop, scratchBytes, kernelArgs, kernelReads, fileBinds = [], readOnlyOver = [] } = options;
  const args = ['--die-with-parent', '--new-session', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try'];
  if (!probe.isRoot) args.push('--unshare-user');
  if (profile.network !== 'full') args.push('--unshare-net');
  if (capDrop) args.push('--cap-drop', 'ALL');
  args.push(...kernelArgs);
  const roots = probe.runtimeRoots;
  for (const root of roots) {
    if (root.symlink !== null) args.push('--symlink', root.symlink, root.path);
    else args.push('--ro-bind', root.path, root.path);
  }
  const covered = (path: string): boolean => roots.some((r) => r.symlink === null && isWithin(path, r.path));
  // The node binary and the wrappers must exist inside; outside /usr (nvm, /opt) bind them too.
  const extraReads = [nodePath, ...withRealPath(nodePath), probe.setpriv, probe.unshare, ...kernelReads].filter((p): p is string => p !== null && !covered(p));
  const etc = helperEtcFiles(profile);
  args.push('--proc', '/proc', '--dev', '/dev');

  type Bind = { path: string; mode: 'ro' | 'rw' | 'ro-try'; source?: string };
  const binds: Bind[] = [
    ...pruneNested([...reads, ...extraReads]).filter((p) => !covered(p) && !writes.some((w) => isWithin(p, w))).map((path): Bind => ({ path, mode: 'ro' })),
    ...etc.map((path): Bind => {
      const source = options.etcOverrides?.get(path);
      return source === undefined ? { path, mode: 'ro-try' } : { path, mode: 'ro', source };
    }),
    ...writes.map((path): Bind => ({ path, mode: 'rw' })),
    // (kernel-layers.ts places these where no other bind is, at, above or below them.)
    ...fileBinds.map(({ path, source }): Bind => ({ path, mode: 'ro-try', source })),
  ];
  // bwrap creates missing mount points as 0700 dirs, which a dropped uid cannot traverse: create them 0755 first.
  const dirs = new Set<string>();
  for (const bind of binds) for (const dir of ancestors(bind.path)) if (!covered(dir)) dirs.add(dir);
  for (const dir of [...dirs].sort((a, b) => a.length - b.length)) args.push('--perms', '0755', '--dir', dir);
  // Parents before children, so a writable dir inside a read-only one stays writable.
  binds.sort((a, b) => a.path.length - b.path.length);
  // A read inside a cache directory (the compile cache, a validators file) is hidden by that directory's bind below: not made.
  for (const bind of binds) {
    if (bind.mode === 'ro' && bind.source === undefined && readOnlyOver.some((dir) => isWithin(bind.path, dir))) continue;
    const flag = bind.mode === 'rw' ? '--bind-try' : bind.source !== undefined && bind.mode === 'ro' ? '--ro-bind' : '--ro-bind-try';
    args.push(flag, bind.source ?? bind.path, bind.path);
  }
  // Last, so no write bind (one containing them, or one inside them) is mounted over them. Not -try: missing, the launch fails.
  for (const dir of readOnlyOver) args.push('--ro-bind', dir, dir);
  if (scratchBytes !== undefined) {
    // A capped tmpfs over the scratch dir bounds the helper's total disk use (RLIMIT_FSIZE bounds one file).
    // 1777: the helper may run as a dropped uid that does not own the mount.
    args.push('--perms', '1777', '--size', String(scratchBytes), '--tmpfs', scratch);
    args.push('--perms', '1777', '--dir', scratchTmp);
  }
  // The root is a tmpfs bwrap built; freeze it so the only writable places are the binds above.
  args.push('--remount-ro', '/', '--chdir', scratch);
  return args;
}
