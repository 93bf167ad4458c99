/**
 * Sandbox layer: turns a service's sandbox profile into a concrete launch
 * command (wrappers, node flags, env, cwd) for this host, and reports which
 * layer enforces each rule. The broker only calls {@link planLaunch}.
 *
 * CONTRACT with lib/broker (keep these signatures stable):
 * - the broker calls `planLaunch(input)` before every launch and then runs
 *   `spawn(plan.command, plan.args, { env: plan.env, cwd: plan.cwd, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] })`;
 *   fd 3 is the broker's socketpair and must reach the node process; `plan.inheritFds` (when present) go to
 *   child fds 5, 6, ... (fd 4 stays the outbound channel or 'ignore').
 * - after the process has exited (and before any relaunch) the broker awaits `plan.cleanup()`.
 * - `plan.explainExit(code, signal)` may turn an exit into a reason such as
 *   "memory limit (256 MiB)"; the broker shows it in status and in ERR_INTERRUPTED.
 * @module
 */
import { compileProfile } from './compile.js';
import { sandboxEnv, unsandboxedEnv } from './env.js';
import { explainExit } from './exit-reason.js';
import { probeHost } from './host-probe.js';
import { moduleReadSet } from './module-graph.js';
import { expandPath } from './paths.js';
import { parseProfile } from './profile.js';
import { HelperCgroup, probeCgroups, reapStaleCgroups, type CgroupLimits, type CgroupMemoryEvents } from './cgroup.js';
import { createScratch, reapStaleScratch, scratchLabel } from './scratch.js';
import type { LaunchReserve } from './launch-reserve.js';
import { programFd } from './seccomp.js';
import { openPastaPipes, type PastaLaunch } from './pasta-launch.js';
import { uidFor } from './uid-pool.js';
import { closeSync, existsSync, mkdirSync } from 'node:fs';
import { withoutCacheVariables, type BrokerCaches } from './broker-caches.js';
import { cachesTrusted, cachesTrustedNow, osKeepsCachesReadOnly, startCacheTrustProbe } from './cache-trust.js';
import { bulkheadError } from '../errors.js';
import { HELPER_ENV } from '../wire/helper-env.js';

export { moduleReadSet, type ModuleReadSet } from './module-graph.js';
export { PROFILE_SCHEMA, MIN_MEMORY_MIB, MIN_OPEN_FILES } from './profile-schema.js';
export { parseProfile, checkProfile, DEFAULT_SANDBOX_USER, type SandboxProfile, type NetworkRule, type ProfileProblem } from './profile.js';
export { probeHost, setHostProbeOverride, type HostProbe, type HostProbeOverride, type NodePermissionSupport } from './host-probe.js';
export { CGROUP_ENV, type CgroupSupport } from './cgroup.js';
export { BUILTIN_PLACEHOLDERS } from './paths.js';
export { UNSANDBOXED_ENV_ALLOWLIST, SANDBOX_PATH } from './env.js';
export { configureUidPool, DEFAULT_UID_RANGE, type UidRange } from './uid-pool.js';
export { SECCOMP_CHILD_FD, type KernelProbe } from './kernel-layers.js';
export type { BrokerCaches } from './broker-caches.js';
export { LaunchReserve } from './launch-reserve.js';

/** The variable through which a prewarmed spare learns the service entry it imports (lib/prewarm.ts). */
const PREWARM_ENTRY_ENV = HELPER_ENV.entry;

/** What the broker knows about the helper it is about to launch. */
export interface SandboxLaunchInput {
  /** Service name (for messages and scratch dir names). */
  service: string;
  /** Absolute path of the helper's entry module. */
  entry: string;
  /**
   * Absolute directory holding the helper's entry: the `${serviceDir}` placeholder and the
   * unsandboxed cwd. Not readable by itself: a sandboxed helper reads its module graph.
   */
  serviceDir: string;
  /** Absolute paths the helper must be able to read besides its code (its protocol file, bulkhead's helper runtime). */
  implicitReads: string[];

  /**
   * A directory with V8's compile cache (NODE_COMPILE_CACHE) that only the broker writes; it
   * must also be in `implicitReads`. Node's permission model gets a write grant on it (which
   * Node requires before it reads the cache) only where an OS layer keeps it read-only.
   */
  compileCache?: string;
  /**
   * The broker's caches of code (the code/compile cache directory, the precompiled validators'
   * directory) and the variables that name them. A profile's write path that reaches one does not
   * make it writable: bubblewrap binds it read-only again; with neither bubblewrap nor a uid drop
   * the helper is not given them (lib/sandbox/broker-caches.ts).
   */
  brokerCaches?: BrokerCaches;
  /**
   * The service keeps a prewarmed spare: its node may get an mm holder where the launch allows one (a sandboxed
   * node's memory held past its death, so a spare's takeover comes before the kernel's teardown of it;
   * lib/sandbox/kernel-layers.ts, docs/sandbox.md#the-mm-holder). Set by the broker only.
   */
  mmHolder?: boolean;

  /** Absolute path of the node binary to run. */
  nodePath: string;
  /** Extra node flags from the manifest (placed before the entry). */
  nodeArgs: string[];
  /**
   * bulkhead's own variables for the helper (always passed, never filtered). A prewarmed
   * spare's `BULKHEAD_ENTRY` (the service module it imports by a computed path) has its module
   * graph granted like `entry`'s.
   */
  env: Record<string, string>;
  /** The resolved profile, or undefined when the manifest names none. */
  profile: SandboxProfileRef | undefined;
  /**
   * The service's pieces made ahead (lib/sandbox/launch-reserve.ts): a sandboxed plan takes its scratch dir and
   * cgroup from it when they fit, and records what it used so the reserve can make the same for the next launch.
   * Unsandboxed launches ignore it.
   */
  reserve?: LaunchReserve;
  /**
   * Named absolute directories for `${name}` placeholders in the profile's paths
   * (e.g. `{ root: brokerRoot, data: '/srv/data' }` from the manifest's `sandboxPaths`).
   * `serviceDir` and `scratch` are always defined and cannot be overridden.
   * @default {}
   */
  paths?: Record<string, string>;
}

/** A profile as the broker resolved it: its name and the parsed JSON document. */
export interface SandboxProfileRef {
  name: string;
  /** Parsed JSON of sandbox-profiles/<name>.json; validated by the sandbox layer. */
  document: unknown;
}

/** Which layer enforces one rule of a profile. */
export interface RuleEnforcement {
  /** Rule path, e.g. "network", "fs.read", "limits.memoryMiB". */
  rule: string;
  /** Layer names that enforce it, e.g. ["bubblewrap:netns"]; empty when nothing does. */
  layers: string[];
  /** True when no layer enforces the rule on this host. */
  unenforced: boolean;
  /** Human explanation. */
  detail?: string;
  /** When unenforced: the layer to install or enable, e.g. "bubblewrap (…; apt-get install -y bubblewrap)". */
  missing?: string;
}

/** What a sandboxed helper was granted, by origin: absolute host paths, as listed before symlinks are resolved. */
export interface SandboxGrants {
  /** Its code: the module graph's files, the package.json files Node reads to load them, and the directories of the packages it imports. */
  code: string[];
  /** bulkhead's helper runtime and what the broker hands it (protocol files, precompiled validators). */
  runtime: string[];
  /** The profile's `fs.read`, expanded. */
  read: string[];
  /** The scratch dir and the profile's `fs.write`, expanded. */
  write: string[];
  /** Specifiers in its code that name no file (Node fails on them too, unless the code guards them). */
  unresolved: string[];
}

/** Per-launch enforcement report, shown by broker.status(). */
export interface EnforcementReport {
  /** Profile name, or "none". */
  profile: string;
  enforcement: 'strict' | 'best-effort' | 'none';
  rules: RuleEnforcement[];
  /** What the helper may read and write; absent when it runs unsandboxed. */
  grants?: SandboxGrants;
  /**
   * The helper's own cgroup, when its limits needed one: version and directories (one per v1
   * hierarchy). Once the helper exited, `memory` holds what the cgroup counted: OOM kills,
   * allocations that hit the limit, and the peak memory charged to the helper in bytes.
   */
  cgroup?: { version: 1 | 2; paths: string[]; memory?: CgroupMemoryEvents };
}

/** What the broker runs. */
export interface SandboxLaunchPlan {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  report: EnforcementReport;
  /**
   * Removes per-launch state (the scratch dir, the helper's cgroup after killing whatever still runs in it).
   * Idempotent. Rejects, naming what stayed behind, when something could not be removed: log it.
   */
  cleanup(): Promise<void>;
  /**
   * Names a sandbox limit that explains this exit, if any.
   * @param stderrTail - the helper's last stderr lines, when known: turns "probably" into a certain verdict for memory
   */
  explainExit(code: number | null, signal: NodeJS.Signals | null, stderrTail?: string | readonly string[]): string | undefined;
  /** uid/gid the helper runs as when a root broker dropped it to another user. */
  runAs?: { uid: number; gid: number };
  /**
   * Broker-side fds the child must inherit at fds 5, 6, ... (the seccomp program bubblewrap reads from fd 5).
   * The broker passes them in spawn's stdio; `cleanup()` closes them.
   */
  inheritFds?: number[];
  /**
   * True when the helper was not given the broker's caches of code: it can write them (no OS layer keeps them
   * read-only; lib/sandbox/broker-caches.ts), or no OS layer on this host keeps any helper from writing them, so
   * they may hold planted code (lib/sandbox/cache-trust.ts). The broker then starts no cache writer for this launch.
   */
  withholdCaches?: boolean;
}

/**
 * Plans the launch of one helper: validates its profile, probes the host
 * (once), creates the scratch dir and compiles the wrappers.
 * @throws BulkheadError `ERR_INVALID_PROFILE` (bad profile document, or a write path above the broker's caches of code),
 *   `ERR_SANDBOX_UNENFORCEABLE` (strict profile, a rule no layer on this host enforces),
 *   `ERR_INVALID_MANIFEST` (nodeArgs/env that would loosen the sandbox, or an undefined `${placeholder}`)
 */
export async function planLaunch(input: SandboxLaunchInput): Promise<SandboxLaunchPlan> {
  if (input.profile === undefined) {
    // On a host where helpers could have planted code in the caches, this helper loads none (lib/sandbox/cache-trust.ts).
    const caches = input.brokerCaches;
    const withhold = caches !== undefined && !(cachesTrustedNow(input.nodePath) ?? await cachesTrusted(input.nodePath));
    return {
      command: input.nodePath,
      args: [...input.nodeArgs, input.entry],
      env: unsandboxedEnv(withhold ? withoutCacheVariables(input.env, caches) : input.env),
      ...(withhold ? { withholdCaches: true } : {}),
      cwd: input.serviceDir,
      report: { profile: 'none', enforcement: 'none', rules: [] },
      cleanup: async () => {},
      explainExit: () => undefined,
    };
  }
  const parsed = parseProfile(input.profile.name, input.profile.document);
  const probe = await probeHost(input.nodePath);
  await reapStaleSandboxState().catch(() => undefined);
  // A profile that names no user gives each service a uid of its own (a root broker only).
  const namesUser = typeof input.profile.document === 'object' && input.profile.document !== null && 'user' in input.profile.document;
  const profile = probe.isRoot && !namesUser ? { ...parsed, user: uidFor(`${input.paths?.['root'] ?? ''}\0${input.service}`) } : parsed;
  const context = { service: input.service, profile: profile.name };
  // Expand before creating anything, so a bad placeholder leaves nothing behind.
  const vars: Record<string, string> = { ...input.paths, serviceDir: input.serviceDir, scratch: '/scratch' };
  for (const path of [...profile.fs.read, ...profile.fs.write]) expandPath(path, vars, context);

  // The uid the helper will run as (its scratch dir is made its own): only when setpriv can drop it.
  const runAs = probe.isRoot && probe.setpriv !== null ? profile.user : undefined;
  const scratch = input.reserve?.takeScratch(input.service, runAs) ?? createScratch(input.service, runAs);
  let cgroup: HelperCgroup | undefined;
  const taken = { reservedCgroup: false }; // set by cgroupFor, called inside compileProfile
  try {
    vars['scratch'] = scratch.path;
    // A spare's launch: the service module it imports, by a computed path (undefined otherwise).
    const spareOf = input.env[PREWARM_ENTRY_ENV] || undefined;
    const code = await moduleReadSet([input.entry, ...(spareOf !== undefined ? [spareOf] : [])], input.implicitReads);
    const codeReads = [...code.files, ...code.manifests, ...code.packages];
    const profileReads = profile.fs.read.map((p) => expandPath(p, vars, context));
    const reads = [...codeReads, ...input.implicitReads, ...profileReads];
    const writes = profile.fs.write.map((p) => expandPath(p, vars, context));
    const grants: SandboxGrants = { code: codeReads, runtime: [...input.implicitReads], read: profileReads, write: [scratch.path, ...writes], unresolved: code.unresolved };
    const cgroupFor = (limits: CgroupLimits): readonly string[] => {
      if (cgroup !== undefined) return cgroup.procsFiles; // asked again after a compile made ahead did not fit
      const planned = HelperCgroup.plan(probe.cgroup!, scratchLabel(input.service), limits);
      const reserved = input.reserve?.takeCgroup(planned);
      taken.reservedCgroup = reserved !== undefined;
      cgroup = reserved ?? planned;
      return cgroup.procsFiles;
    };
    // Bound read-only by path, so they must exist (a tmp cleaner may have removed one): the broker's, as it makes them.
    // Made before planning, so the plan sees their resolved forms.
    const cacheDirs = (input.brokerCaches?.dirs ?? []).filter(makeCacheDir);
    const recipe = { service: input.service, nodePath: input.nodePath, nodeArgs: input.nodeArgs, entry: input.entry, reads, writes, ...(input.compileCache !== undefined ? { compileCache: input.compileCache } : {}), brokerCaches: cacheDirs, mmHolder: input.mmHolder === true };
    const compileInput = { ...recipe, scratch: scratch.path, scratchTmp: scratch.tmp, cgroupFor };
    // The compile the reserve made ahead for these pieces, when it is this one (lib/sandbox/prepared-compile.ts).
    const compiled = input.reserve?.takeCompile(profile, probe, compileInput) ?? compileProfile(profile, probe, compileInput);
    const unenforced = compiled.rules.filter((r) => r.unenforced);
    if (profile.enforcement === 'strict' && unenforced.length > 0) {
      const first = unenforced[0]!;
      const others = unenforced.slice(1).map((r) => `${r.rule} (${r.missing ?? 'no layer'})`);
      throw bulkheadError(
        'ERR_SANDBOX_UNENFORCEABLE',
        `Service "${input.service}": sandbox profile "${profile.name}" is strict, but this host cannot enforce rule "${first.rule}": missing layer ${first.missing ?? 'unknown'}.${others.length > 0 ? ` Also unenforceable: ${others.join(', ')}.` : ''} Install the missing layer, relax the rule, or set "enforcement": "best-effort" in the profile.`,
        { service: input.service, profile: profile.name, rule: first.rule, missing: first.missing ?? null, rules: unenforced.map((r) => ({ rule: r.rule, missing: r.missing ?? null })) },
      );
    }
    const helperCgroup = cgroup;
    if (helperCgroup !== undefined) {
      try {
        // A reserved cgroup's directories exist: only its limits are written (again), from this plan.
        if (taken.reservedCgroup) helperCgroup.applyLimits();
        else helperCgroup.create();
      } catch (err) {
        const missing = `a writable cgroup (${(err as Error).message})`;
        throw bulkheadError('ERR_SANDBOX_UNENFORCEABLE', `Service "${input.service}": sandbox profile "${profile.name}" needs a cgroup for its limits, but creating it failed: ${(err as Error).message}. Check the cgroup hierarchy the broker uses (docs/sandbox.md#cgroups).`, { service: input.service, profile: profile.name, rule: 'limits', missing, rules: [{ rule: 'limits', missing }] });
      }
    }
    // This helper can write the caches, or some helper on this host could have (lib/sandbox/cache-trust.ts): it is given none.
    const withholdCaches = compiled.withholdCaches || (input.brokerCaches !== undefined && !osKeepsCachesReadOnly(probe));
    const own = withholdCaches && input.brokerCaches !== undefined ? withoutCacheVariables(input.env, input.brokerCaches) : input.env;
    const env = sandboxEnv({ profile: profile.name, service: input.service, allowlist: profile.env, own, home: scratch.path, tmp: scratch.tmp });
    const limits = profile.limits;
    let cleanup: Promise<void> | undefined;
    const report: EnforcementReport = { profile: profile.name, enforcement: profile.enforcement, rules: compiled.rules.map((r) => ({ ...r })), grants, ...(helperCgroup !== undefined ? { cgroup: { version: helperCgroup.version, paths: helperCgroup.paths } } : {}) };
    let seccompFd: number | undefined = compiled.seccompProgram === undefined ? undefined : programFd(compiled.seccompProgram);
    // Started now, it waits for bubblewrap to report its child: the helper's code runs once pasta is up.
    const pasta: PastaLaunch | undefined = compiled.pasta === undefined ? undefined : openPastaPipes(probe, compiled.pasta);
    const closeFds = (): Promise<void> => {
      if (seccompFd !== undefined) closeSync(seccompFd);
      seccompFd = undefined;
      return pasta?.stop() ?? Promise.resolve();
    };
    const inheritFds = [...(seccompFd !== undefined ? [seccompFd] : []), ...(pasta?.childFds ?? [])];
    // No compile made ahead for a prewarmed service: its next launch is a spare's, off every caller's path, and the
    // compile would run after a crashed helper's teardown, when the broker is answering the first call through the
    // spare it took over (issue 19's relaunch target).
    const prewarmed = input.mmHolder === true || spareOf !== undefined;
    input.reserve?.remember({ scratch: { service: input.service, owner: runAs }, ...(helperCgroup !== undefined ? { cgroup: { support: probe.cgroup!, label: scratchLabel(input.service), limits: helperCgroup.limits } } : {}), ...(prewarmed ? {} : { compile: { profile, probe, input: recipe } }) });
    return {
      command: compiled.command,
      args: compiled.args,
      env,
      cwd: scratch.path,
      report,
      cleanup: () => {
        const pastaGone = closeFds();
        return (cleanup ??= removeAll([scratch.remove(), pastaGone, ...(helperCgroup !== undefined ? [helperCgroup.remove()] : [])]));
      },
      ...(inheritFds.length > 0 ? { inheritFds } : {}),
      // Read before cleanup removes the cgroup: the broker explains an exit before it cleans up.
      explainExit: (code, signal, stderrTail) => {
        const memory = helperCgroup?.memoryEvents();
        if (memory !== undefined && report.cgroup !== undefined) report.cgroup.memory = memory;
        return pasta?.attachment.failure ?? explainExit(limits, code, signal, stderrTail, memory);
      },
      ...(compiled.runAs !== undefined ? { runAs: compiled.runAs } : {}),
      ...(withholdCaches ? { withholdCaches: true } : {}),
    };
  } catch (err) {
    await removeAll([scratch.remove(), ...(cgroup !== undefined ? [cgroup.remove()] : [])]).catch(() => undefined);
    throw err;
  }
}

/** Makes a cache directory of the broker's (0755) if missing; false when it neither exists nor can be made (nothing there to load). */
function makeCacheDir(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    return true;
  } catch {
    return existsSync(dir);
  }
}

/** Settles every removal, then rejects with all their failures in one message. */
async function removeAll(removals: Promise<void>[]): Promise<void> {
  const failures = (await Promise.allSettled(removals)).flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
  if (failures.length > 0) throw new Error(failures.join('; '));
}

let reaping: Promise<{ scratch: string[]; cgroups: string[] }> | undefined;

/**
 * Removes scratch dirs and helper cgroups left behind by brokers that are no
 * longer running (a broker killed with SIGKILL cannot clean up). Runs once per
 * process; later calls share the first result. The broker starts it when it is
 * created, and every launch awaits it.
 * @returns what was removed
 */
export function reapStaleSandboxState(): Promise<{ scratch: string[]; cgroups: string[] }> {
  reaping ??= (async () => {
    const [scratch, cgroups] = await Promise.all([reapStaleScratch(), reapStaleCgroups(probeCgroups(process.getuid?.() === 0))]);
    return { scratch, cgroups };
  })();
  return reaping;
}

/**
 * What the sandbox layer starts in the background when a broker is made: the reaping of dead brokers' leftovers
 * ({@link reapStaleSandboxState}) and the test that tells whether helpers of `nodePath` may be given the broker's
 * caches of code (lib/sandbox/cache-trust.ts), so that its first launches need not go without them. Never throws.
 */
export function startSandboxHost(nodePath: string): void {
  void reapStaleSandboxState().catch(() => undefined);
  // On the next turn: a process's first spawn costs it 1–35 ms of its thread, which the broker's constructor must not pay.
  setImmediate(() => startCacheTrustProbe(nodePath)).unref();
}
