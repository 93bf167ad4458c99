/**
 * The kernel layers of a launch: the seccomp filter (handed to bubblewrap),
 * Landlock (a pre-exec step right before the helper's node) and what they
 * add to the enforcement report. {@link ./compile.ts} calls
 * {@link planKernelLayers} once and splices the result into its command line.
 *
 * Where Landlock runs, by measurement (docs/sandbox.md): it costs one extra
 * short-lived node process per launch, so it runs only where it enforces
 * something no cheaper layer does: abstract-socket scoping for `network:
 * "full"` (the helper shares the host's network namespace there), and the
 * filesystem rules on hosts without bubblewrap.
 * @module
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { existsSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadFfi } from './ffi.js';
import type { HostProbe } from './host-probe.js';
import type { LandlockSpec } from './landlock-spec.js';
import { compileFilter, seccompProblem } from './seccomp.js';
import { syscallGroups, type SyscallOptions } from './seccomp-policy.js';
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
}

/** Probes libseccomp and Landlock through the FFI (cheap: two library loads and one syscall). */
export function probeKernel(): KernelProbe {
  const ffi = loadFfi();
  if (!ffi.ok) return { seccompProblem: ffi.problem, libseccomp: null, landlockAbi: 0 };
  return { seccompProblem: seccompProblem(), libseccomp: ffi.seccomp?.version ?? null, landlockAbi: ffi.libc.landlockAbi() };
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
}

/** Paths the Landlock fs ruleset is built from. */
export interface KernelPlanInput {
  nodePath: string;
  reads: readonly string[];
  writes: readonly string[];
  etc: readonly string[];
  runtimeRoots: readonly string[];
}

const LANDLOCK_EXEC = join(dirname(fileURLToPath(import.meta.url)), 'landlock-exec.js');
const PACKAGE_JSON = fileURLToPath(new URL('../../../package.json', import.meta.url));

/**
 * The koffi binary the broker itself loaded (koffi's index.js picks the right one of its prebuilt
 * binaries, glibc or musl). The pre-exec step requires it directly: measured over bare `node -e 0`
 * (21 interleaved runs, loaded machine), koffi's index.js added 63 ms, the binary alone 31 ms.
 */
function koffiNative(): string | null {
  if (!loadFfi().ok) return null;
  const cache = createRequire(import.meta.url).cache;
  return Object.keys(cache).find((key) => key.endsWith('koffi.node')) ?? null;
}

function koffiDir(): string | null {
  let dir: string;
  try {
    // koffi 3 exports no ./package.json: resolve its main file and walk up to the package root.
    dir = dirname(createRequire(import.meta.url).resolve('koffi'));
  } catch {
    return null;
  }
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
  return dir;
}

function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** The ELF interpreter node needs EXECUTE on (the kernel opens it for exec). */
const LD_SO = ['/lib64/ld-linux-x86-64.so.2', '/lib/ld-linux-aarch64.so.1'];

/**
 * Plans seccomp and Landlock for one launch.
 * @param profile - the validated profile
 * @param probe - the host probe (its `kernel` and `bwrap` fields decide)
 */
export function planKernelLayers(profile: SandboxProfile, probe: HostProbe, input: KernelPlanInput): KernelPlan {
  const rules: KernelRule[] = [];
  const bwrapArgs: string[] = [];
  const kernel = probe.kernel;
  const options: SyscallOptions = { ioUring: profile.syscalls.ioUring, onViolation: profile.syscalls.onViolation };

  // ---- seccomp: bubblewrap loads the program right before it execs the first wrapper inside
  let seccompProgram: Buffer | undefined;
  const missingSeccomp = probe.bwrap === null
    ? `bubblewrap (it loads the seccomp filter; ${probe.bwrapProblem ?? 'unavailable'})`
    : kernel.seccompProblem !== null ? kernel.seccompProblem : null;
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
  // An unprivileged bubblewrap runs in its own user namespace: it can also forbid nested ones (user.max_user_namespaces = 1).
  if (probe.bwrap !== null && !probe.isRoot && probe.bwrapDisableUserns) {
    bwrapArgs.push('--disable-userns');
    const ns = rules.find((r) => r.rule === 'syscalls.namespaces');
    if (ns !== undefined) {
      ns.layers.push('bubblewrap:disable-userns');
      ns.unenforced = false;
    }
  }

  // ---- Landlock: only where it enforces something no cheaper layer does
  const scopeAvailable = kernel.landlockAbi >= LANDLOCK_SCOPE_ABI;
  const wantScope = profile.network === 'full' && scopeAvailable;
  const wantFs = probe.bwrap === null && kernel.landlockAbi >= 1;
  const koffi = koffiDir();
  let preExec: string[] = [];
  const extraReads: string[] = [];
  const landlockReady = koffi !== null && kernel.landlockAbi > 0;
  if ((wantScope || wantFs) && landlockReady) {
    const spec: LandlockSpec = { scope: { abstractUnix: scopeAvailable, signal: scopeAvailable } };
    const exec = profile.processes.children ? [...input.runtimeRoots, real(input.nodePath)] : [real(input.nodePath), ...LD_SO.map(real)];
    spec.fs = {
      abi: kernel.landlockAbi,
      // node reads OpenSSL's configuration at start and aborts on EACCES (ENOENT, inside bubblewrap, is fine).
      read: [...input.runtimeRoots, ...input.reads, ...input.etc, '/etc/ssl/openssl.cnf', '/proc', '/dev', input.nodePath, LANDLOCK_EXEC, koffi],
      write: [...input.writes, '/dev/null'],
      exec,
    };
    const native = koffiNative();
    if (native !== null) {
      spec.koffi = native;
      // koffi 3 ships its binary in a package of its own (@koromix/koffi-<platform>), outside koffi's dir.
      spec.fs.read.push(native);
      extraReads.push(native);
    }
    preExec = [input.nodePath, LANDLOCK_EXEC, JSON.stringify(spec), '--'];
    // The step's own files, and bulkhead's package.json (it says "type": "module" for them).
    // (helper-env.js: the step keeps the fd the hand-off variable names open across its exec.)
    extraReads.push(koffi, LANDLOCK_EXEC, join(dirname(LANDLOCK_EXEC), 'landlock-spec.js'), join(dirname(LANDLOCK_EXEC), '..', 'wire', 'helper-env.js'), PACKAGE_JSON);
  }
  const landlockOn = preExec.length > 0;

  // ---- abstract Unix sockets: per network namespace, so only "full" shares the host's
  if (profile.network !== 'full') {
    rules.push({ rule: 'network.abstractUnix', layers: probe.bwrap !== null ? ['bubblewrap:netns'] : ['unshare:netns'], unenforced: false, detail: 'a private network namespace has its own abstract Unix socket names: the host\'s are unreachable and cannot be squatted' });
  } else if (landlockOn && scopeAvailable) {
    rules.push({ rule: 'network.abstractUnix', layers: ['landlock:scope'], unenforced: false, detail: 'connecting or sending to an abstract Unix socket bound outside the sandbox fails with EPERM (Landlock scope); the helper still shares the host\'s abstract namespace, so a name it binds is visible to host processes' });
  } else {
    rules.push({ rule: 'network.abstractUnix', layers: [], unenforced: true, missing: `Landlock ABI ${LANDLOCK_SCOPE_ABI} (Linux ≥ 6.12; this kernel has ABI ${kernel.landlockAbi})${koffi === null ? ' and koffi (npm)' : ''}`, detail: 'network "full" shares the host\'s network namespace and its abstract Unix sockets (CVE-2020-15257 class)' });
  }
  if (landlockOn) {
    rules.push({ rule: 'fs.read', layers: ['landlock:fs'], unenforced: false });
    rules.push({ rule: 'fs.write', layers: ['landlock:fs'], unenforced: false });
    // Adds a layer but does not make "isolation" enforced on its own: without a pid namespace /proc still lists every process.
    if (scopeAvailable) rules.push({ rule: 'isolation', layers: ['landlock:scope-signal'], unenforced: false, layersOnly: true });
  }
  return { rules, bwrapArgs, seccompProgram, preExec, extraReads };
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
      rules.push(plain);
      continue;
    }
    for (const layer of rule.layers) if (!existing.layers.includes(layer)) existing.layers.push(layer);
    if (!rule.layersOnly && !rule.unenforced && rule.layers.length > 0 && existing.unenforced) {
      existing.unenforced = false;
      delete existing.missing;
    }
    if (rule.detail !== undefined) existing.detail = existing.detail === undefined ? rule.detail : `${existing.detail}; ${rule.detail}`;
  }
}
