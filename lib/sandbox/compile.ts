/**
 * Compiles a validated profile plus a host probe into one command line of
 * nested wrappers and a per-rule enforcement report:
 *
 * ```
 * prlimit (rlimits) → [unshare -n, when no bubblewrap] → bwrap (mount/pid/ipc/uts/net ns)
 *   → [unshare -n: network "none"] → [setpriv: uid/gid, caps, no_new_privs] → node --experimental-permission … entry
 * ```
 *
 * Every wrapper execs the next one and keeps inherited fds, so the broker's
 * fd 3 reaches node. Rule → layer choices, and why, are in docs/sandbox.md.
 *
 * The parts with a file of their own: the resource limits (limit-rules.ts),
 * bubblewrap's arguments (bwrap-args.ts), the kernel layers (kernel-layers.ts)
 * and the broker's caches (broker-caches.ts).
 * @module
 */
import { bulkheadError } from '../errors.js';
import { bwrapArgs, helperEtcFiles } from './bwrap-args.js';
import type { CgroupLimits } from './cgroup.js';
import type { HostProbe } from './host-probe.js';
import { mergeKernelRules, planKernelLayers, type PastaFds } from './kernel-layers.js';
import { planLimits } from './limit-rules.js';
import { linkedBelowWrite, pruneNested, withRealPath } from './paths.js';
import { planBrokerCaches } from './broker-caches.js';
import type { SandboxProfile } from './profile.js';

/** Which layer enforces one rule (see {@link ../index.ts}'s `RuleEnforcement`). */
export interface CompiledRule {
  rule: string;
  layers: string[];
  unenforced: boolean;
  detail?: string;
  /** What to install or change to enforce it, when unenforced. */
  missing?: string;
}

/** What {@link compileProfile} needs besides the profile and the probe. */
export interface CompileInput {
  service: string;
  nodePath: string;
  nodeArgs: readonly string[];
  entry: string;
  /** Expanded absolute paths the helper may read (its code, bulkhead's runtime, the profile's fs.read). */
  reads: readonly string[];
  /** Expanded absolute paths the helper may write (the profile's fs.write; scratch is added separately). */
  writes: readonly string[];
  /** The per-launch scratch directory (cwd). */
  scratch: string;
  /** V8's compile cache directory, among `reads` (see SandboxLaunchInput.compileCache). */
  compileCache?: string;
  /** The broker's cache directories of code (lib/sandbox/broker-caches.ts): kept read-only even inside a write path. */
  brokerCaches?: readonly string[];
  /** The service is prewarmed: its node may get an mm holder (SandboxLaunchInput.mmHolder). */
  mmHolder?: boolean;
  /** Its `tmp/` (the helper's TMPDIR), recreated inside a capped scratch tmpfs. */
  scratchTmp: string;
  /**
   * Gives the `cgroup.procs` files of the helper's cgroup, once the compiler knows which
   * limits need one (called at most once); the first wrapper joins them before exec'ing the rest.
   */
  cgroupFor: (limits: CgroupLimits) => readonly string[];
}

/** The compiled command line and report. */
export interface CompiledLaunch {
  command: string;
  args: string[];
  rules: CompiledRule[];
  /** uid/gid the helper runs as, when the broker drops privileges. */
  runAs: { uid: number; gid: number } | undefined;
  /** The limits its cgroup must apply, or undefined when the launch needs no cgroup. */
  cgroupLimits: CgroupLimits | undefined;
  /** The seccomp BPF program bubblewrap reads from child fd 5 (`--seccomp 5`), when the launch has one. */
  seccompProgram: Buffer | undefined;
  /** The child fds of bubblewrap's info and block pipes, when pasta networks a `full` helper (lib/sandbox/pasta.ts). */
  pasta: PastaFds | undefined;
  /** The broker's cache directories a write path reaches, whether the helper must not be given them, and those bound read-only (lib/sandbox/broker-caches.ts). */
  exposedCaches: string[];
  withholdCaches: boolean;
  /** The cache directories bound read-only after every write bind: under bubblewrap all of them (as listed and resolved), else `exposedCaches`. */
  readOnlyCaches: string[];
}

/** Joins each cgroup.procs given (count first), then execs the rest: the helper is in its cgroup before any of its code runs. */
const CGROUP_JOIN_SCRIPT = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"';

/** Variables removed at exec time, whoever added them. */
export const SCRUBBED_VARIABLES = ['NODE_OPTIONS', 'LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT'] as const;

/** Node flags that would loosen the permission model if a manifest passed them. */
const LOOSENING_NODE_FLAG = /^--(allow-|permission|experimental-permission|no-experimental-permission)/;

/**
 * Compiles a profile for this host.
 * @throws BulkheadError `ERR_INVALID_MANIFEST` when nodeArgs try to loosen the permission model
 */
export function compileProfile(profile: SandboxProfile, probe: HostProbe, input: CompileInput): CompiledLaunch {
  for (const arg of input.nodeArgs) {
    if (LOOSENING_NODE_FLAG.test(arg)) {
      throw bulkheadError('ERR_INVALID_MANIFEST', `Service "${input.service}" runs in sandbox profile "${profile.name}", so its nodeArgs may not include ${arg}; grant access in the profile instead.`, { service: input.service, pointer: '/nodeArgs' });
    }
  }

  const rules: CompiledRule[] = [];
  const add = (rule: CompiledRule): void => {
    rules.push(rule);
  };
  const bwrap = probe.bwrap;
  const bwrapMissing = `bubblewrap (${probe.bwrapProblem ?? 'unavailable'}; apt-get install -y bubblewrap)`;
  const nodePerm = probe.node.flag;
  const canUnshareNet = probe.unshare !== null && (probe.isRoot || probe.userNamespaces);
  const dropUser = probe.isRoot && probe.setpriv !== null;

  // ---- network
  let outerUnshareNet = false; // no bubblewrap: unshare alone gives an empty netns
  let innerUnshareNet = false; // inside bubblewrap: a second netns whose loopback stays down
  if (profile.network === 'full') {
    add({ rule: 'network', layers: [], unenforced: false, detail: 'full: the host\'s network, nothing restricted' });
  } else if (profile.network === 'loopback') {
    if (bwrap !== null) add({ rule: 'network', layers: ['bubblewrap:netns'], unenforced: false, detail: 'loopback: a private network namespace with only its own loopback; 127.0.0.1 reaches the sandbox itself, never the host' });
    else add({ rule: 'network', layers: [], unenforced: true, missing: bwrapMissing, detail: 'loopback needs a network namespace with its loopback up, which bubblewrap sets up' });
  } else if (bwrap !== null) {
    // Not root, the inner unshare needs a user namespace, which the seccomp filter refuses; root without setpriv has
    // dropped CAP_SYS_ADMIN (--cap-drop ALL): bwrap's netns alone then.
    innerUnshareNet = canUnshareNet && (probe.isRoot ? probe.setpriv !== null : probe.kernel.seccompProblem !== null);
    add({
      rule: 'network',
      layers: innerUnshareNet ? ['bubblewrap:netns', 'unshare:netns'] : ['bubblewrap:netns'],
      unenforced: false,
      detail: innerUnshareNet ? 'none: a network namespace with no interface up; every connect fails with ENETUNREACH' : 'none: a private network namespace (its own loopback is up but reaches nothing outside)',
    });
  } else if (canUnshareNet) {
    outerUnshareNet = true;
    add({ rule: 'network', layers: ['unshare:netns'], unenforced: false, detail: 'none: a network namespace with no interface up; every connect fails with ENETUNREACH' });
  } else {
    add({ rule: 'network', layers: [], unenforced: true, missing: `${bwrapMissing}, or unshare with user namespaces`, detail: 'none needs a network namespace' });
  }

  // ---- filesystem
  const scratchLayer = 'scratch:cwd';
  const fsLayers = [...(bwrap !== null ? ['bubblewrap:mountns'] : []), ...(nodePerm !== null ? ['node:permission'] : [])];
  const fsDetail = bwrap !== null
    ? 'only the listed paths (plus the helper\'s code and Node\'s runtime) exist in its mount namespace; Node\'s permission model refuses the rest with ERR_ACCESS_DENIED'
    : 'only Node\'s permission model, which Node documents as a seat belt, not a boundary against hostile code';
  add({ rule: 'fs.read', layers: fsLayers, unenforced: bwrap === null, ...(bwrap === null ? { missing: bwrapMissing } : {}), detail: fsDetail });
  add({ rule: 'fs.write', layers: [...fsLayers, scratchLayer], unenforced: bwrap === null, ...(bwrap === null ? { missing: bwrapMissing } : {}), detail: `writes only to the private scratch dir${profile.fs.write.length > 0 ? ' and the listed paths' : ''}; ${fsDetail}` });

  // ---- processes, workers, addons: only Node can tell a worker from a thread
  const permRule = (rule: string, allowed: boolean, what: string): void => {
    if (allowed) add({ rule, layers: [], unenforced: false, detail: `allowed by the profile${bwrap !== null ? '; still inside the sandbox\'s namespaces' : ''}` });
    else if (nodePerm !== null) add({ rule, layers: ['node:permission'], unenforced: false, detail: `${what} refused with ERR_ACCESS_DENIED` });
    else add({ rule, layers: [], unenforced: true, missing: 'Node\'s permission model (Node ≥ 20)', detail: `${what} cannot be refused` });
  };
  permRule('processes.children', profile.processes.children, 'child_process');
  permRule('processes.workers', profile.processes.workers, 'worker_threads');
  if (profile.addons && nodePerm !== null && !probe.node.allowAddons) {
    add({ rule: 'addons', layers: ['node:permission'], unenforced: false, detail: 'allowed by the profile, but this node has no --allow-addons: addons stay disabled' });
  } else {
    permRule('addons', profile.addons, 'native addons (ERR_DLOPEN_DISABLED) and process.binding');
  }

  // ---- isolation from other processes
  if (bwrap !== null) add({ rule: 'isolation', layers: ['bubblewrap:pidns', 'bubblewrap:ipcns', 'bubblewrap:utsns'], unenforced: false, detail: 'sees and can signal only its own processes (/proc shows the sandbox only); private System V IPC and hostname' });
  else add({ rule: 'isolation', layers: dropUser ? ['setpriv:uid'] : [], unenforced: true, missing: bwrapMissing, detail: 'without a pid namespace the helper can list every process in /proc' });

  // ---- identity and privileges
  if (!probe.isRoot) {
    add({ rule: 'user', layers: [], unenforced: false, detail: `the broker is not root: the helper keeps uid ${probe.uid}, which has no privileges to drop` });
  } else if (dropUser) {
    add({ rule: 'user', layers: ['setpriv:uid'], unenforced: false, detail: `runs as uid ${profile.user.uid}, gid ${profile.user.gid}, no supplementary groups` });
  } else {
    add({ rule: 'user', layers: [], unenforced: true, missing: 'setpriv (util-linux)', detail: 'the broker is root and cannot drop the helper to another uid' });
  }
  const nnp = [...(bwrap !== null ? ['bubblewrap'] : []), ...(probe.setpriv !== null ? ['setpriv:no_new_privs'] : [])];
  add({ rule: 'noNewPrivs', layers: nnp, unenforced: nnp.length === 0, ...(nnp.length === 0 ? { missing: 'setpriv (util-linux) or bubblewrap' } : {}), detail: 'setuid/file capabilities cannot raise privileges' });
  if (!probe.isRoot) add({ rule: 'capabilities', layers: bwrap !== null ? ['bubblewrap'] : [], unenforced: false, detail: 'an unprivileged broker has none to pass on' });
  else if (probe.setpriv !== null) add({ rule: 'capabilities', layers: ['setpriv:caps'], unenforced: false, detail: 'inheritable, ambient and bounding sets cleared' });
  else if (bwrap !== null) add({ rule: 'capabilities', layers: ['bubblewrap:cap-drop'], unenforced: false, detail: 'all capabilities dropped' });
  else add({ rule: 'capabilities', layers: [], unenforced: true, missing: 'setpriv (util-linux) or bubblewrap', detail: 'a root broker\'s capabilities would pass to the helper' });

  // ---- limits
  const { prlimitArgs, cgroupLimits, heapMiB, scratchBytes } = planLimits(profile, probe, { add, bwrapMissing, dropUser });

  // ---- environment
  add({ rule: 'env', layers: probe.env !== null ? ['env:allowlist', 'env:unset'] : ['env:allowlist'], unenforced: false, detail: profile.env.length > 0 ? `passes ${profile.env.join(', ')} plus PATH, HOME, TMPDIR and bulkhead's own` : 'PATH, HOME, TMPDIR and bulkhead\'s own variables only' });

  // ---- node
  const writeList = pruneNested([input.scratch, ...input.writes].flatMap(withRealPath));
  // A read path inside a write path that a symlink there sends elsewhere is not bound, nor its target granted: the
  // helper could have made that link (round fourteen, audit15). The write path's own bind still shows what is there.
  const writeRoots = [input.scratch, ...input.writes];
  const readList = pruneNested(input.reads.flatMap((path) => {
    const forms = withRealPath(path); // each path resolved once: its forms are what is bound
    return linkedBelowWrite(path, forms.at(-1)!, writeRoots) ? [] : forms;
  }));
  // The broker's caches: a write path above them refused; bound read-only under bubblewrap; else a uid drop keeps them, or they are withheld.
  const { exposedCaches, withholdCaches, readOnlyCaches } = planBrokerCaches(input.brokerCaches ?? [], input.writes, writeList, { bwrap: bwrap !== null, dropUser, rules, profile: profile.name, service: input.service });

  const nodeFlags: string[] = [];
  if (nodePerm !== null) {
    nodeFlags.push(nodePerm);
    if (probe.node.disableWarning) nodeFlags.push('--disable-warning=ExperimentalWarning');
    for (const path of pruneNested([...readList, ...writeList])) nodeFlags.push(`--allow-fs-read=${path}`);
    for (const path of writeList) nodeFlags.push(`--allow-fs-write=${path}`);
    // Node reads its compile cache only with write permission on it. Granted only where the OS keeps it
    // read-only anyway (a read-only bind, or a uid other than the broker's, which owns it): the broker alone writes it.
    if (input.compileCache !== undefined && (bwrap !== null || dropUser)) nodeFlags.push(`--allow-fs-write=${input.compileCache}`);
    if (profile.processes.children) nodeFlags.push('--allow-child-process');
    if (profile.processes.workers) nodeFlags.push('--allow-worker');
    if (profile.addons && probe.node.allowAddons) nodeFlags.push('--allow-addons');
    // Node ≥ 25 refuses every socket without --allow-net, the inherited fd 3 included (measured on 26.12),
    // so it cannot serve as a network layer: the network namespaces above are the network rule's layers.
    if (probe.node.allowNet) nodeFlags.push('--allow-net');
  }
  if (heapMiB !== undefined) nodeFlags.push(`--max-old-space-size=${heapMiB}`);
  const nodeCommand = [input.nodePath, ...nodeFlags, ...input.nodeArgs, input.entry];

  // ---- kernel layers (seccomp, Landlock, pasta)
  const etc = helperEtcFiles(profile);
  const kernel = planKernelLayers(profile, probe, { nodePath: input.nodePath, reads: readList, writes: writeList, etc, runtimeRoots: probe.runtimeRoots.map((r) => r.path), mmHolder: input.mmHolder === true, otherBinds: readOnlyCaches });
  mergeKernelRules(rules, kernel.rules);

  // ---- wrappers, innermost first
  let chain = [...kernel.preExec, ...nodeCommand];
  let runAs: { uid: number; gid: number } | undefined;
  if (probe.setpriv !== null) {
    if (dropUser) {
      runAs = { ...profile.user };
      chain = [probe.setpriv, `--reuid=${profile.user.uid}`, `--regid=${profile.user.gid}`, '--clear-groups', '--no-new-privs', '--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', '--', ...chain];
    } else if (bwrap === null) {
      chain = [probe.setpriv, '--no-new-privs', '--', ...chain];
    }
  }
  if (innerUnshareNet) chain = [probe.unshare!, ...unshareNetArgs(probe), '--', ...chain];
  if (bwrap !== null) {
    const args = bwrapArgs({
      profile, probe, reads: readList, writes: writeList, nodePath: nodeCommand[0]!, scratch: input.scratch, scratchTmp: input.scratchTmp,
      capDrop: probe.isRoot && probe.setpriv === null, scratchBytes, kernelArgs: kernel.bwrapArgs, kernelReads: kernel.extraReads, etcOverrides: kernel.etcOverrides, fileBinds: kernel.fileBinds, readOnlyOver: readOnlyCaches,
    });
    chain = [bwrap, ...args, '--', ...chain];
  }
  if (outerUnshareNet) chain = [probe.unshare!, ...unshareNetArgs(probe), '--', ...chain];
  if (probe.prlimit !== null) chain = [probe.prlimit, ...prlimitArgs, '--', ...chain];
  const needsCgroup = Object.keys(cgroupLimits).length > 0;
  if (needsCgroup) {
    const procs = input.cgroupFor(cgroupLimits);
    chain = [probe.sh!, '-c', CGROUP_JOIN_SCRIPT, 'bulkhead-cgroup-join', String(procs.length), ...procs, ...chain];
  }
  // Spawn hooks in the broker's process (test runners, APM agents) may add NODE_OPTIONS or LD_PRELOAD
  // to the env after the plan is made; strip them again right before the first wrapper runs.
  if (probe.env !== null) chain = [probe.env, ...SCRUBBED_VARIABLES.flatMap((name) => ['-u', name]), ...chain];

  return { command: chain[0]!, args: chain.slice(1), rules, runAs, cgroupLimits: needsCgroup ? cgroupLimits : undefined, seccompProgram: kernel.seccompProgram, pasta: kernel.pasta, exposedCaches, withholdCaches, readOnlyCaches };
}

/** unshare's arguments for a network namespace of the helper's own (with a user namespace when the broker is not root). */
function unshareNetArgs(probe: HostProbe): string[] {
  // Not root: a user namespace of our own grants the right to create the netns; uid stays ours.
  return probe.isRoot ? ['--net'] : ['--user', '--map-current-user', '--net'];
}
