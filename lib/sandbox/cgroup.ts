/**
 * One cgroup per helper: `memory`, `pids` and `cpu` limits for the whole helper
 * (its node, the wrappers, every child and thread, its scratch tmpfs), read
 * back after exit to tell a memory-limit death from any other, and removed
 * afterwards; the cgroups of a dead broker are reaped. Where they can be made
 * is {@link ./cgroup-probe.ts}'s business.
 *
 * The helper joins its cgroup itself, before any of its code runs: the first
 * wrapper (`sh`, see compile.ts) writes its own pid to each `cgroup.procs`,
 * then execs the rest of the chain; nothing races a spawn.
 * @module
 */
import { mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { brokerAlive, brokerTag } from './broker-tag.js';
import { CONTROLLERS, readWords, type CgroupController, type CgroupSupport } from './cgroup-probe.js';

export { CGROUP_ENV, probeCgroups, type CgroupController, type CgroupSupport } from './cgroup-probe.js';

/** Period of the CPU bandwidth controller, in µs (the kernel's default). */
const CPU_PERIOD_US = 100_000;

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

let sequence = 0;

/** One helper's cgroup (a directory per v1 hierarchy, or one v2 directory). */
export class HelperCgroup {
  /** Directory per controller. */
  readonly dirs: Partial<Record<CgroupController, string>>;
  private removal: Promise<void> | undefined;
  private oomWatch: NodeJS.Timeout | undefined;

  private constructor(readonly version: 1 | 2, dirs: Partial<Record<CgroupController, string>>, readonly limits: CgroupLimits) {
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

  /**
   * True when `other` (planned for a launch) has this cgroup's layout: the same version and a directory under the same
   * parent for the same controllers, so this one (made ahead) can stand in for it with `other`'s limits.
   */
  sameLayout(other: HelperCgroup): boolean {
    if (other.version !== this.version) return false;
    const mine = Object.entries(this.dirs).map(([c, dir]) => `${c}:${dirname(dir)}`).sort();
    const theirs = Object.entries(other.dirs).map(([c, dir]) => `${c}:${dirname(dir)}`).sort();
    return mine.length === theirs.length && mine.every((entry, i) => entry === theirs[i]);
  }

  /** A copy of this cgroup (the same directories) that applies `limits`. */
  withLimits(limits: CgroupLimits): HelperCgroup {
    return new HelperCgroup(this.version, this.dirs, limits);
  }

  /** True when every directory exists and no process is in any of them. */
  isEmpty(): boolean {
    try {
      return this.paths.every((dir) => readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim() === '');
    } catch {
      return false;
    }
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
    this.makeDirs();
    this.applyLimits();
  }

  /**
   * Creates the directories only (a launch reserve makes them ahead: lib/sandbox/launch-reserve.ts); the
   * limits are written by {@link applyLimits} when a launch takes the cgroup. Throws with the directory that failed.
   */
  makeDirs(): void {
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
  }

  /** Writes the limits (again: whatever a reserved cgroup's files say, the launch's limits are what the helper gets). */
  applyLimits(): void {
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
    // One file per poll (memoryEvents() reads three): it runs every OOM_POLL_MS for the helper's life, its launch included.
    const oomControl = join(this.dirs.memory!, 'memory.oom_control');
    this.oomWatch = setInterval(() => {
      if (v1OomKills(oomControl) === 0) return;
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
    return { oomKills: v1OomKills(join(dir, 'memory.oom_control')), limitHits: numberIn(join(dir, 'memory.failcnt')) ?? 0, peakBytes: numberIn(join(dir, 'memory.max_usage_in_bytes')) };
  }

  /** Kills whatever still runs in the cgroup and removes its directories. Idempotent; rejects, naming the directory, when one stays. */
  remove(): Promise<void> {
    clearInterval(this.oomWatch);
    return (this.removal ??= removeCgroupDirs(this.paths, this.version));
  }
}

/** cgroup v1's count of OOM kills: the `oom_kill` line of `memory.oom_control` (`file`). */
function v1OomKills(file: string): number {
  return keyed(file).get('oom_kill') ?? 0;
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
