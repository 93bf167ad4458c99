/**
 * The kernel layers of a launch: the seccomp filter (handed to bubblewrap),
 * the pre-exec stage right before the helper's node (the exec guard, and
 * Landlock where it runs) and what they add to the enforcement report.
 * {@link ./compile.ts} calls {@link planKernelLayers} once and splices the
 * result into its command line.
 *
 * Where Landlock runs, by measurement (docs/sandbox.md): it needs the node
 * stage, one extra short-lived node process per launch, so it runs only where
 * it enforces something no cheaper layer does: abstract-socket scoping for
 * `network: "full"` on a host without pasta (the helper shares the host's
 * network namespace there; with pasta it has its own, see {@link ./pasta.ts}),
 * and the filesystem rules on hosts without bubblewrap. The exec guard
 * ({@link ./exec-guard.ts}) runs for every profile with children off, in the
 * native stage where it was built (a few ms), else in the node stage.
 * @module
 */
import { dirname, join } from 'node:path';
import { isWithin } from './paths.js';
import { fileURLToPath } from 'node:url';
import { loadFfi } from './ffi.js';
import { koffiDir, koffiNative } from './koffi-files.js';
import { realPathJs, resolvConf } from './fs-answers.js';
import type { HostProbe } from './host-probe.js';
import type { LandlockSpec } from './landlock-spec.js';
import { compileFilter, seccompProblem } from './seccomp.js';
import { execGuardProblem, execGuardProgram } from './exec-guard.js';
import { execGuardGroup, syscallGroups, type SyscallOptions } from './seccomp-policy.js';
import type { SandboxProfile } from './profile.js';

/** The child fd bubblewrap reads the seccomp program from (fds 0–2 stdio, 3 the channel, 4 the outbound channel). */
export const SECCOMP_CHILD_FD = 5;

/** The lowest Landlock ABI with scoping of abstract Unix sockets and signals (Linux 6.12). */
export const LANDLOCK_SCOPE_ABI = 6;

/** What the kernel offers for these layers (part of {@link HostProbe}). */
export interface KernelProbe {
  /** Why seccomp filters cannot be built (no koffi binary, no libseccomp), or null. */
  seccompProblem: string | null;
  /** libseccomp's version, when loaded. */
  libseccomp: string | null;
  /** Landlock ABI version (0: none). */
  landlockAbi: number;
  /** Why the exec guard cannot run (no libseccomp, or a kernel without TSYNC_ESRCH), or null. */
  execGuardProblem: string | null;
  /** The exec guard's native stage (dist/native/exec-guard), when built; absent or null: the node stage. */
  execGuardNative?: string | null;
  /** bulkhead's mm-holder library (dist/native/mm_preload.so), when built beside a working native stage; absent or null: none. */
  mmPreload?: string | null;
}

/** Probes libseccomp and Landlock through the FFI (cheap: two library loads and one syscall); the native exec-guard stage is probed by host-probe.ts. */
export function probeKernel(): KernelProbe {
  const ffi = loadFfi();
  if (!ffi.ok) return { seccompProblem: ffi.problem, libseccomp: null, landlockAbi: 0, execGuardProblem: ffi.problem };
  return { seccompProblem: seccompProblem(), libseccomp: ffi.seccomp?.version ?? null, landlockAbi: ffi.libc.landlockAbi(), execGuardProblem: execGuardProblem() };
}

/** One line of the report (same shape as compile.ts's CompiledRule). */
export interface KernelRule {
  rule: string;
  layers: string[];
  unenforced: boolean;
  detail?: string;
  missing?: string;
  /** When merged into an existing rule: add the layers, never change whether it counts as enforced. */
  layersOnly?: boolean;
  /** When merged into an existing rule: this detail replaces the existing one instead of being appended. */
  replacesDetail?: boolean;
}

/** The child fds bubblewrap reports its child on and waits on, when pasta gives a `full` helper its network (lib/sandbox/pasta.ts). */
export interface PastaFds {
  /** bubblewrap's `--info-fd`: the child fd it writes `{"child-pid": N, ...}` to. */
  info: number;
  /** bubblewrap's `--block-fd`: the child fd it reads one byte from before it execs the helper. */
  block: number;
}

/** What the kernel layers add to a launch. */
export interface KernelPlan {
  /** Rules to add, or to merge into a rule of the same name (layers appended). */
  rules: KernelRule[];
  /** Extra bubblewrap arguments (`--seccomp 5`, `--disable-userns`). */
  bwrapArgs: string[];
  /** The BPF program to pass as child fd {@link SECCOMP_CHILD_FD}, when bubblewrap loads one. */
  seccompProgram: Buffer | undefined;
  /** Prefix put right before the helper's node command (the Landlock pre-exec step), or []. */
  preExec: string[];
  /** Paths the pre-exec step must read inside bubblewrap (koffi), not given to the helper's Node flags. */
  extraReads: string[];
  /** Set when a `full` helper gets a network namespace of its own with pasta: the fds the broker wires. */
  pasta: PastaFds | undefined;
  /** Files bound read-only over paths of /etc instead of the host's (the helper's resolv.conf behind pasta). */
  etcOverrides: ReadonlyMap<string, string>;
  /** Files bound read-only at a path of the sandbox's own (`path`), from `source` (the mm holder's library, {@link MM_PRELOAD_BOUND}). */
  fileBinds: readonly { path: string; source: string }[];
}

/** Paths the Landlock fs ruleset is built from. */
export interface KernelPlanInput {
  nodePath: string;
  reads: readonly string[];
  writes: readonly string[];
  etc: readonly string[];
  runtimeRoots: readonly string[];
  /** The service is prewarmed: its node may get an mm holder (SandboxLaunchInput.mmHolder). */
  mmHolder?: boolean;
  /** Other directories bubblewrap binds (the broker's read-only caches): the mm holder's bind must not land in one. */
  otherBinds?: readonly string[];
}

const LANDLOCK_EXEC = join(dirname(fileURLToPath(import.meta.url)), 'landlock-exec.js');
const PACKAGE_JSON = fileURLToPath(new URL('../../../package.json', import.meta.url));
const EXEC_GUARD_WORKER = join(dirname(LANDLOCK_EXEC), 'exec-guard-worker.js');

function real(path: string): string {
  return realPathJs(path) ?? path;
}

/** The ELF interpreter node needs EXECUTE on (the kernel opens it for exec). */
const LD_SO = ['/lib64/ld-linux-x86-64.so.2', '/lib/ld-linux-aarch64.so.1'];

/** pids.max below which a helper gets no mm holder: node's own ~11 threads, with room (the holder is one more task). */
const MM_HOLDER_MIN_PIDS = 16;

/**
 * Where bubblewrap binds the mm holder's library (read-only, from wherever bulkhead is installed) and where the exec
 * guard's `LD_PRELOAD` names it. ld.so splits that variable at every space and colon and has no escape: a package
 * under `/home/u/My Projects` named in it as such would preload `/home/u/My` and the relative `Projects/.../mm_preload.so`
 * (from node's cwd) instead. bubblewrap takes the source as one argument, so any install path works; this path is
 * bulkhead's own, in the sandbox's fresh root, where no helper code has run before node's exec.
 */
export const MM_PRELOAD_BOUND = '/.bh-mm-holder/mm_preload.so';

/**
 * True when `path` reaches ld.so as one library in LD_PRELOAD: absolute, no space or colon (see {@link MM_PRELOAD_BOUND}).
 * A path that is not gets no holder.
 */
function preloadable(path: string): boolean {
  return path.startsWith('/') && !/[\s:]/.test(path);
}

/**
 * The mm-holder library a prewarmed service's native exec guard names for node (docs/sandbox.md#the-mm-holder), as
 * the bind that puts it at {@link MM_PRELOAD_BOUND}, or null. Asked only where the native stage is node's last stage
 * ({@link lastStage}). Besides: under bubblewrap (the bind, and its pid namespace's end kills the holder), for a
 * network other than "full" (a "full" helper's native stage, behind pasta or on a kernel without Landlock's scoping,
 * has never run a holder: none until that is tried), with room for one more task under pids.max, and where no other
 * bind of the sandbox holds the bound path or lies inside its directory (the bind would land in the host's file, or
 * be hidden: no holder then).
 */
function mmHolderLibrary(profile: SandboxProfile, probe: HostProbe, bound: readonly string[]): { path: string; source: string } | null {
  const library = probe.kernel.mmPreload ?? null;
  if (library === null || !library.startsWith('/') || !preloadable(MM_PRELOAD_BOUND) || probe.bwrap === null || profile.network === 'full') return null;
  const dir = dirname(MM_PRELOAD_BOUND);
  if (bound.some((p) => isWithin(MM_PRELOAD_BOUND, p) || isWithin(p, dir))) return null;
  const pids = profile.limits.processes;
  return pids === undefined || pids >= MM_HOLDER_MIN_PIDS ? { path: MM_PRELOAD_BOUND, source: library } : null;
}

/**
 * The stage that runs right before the helper's node, decided once a plan ({@link lastStage}): the stage chain
 * runs it, and the mm holder reads it (only the native stage can start one, see {@link mmHolderLibrary}).
 */
type LastStage =
  /** The exec guard alone, in its native stage (a few ms). */
  | { kind: 'native'; binary: string }
  /** The node stage (one node start): Landlock where it runs, the exec guard where it runs and the native one cannot. */
  | { kind: 'node'; koffi: string }
  | { kind: 'none' };

function lastStage(guardOn: boolean, landlockOn: boolean, nativeGuard: string | null, koffi: string | null): LastStage {
  // Landlock needs the node stage: the native stage runs only for the guard alone.
  if (guardOn && !landlockOn && nativeGuard !== null) return { kind: 'native', binary: nativeGuard };
  if ((landlockOn || guardOn) && koffi !== null) return { kind: 'node', koffi };
  return { kind: 'none' };
}

/**
 * Plans seccomp and Landlock for one launch.
 * @param profile - the validated profile
 * @param probe - the host probe (its `kernel` and `bwrap` fields decide)
 */
export function planKernelLayers(profile: SandboxProfile, probe: HostProbe, input: KernelPlanInput): KernelPlan {
  const rules: KernelRule[] = [];
  const bwrapArgs: string[] = [];
  const kernel = probe.kernel;
  const koffi = koffiDir();
  const missingSeccomp = probe.bwrap === null
    ? `bubblewrap (it loads the seccomp filter; ${probe.bwrapProblem ?? 'unavailable'})`
    : kernel.seccompProblem !== null ? kernel.seccompProblem : null;
  // The exec guard (children: false): a filter of its own, loaded by the pre-exec stage, lets only that stage's exec through.
  const guardMissing = missingSeccomp ?? kernel.execGuardProblem ?? (koffi === null ? 'koffi (npm), which the pre-exec stage loads the guard with' : null);
  const guardOn = !profile.processes.children && guardMissing === null;
  // network "full": a namespace of its own, which pasta connects to the host's network (its rules come below)
  const netns = planFullNetns(profile, probe, missingSeccomp === null);
  // Landlock: only where it enforces something no cheaper layer does
  const scopeAvailable = kernel.landlockAbi >= LANDLOCK_SCOPE_ABI;
  // With pasta the helper's abstract namespace is its own: scoping would add a node start and nothing else.
  const wantScope = profile.network === 'full' && scopeAvailable && netns.pasta === undefined;
  const wantFs = probe.bwrap === null && kernel.landlockAbi >= 1;
  const landlockOn = (wantScope || wantFs) && koffi !== null && kernel.landlockAbi > 0;
  const stage = lastStage(guardOn, landlockOn, kernel.execGuardNative ?? null, koffi);
  // Every path bubblewrap binds at its own place (bwrap-args.ts): the mm holder's bind must stay clear of them.
  const bound = [...input.reads, ...input.writes, ...input.etc, ...input.runtimeRoots, input.nodePath, real(input.nodePath), '/proc', '/dev',
    ...[probe.setpriv, probe.unshare, kernel.execGuardNative ?? null].filter((p): p is string => p !== null), ...(input.otherBinds ?? [])];
  const mmPreload = input.mmHolder === true && stage.kind === 'native' ? mmHolderLibrary(profile, probe, bound) : null;
  const options: SyscallOptions = { ioUring: profile.syscalls.ioUring, onViolation: profile.syscalls.onViolation, execGuard: guardOn, mmHolder: mmPreload !== null };

  // ---- seccomp: bubblewrap loads the program right before it execs the first wrapper inside
  let seccompProgram: Buffer | undefined;
  const groups = syscallGroups(profile, options);
  let unresolved: string[] = [];
  if (missingSeccomp === null) {
    const compiled = compileFilter(profile, options);
    seccompProgram = compiled.bpf;
    unresolved = compiled.unresolved;
    bwrapArgs.push('--seccomp', String(SECCOMP_CHILD_FD));
  }
  const action = options.onViolation === 'kill' ? 'kills the helper (SIGSYS)' : 'fails with EPERM';
  for (const group of groups) {
    const gap = unresolved.filter((name) => group.rules.some((r) => r.name === name));
    rules.push({
      rule: group.rule,
      layers: missingSeccomp === null ? ['seccomp'] : [],
      unenforced: missingSeccomp !== null,
      detail: `${group.detail}; a refused call ${action}${gap.length > 0 ? `; this libseccomp does not know ${gap.join(', ')}, left allowed` : ''}`,
      ...(missingSeccomp !== null ? { missing: missingSeccomp } : {}),
    });
  }
  if (profile.syscalls.ioUring) rules.push({ rule: 'syscalls.ioUring', layers: [], unenforced: false, detail: 'allowed by the profile' });
  if (profile.processes.children) {
    rules.push({ rule: 'processes.exec', layers: [], unenforced: false, detail: 'allowed: a profile that allows children allows exec (a child is a fork and an exec); what it runs stays inside the filter and every other layer' });
  } else {
    const guard = execGuardGroup();
    const violation = options.onViolation === 'kill' ? '; with onViolation "kill" an execve kills the helper' : '';
    rules.push(guardOn
      ? { rule: guard.rule, layers: ['seccomp:exec-guard'], unenforced: false, detail: `${guard.detail}${violation}; loaded by the ${kernel.execGuardNative != null ? 'native stage (dist/native/exec-guard), or the node stage when Landlock runs too' : 'node pre-exec stage'}` }
      : { rule: guard.rule, layers: [], unenforced: true, missing: guardMissing ?? 'the exec guard', detail: 'execve after start cannot be refused: native code could replace the helper with another program, which stays inside the other layers but not Node\'s permission model' });
  }
  // An unprivileged bubblewrap runs in its own user namespace: it can also forbid nested ones (user.max_user_namespaces = 1).
  if (probe.bwrap !== null && !probe.isRoot && probe.bwrapDisableUserns) {
    bwrapArgs.push('--disable-userns');
    const ns = rules.find((r) => r.rule === 'syscalls.namespaces');
    if (ns !== undefined) {
      ns.layers.push('bubblewrap:disable-userns');
      ns.unenforced = false;
    }
  }

  // ---- network "full"
  bwrapArgs.push(...netns.bwrapArgs);
  rules.push(...netns.rules);

  // ---- the stage right before node
  let preExec: string[] = [];
  const extraReads: string[] = [];
  if (stage.kind === 'native') {
    const holder = mmPreload !== null ? ['--mm-holder', mmPreload.path] : [];
    preExec = [stage.binary, execGuardProgram(options.onViolation).toString('hex'), ...holder, '--'];
    extraReads.push(stage.binary);
  } else if (stage.kind === 'node') {
    const spec: LandlockSpec = {};
    const native = koffiNative();
    if (landlockOn) {
      spec.scope = { abstractUnix: scopeAvailable, signal: scopeAvailable };
      const exec = profile.processes.children ? [...input.runtimeRoots, real(input.nodePath)] : [real(input.nodePath), ...LD_SO.map(real)];
      spec.fs = {
        abi: kernel.landlockAbi,
        // node reads OpenSSL's configuration at start and aborts on EACCES (ENOENT, inside bubblewrap, is fine).
        // (The exec guard's worker is loaded after the ruleset applies: its file and the package.json that makes it ESM.)
        read: [...input.runtimeRoots, ...input.reads, ...input.etc, '/etc/ssl/openssl.cnf', '/proc', '/dev', input.nodePath, LANDLOCK_EXEC, stage.koffi, EXEC_GUARD_WORKER, PACKAGE_JSON],
        write: [...input.writes, '/dev/null'],
        exec,
      };
      // koffi 3 ships its binary in a package of its own (@koromix/koffi-<platform>), outside koffi's dir.
      if (native !== null) spec.fs.read.push(native);
    }
    if (guardOn) spec.execGuard = execGuardProgram(options.onViolation).toString('base64');
    if (native !== null) {
      spec.koffi = native;
      extraReads.push(native);
    }
    preExec = [input.nodePath, LANDLOCK_EXEC, JSON.stringify(spec), '--'];
    // The step's own files, and bulkhead's package.json (it says "type": "module" for them).
    // (helper-env.js: the step keeps the fd the hand-off variable names open across its exec.)
    const here = dirname(LANDLOCK_EXEC);
    extraReads.push(stage.koffi, LANDLOCK_EXEC, join(here, 'landlock-spec.js'), join(here, 'exec-guard-stage.js'), EXEC_GUARD_WORKER, join(here, '..', 'wire', 'helper-env.js'), PACKAGE_JSON);
  }

  // ---- abstract Unix sockets: per network namespace, so only "full" shares the host's
  const privateNs = 'a private network namespace has its own abstract Unix socket names: the host\'s are unreachable and cannot be squatted';
  if (profile.network !== 'full') {
    rules.push({ rule: 'network.abstractUnix', layers: probe.bwrap !== null ? ['bubblewrap:netns'] : ['unshare:netns'], unenforced: false, detail: privateNs });
  } else if (netns.pasta !== undefined) {
    rules.push({ rule: 'network.abstractUnix', layers: ['bubblewrap:netns'], unenforced: false, detail: `${privateNs} (pasta relays only TCP, UDP and ICMP)` });
  } else if (landlockOn && scopeAvailable) {
    // Connect is covered, bind is not: a strict profile fails closed, a best-effort one runs with the gap reported.
    rules.push({ rule: 'network.abstractUnix', layers: ['landlock:scope'], unenforced: true, missing: netns.missing, detail: 'connecting or sending to an abstract Unix socket bound outside the sandbox fails with EPERM (Landlock scope); binding is not covered: the helper shares the host\'s abstract namespace, so a name it binds (squats) is one host processes dial' });
  } else {
    rules.push({ rule: 'network.abstractUnix', layers: [], unenforced: true, missing: `${netns.missing}, or at least Landlock ABI ${LANDLOCK_SCOPE_ABI} (Linux ≥ 6.12; this kernel has ABI ${kernel.landlockAbi})${koffi === null ? ' and koffi (npm)' : ''} for connect`, detail: 'network "full" shares the host\'s network namespace and its abstract Unix sockets (CVE-2020-15257 class)' });
  }
  if (landlockOn) {
    rules.push({ rule: 'fs.read', layers: ['landlock:fs'], unenforced: false });
    rules.push({ rule: 'fs.write', layers: ['landlock:fs'], unenforced: false });
    // Adds a layer but does not make "isolation" enforced on its own: without a pid namespace /proc still lists every process.
    if (scopeAvailable) rules.push({ rule: 'isolation', layers: ['landlock:scope-signal'], unenforced: false, layersOnly: true });
  }
  return { rules, bwrapArgs, seccompProgram, preExec, extraReads, pasta: netns.pasta, etcOverrides: netns.etcOverrides, fileBinds: mmPreload !== null ? [mmPreload] : [] };
}

/**
 * Network "full" in a namespace of the helper's own, connected by pasta: needs bubblewrap (it
 * creates the namespace and holds the helper until pasta is up), pasta, and koffi (the pipes).
 */
function planFullNetns(profile: SandboxProfile, probe: HostProbe, hasSeccomp: boolean): { bwrapArgs: string[]; rules: KernelRule[]; pasta: PastaFds | undefined; missing: string; etcOverrides: Map<string, string> } {
  const missing = probe.bwrap === null
    ? `bubblewrap and pasta (a network namespace of its own; ${probe.bwrapProblem ?? 'bubblewrap unavailable'})`
    : probe.pasta === null ? 'pasta (apt-get install -y passt), for a network namespace of its own' : 'koffi (npm), which makes the pipes bubblewrap and pasta meet on';
  const etcOverrides = new Map<string, string>();
  if (profile.network !== 'full' || probe.bwrap === null || probe.pasta === null || !loadFfi().ok) return { bwrapArgs: [], rules: [], pasta: undefined, missing, etcOverrides };
  // The host's resolver may be on its loopback, which is not the helper's (lib/sandbox/pasta-dns.ts).
  const resolv = resolvConf();
  if (resolv !== null) etcOverrides.set('/etc/resolv.conf', resolv.path);
  const dns = resolv?.plan == null ? '' : `; DNS: its /etc/resolv.conf is rewritten for the host's loopback resolver (${[...resolv.plan.changes, ...resolv.plan.unreachable.map((a) => `${a} left out: unreachable from the namespace`)].join('; ')})`;
  // Child fds right after the seccomp program's (or in its place): the broker passes them in this order.
  const info = SECCOMP_CHILD_FD + (hasSeccomp ? 1 : 0);
  const pasta = { info, block: info + 1 };
  return {
    bwrapArgs: ['--unshare-net', '--info-fd', String(info), '--block-fd', String(pasta.block)],
    rules: [{
      rule: 'network',
      layers: ['bubblewrap:netns', 'pasta'],
      unenforced: false,
      replacesDetail: true,
      detail: `full: TCP, UDP and ICMP to anywhere, relayed by pasta from a network namespace of the helper's own (its abstract Unix sockets, netlink and interfaces are its own); the host's loopback services answer at 127.0.0.1; nothing on the host is forwarded in, so ports it listens on stay private${dns}`,
    }],
    pasta,
    missing,
    etcOverrides,
  };
}

/**
 * Merges kernel rules into compile.ts's list: a rule of the same name gets
 * the extra layers (and becomes enforced when it was not); new rules are appended.
 */
export function mergeKernelRules(rules: KernelRule[], extra: readonly KernelRule[]): void {
  for (const rule of extra) {
    const existing = rules.find((r) => r.rule === rule.rule);
    if (existing === undefined) {
      const plain = { ...rule };
      delete plain.layersOnly;
      delete plain.replacesDetail;
      rules.push(plain);
      continue;
    }
    for (const layer of rule.layers) if (!existing.layers.includes(layer)) existing.layers.push(layer);
    if (!rule.layersOnly && !rule.unenforced && rule.layers.length > 0 && existing.unenforced) {
      existing.unenforced = false;
      delete existing.missing;
    }
    if (rule.detail !== undefined) existing.detail = existing.detail === undefined || rule.replacesDetail === true ? rule.detail : `${existing.detail}; ${rule.detail}`;
  }
}
