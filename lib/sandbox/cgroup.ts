/**
 * One cgroup per helper: `memory`, `pids` and `cpu` limits for the whole helper
 * (its node, the wrappers, every child and thread, its scratch tmpfs), read
 * back after exit to tell a memory-limit death from any other, and removed
 * afterwards. cgroup v2 where the broker has a delegated subtree
 * (`BULKHEAD_CGROUP`, or root with controllers enabled at the v2 root); v1's
 * memory/pids/cpu hierarchies where the broker is root on a v1 host.
 *
 * The helper joins its cgroup itself, before any of its code runs: the
 * outermost wrapper (`sh`) writes its own pid to each `cgroup.procs`, then
 * execs the rest of the chain ({@link cgroupJoinArgs}); nothing races a spawn.
 * @module
 */
import { accessSync, constants, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The controllers bulkhead uses. */
export type CgroupController = 'memory' | 'pids' | 'cpu';

const CONTROLLERS: readonly CgroupController[] = ['memory', 'pids', 'cpu'];

/** Where this host lets the broker make helper cgroups. */
export interface CgroupSupport {
  /** cgroup v1 (one hierarchy per controller) or the unified v2 hierarchy. */
  version: 1 | 2;
  /** Per available controller, the directory under which helper cgroups are made. */
  parents: Partial<Record<CgroupController, string>>;
  /** Why a controller is missing, when one is. */
  problem: string | null;
}

/** Names a delegated cgroup v2 directory for helper cgroups (see docs/sandbox.md#cgroups). */
export const CGROUP_ENV = 'BULKHEAD_CGROUP';

/** Period of the CPU bandwidth controller, in µs (the kernel's default). */
const CPU_PERIOD_US = 100_000;

interface Mount {
  root: string;
  mountPoint: string;
  fsType: string;
  options: string[];
}

function mounts(): Mount[] {
  const result: Mount[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const fields = left.split(' ');
    const [fsType, , superOptions] = right.split(' ');
    if (fsType !== 'cgroup' && fsType !== 'cgroup2') continue;
    result.push({ root: unescapeMount(fields[3] ?? '/'), mountPoint: unescapeMount(fields[4] ?? ''), fsType, options: (superOptions ?? '').split(',') });
  }
  return result;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** This process's cgroup path per v1 controller, and its v2 path under key "". */
function ownCgroups(): Map<string, string> {
  const own = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (match === null) continue;
    for (const name of match[1]!.split(',')) own.set(name, match[2]!);
  }
  return own;
}

function within(mount: Mount, path: string): string | null {
  if (mount.root === '/') return join(mount.mountPoint, path);
  if (path === mount.root || path.startsWith(`${mount.root}/`)) return join(mount.mountPoint, path.slice(mount.root.length));
  return null;
}

function writable(dir: string): boolean {
  try {
    accessSync(join(dir, 'cgroup.procs'), constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function readWords(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').trim().split(/\s+/).filter((w) => w !== '');
  } catch {
    return [];
  }
}

function probeV2(isRoot: boolean): CgroupSupport | null {
  const configured = process.env[CGROUP_ENV];
  let parent: string | undefined;
  if (configured !== undefined && configured !== '') {
    parent = configured;
  } else if (isRoot) {
    const mount = mounts().find((m) => m.fsType === 'cgroup2' && m.root === '/');
    if (mount === undefined) return null;
    const available = readWords(join(mount.mountPoint, 'cgroup.controllers'));
    if (!CONTROLLERS.some((c) => available.includes(c))) return null; // a hybrid host: controllers live in v1
    parent = join(mount.mountPoint, 'bulkhead');
  }
  if (parent === undefined) return null;
  try {
    mkdirSync(parent, { recursive: true });
    const available = readWords(join(parent, 'cgroup.controllers'));
    const wanted = CONTROLLERS.filter((c) => available.includes(c));
    const enabled = readWords(join(parent, 'cgroup.subtree_control'));
    const missing = wanted.filter((c) => !enabled.includes(c));
    if (missing.length > 0) writeFileSync(join(parent, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
    const now = readWords(join(parent, 'cgroup.subtree_control'));
    const parents: CgroupSupport['parents'] = {};
    for (const c of CONTROLLERS) if (now.includes(c)) parents[c] = parent;
    const absent = CONTROLLERS.filter((c) => parents[c] === undefined);
    return { version: 2, parents, problem: absent.length > 0 ? `cgroup v2 at ${parent} does not delegate ${absent.join(', ')}` : null };
  } catch (err) {
    return { version: 2, parents: {}, problem: `cgroup v2 at ${parent} is not usable: ${(err as Error).message}` };
  }
}

function probeV1(): CgroupSupport | null {
  const own = ownCgroups();
  const parents: CgroupSupport['parents'] = {};
  const problems: string[] = [];
  for (const c of CONTROLLERS) {
    const mount = mounts().find((m) => m.fsType === 'cgroup' && m.options.includes(c));
    if (mount === undefined) continue;
    const dir = within(mount, own.get(c) ?? '/');
    if (dir === null) continue;
    // Nested under the broker's own cgroup: helpers stay inside whatever limits the broker runs under.
    // The "bulkhead" dir is made with the first helper's and removed with the last, so nothing stays.
    if (writable(dir)) parents[c] = join(dir, 'bulkhead');
    else problems.push(`${dir} is not writable`);
  }
  if (Object.keys(parents).length === 0 && problems.length === 0) return null;
  const absent = CONTROLLERS.filter((c) => parents[c] === undefined);
  return { version: 1, parents, problem: absent.length > 0 ? `cgroup v1 lacks a usable ${absent.join(', ')} hierarchy${problems.length > 0 ? ` (${problems.join('; ')})` : ''}` : null };
}

/**
 * Finds where helper cgroups can be made on this host (v2 first, then v1).
 * @returns null when the host has no usable cgroup controller at all
 */
export function probeCgroups(isRoot: boolean): CgroupSupport | null {
  let support = probed.get(isRoot);
  if (support === undefined) {
    support = probeOnce(isRoot);
    probed.set(isRoot, support);
  }
  return support;
}

const probed = new Map<boolean, CgroupSupport | null>();

function probeOnce(isRoot: boolean): CgroupSupport | null {
  try {
    const v2 = probeV2(isRoot);
    if (v2 !== null && Object.keys(v2.parents).length > 0) return v2;
    const v1 = isRoot ? probeV1() : null;
    return v1 ?? v2;
  } catch {
    // no /proc (not Linux): no cgroups
    return null;
  }
}

/** The limits a helper cgroup applies. */
export interface CgroupLimits {
  memoryMiB?: number;
  processes?: number;
  cpuPercent?: number;
}

/** What the cgroup saw of the helper's memory, read after it exited. */
export interface CgroupMemoryEvents {
  /** Processes the kernel's OOM killer killed in the cgroup. */
  oomKills: number;
  /** Times an allocation hit the limit (v1 `memory.failcnt`, v2 `memory.events` max). */
  limitHits: number;
  /** Peak memory charged to the helper, in bytes (when the kernel reports it). */
  peakBytes: number | undefined;
}

/** A tag unique to this broker process and its start: a dead broker's cgroups and scratch dirs can be told from a live one's. */
export function brokerTag(pid: number = process.pid): string | null {
  try {
    // Field 22 of /proc/<pid>/stat (start time in clock ticks); the command may contain spaces, so count from ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return `${pid}-${fields[19]}`;
  } catch {
    return null;
  }
}

/** True when the broker the tag names is still running. */
export function brokerAlive(tag: string): boolean {
  const match = /^(\d+)-(\d+)$/.exec(tag);
  return match !== null && brokerTag(Number(match[1])) === tag;
}

let sequence = 0;

/** One helper's cgroup (a directory per v1 hierarchy, or one v2 directory). */
export class HelperCgroup {
  /** Directory per controller. */
  readonly dirs: Partial<Record<CgroupController, string>>;
  private removal: Promise<void> | undefined;
  private oomWatch: NodeJS.Timeout | undefined;

  private constructor(readonly version: 1 | 2, dirs: Partial<Record<CgroupController, string>>, private readonly limits: CgroupLimits) {
    this.dirs = dirs;
  }

  /**
   * Names (does not yet create) the cgroup of one launch.
   * @param label - the service name, already made path-safe
   */
  static plan(support: CgroupSupport, label: string, limits: CgroupLimits): HelperCgroup {
    const name = `${label}.${brokerTag() ?? process.pid}.${++sequence}`;
    // Only the controllers a limit needs: on v1 each extra hierarchy the helper joins costs an attach.
    const wanted: Record<CgroupController, boolean> = { memory: limits.memoryMiB !== undefined, pids: limits.processes !== undefined, cpu: limits.cpuPercent !== undefined };
    const dirs: Partial<Record<CgroupController, string>> = {};
    for (const c of CONTROLLERS) {
      const parent = support.parents[c];
      if (parent !== undefined && wanted[c]) dirs[c] = join(parent, name);
    }
    return new HelperCgroup(support.version, dirs, limits);
  }

  /** Distinct directories (v2 has one for all controllers). */
  get paths(): string[] {
    return [...new Set(Object.values(this.dirs))];
  }

  /** The `cgroup.procs` files the helper's first wrapper writes its pid to. */
  get procsFiles(): string[] {
    return this.paths.map((dir) => join(dir, 'cgroup.procs'));
  }

  /** Creates the directories and writes the limits. Throws with the file that failed. */
  create(): void {
    for (const dir of this.paths) {
      if (this.version === 2) {
        mkdirSync(dir);
        continue;
      }
      // Another broker may remove the shared parent between our two mkdirs: make it again once.
      for (let attempt = 0; ; attempt++) {
        mkdirSync(dirname(dir), { recursive: true });
        try {
          mkdirSync(dir);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 0) throw err;
        }
      }
    }
    const { memoryMiB, processes, cpuPercent } = this.limits;
    const memory = this.dirs.memory;
    if (memory !== undefined && memoryMiB !== undefined) {
      const bytes = String(memoryMiB * 1024 * 1024);
      if (this.version === 2) {
        writeFileSync(join(memory, 'memory.max'), bytes);
        tryWrite(join(memory, 'memory.swap.max'), '0');
      } else {
        writeFileSync(join(memory, 'memory.limit_in_bytes'), bytes);
        // Swap must not be a way around the limit (the file exists only with swap accounting).
        tryWrite(join(memory, 'memory.memsw.limit_in_bytes'), bytes);
      }
      this.watchOom();
    }
    const pids = this.dirs.pids;
    if (pids !== undefined && processes !== undefined) writeFileSync(join(pids, 'pids.max'), String(processes));
    const cpu = this.dirs.cpu;
    if (cpu !== undefined && cpuPercent !== undefined) {
      const quota = Math.max(1000, Math.round((CPU_PERIOD_US * cpuPercent) / 100));
      if (this.version === 2) {
        writeFileSync(join(cpu, 'cpu.max'), `${quota} ${CPU_PERIOD_US}`);
      } else {
        writeFileSync(join(cpu, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
        writeFileSync(join(cpu, 'cpu.cfs_quota_us'), String(quota));
      }
    }
  }

  /**
   * Makes a memory-limit death the whole helper's: once the kernel's OOM killer has killed any
   * process of the helper (a child, say), every other one is killed too, so the helper exits and
   * is reported as a memory-limit death instead of living on without its child. v2 does this in
   * the kernel (`memory.oom.group`); v1 has no such knob, so its OOM counter is polled.
   */
  private watchOom(): void {
    if (this.version === 2) {
      tryWrite(join(this.dirs.memory!, 'memory.oom.group'), '1');
      return;
    }
    this.oomWatch = setInterval(() => {
      if ((this.memoryEvents()?.oomKills ?? 0) === 0) return;
      clearInterval(this.oomWatch);
      killAll(this.paths, this.version);
    }, OOM_POLL_MS);
    this.oomWatch.unref();
  }

  /** Reads the memory controller's counters (call after exit, before {@link remove}). */
  memoryEvents(): CgroupMemoryEvents | undefined {
    const dir = this.dirs.memory;
    if (dir === undefined) return undefined;
    if (this.version === 2) {
      const events = keyed(join(dir, 'memory.events'));
      return { oomKills: events.get('oom_kill') ?? 0, limitHits: events.get('max') ?? 0, peakBytes: numberIn(join(dir, 'memory.peak')) };
    }
    return { oomKills: keyed(join(dir, 'memory.oom_control')).get('oom_kill') ?? 0, limitHits: numberIn(join(dir, 'memory.failcnt')) ?? 0, peakBytes: numberIn(join(dir, 'memory.max_usage_in_bytes')) };
  }

  /** Kills whatever still runs in the cgroup and removes its directories. Idempotent; rejects, naming the directory, when one stays. */
  remove(): Promise<void> {
    clearInterval(this.oomWatch);
    return (this.removal ??= removeCgroupDirs(this.paths, this.version));
  }
}

function tryWrite(file: string, value: string): void {
  try {
    writeFileSync(file, value);
  } catch {
    // optional knob absent on this kernel
  }
}

function keyed(file: string): Map<string, number> {
  const map = new Map<string, number>();
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const [key, value] = line.trim().split(/\s+/);
      if (key !== undefined && value !== undefined) map.set(key, Number(value));
    }
  } catch {
    // cgroup gone or file absent
  }
  return map;
}

function numberIn(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

function procsIn(dir: string): number[] {
  return readWords(join(dir, 'cgroup.procs')).map(Number).filter((n) => Number.isInteger(n) && n > 0);
}

/** Kills every process in the given cgroup directories. */
function killAll(dirs: readonly string[], version: 1 | 2): void {
  for (const dir of dirs) {
    if (version === 2) tryWrite(join(dir, 'cgroup.kill'), '1');
    for (const pid of procsIn(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/** How often a v1 helper cgroup's OOM counter is read while the helper runs. */
const OOM_POLL_MS = 100;

const REMOVE_ATTEMPTS = 100;
const REMOVE_RETRY_MS = 20;

async function removeCgroupDirs(paths: readonly string[], version: 1 | 2): Promise<void> {
  const failures: string[] = [];
  for (const dir of paths) {
    let lastError: unknown;
    for (let attempt = 0; attempt < REMOVE_ATTEMPTS; attempt++) {
      try {
        rmdirSync(dir);
        lastError = undefined;
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          lastError = undefined;
          break;
        }
        lastError = err;
        // EBUSY: something still runs in it (a child that outlived the helper). Kill it, then retry.
        killAll([dir], version);
        await new Promise((resolve) => setTimeout(resolve, REMOVE_RETRY_MS));
      }
    }
    if (lastError !== undefined) failures.push(`${dir}: ${(lastError as Error).message}`);
  }
  if (failures.length > 0) throw new Error(`could not remove helper cgroup ${failures.join('; ')}`);
  // v1: the shared "bulkhead" parent goes with its last helper (another broker's helper keeps it: EBUSY).
  if (version === 1) {
    for (const parent of new Set(paths.map((dir) => dirname(dir)))) {
      try {
        rmdirSync(parent);
      } catch {
        // still holds another helper's cgroup, or already gone
      }
    }
  }
}

/**
 * Removes helper cgroups left by brokers that are no longer running (killed
 * with SIGKILL, say): their names carry the broker's pid and start time.
 * @returns the directories removed
 */
export async function reapStaleCgroups(support: CgroupSupport | null): Promise<string[]> {
  if (support === null) return [];
  const reaped: string[] = [];
  for (const parent of new Set(Object.values(support.parents))) {
    let entries: string[];
    try {
      entries = readdirSync(parent, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      continue;
    }
    for (const name of entries) {
      const match = /\.(\d+-\d+)\.\d+$/.exec(name);
      if (match === null || brokerAlive(match[1]!)) continue;
      const dir = join(parent, name);
      try {
        await removeCgroupDirs([dir], support.version);
        reaped.push(dir);
      } catch {
        // still busy: the next broker start tries again
      }
    }
  }
  return reaped;
}
