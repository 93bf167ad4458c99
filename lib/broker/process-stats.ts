/**
 * Resource usage of a helper, read from Linux's /proc: resident memory and
 * CPU use of the helper's whole process tree (a sandboxed helper is a
 * bubblewrap process whose descendant runs node, so the pid the broker
 * knows is not the one doing the work).
 *
 * - RSS: the sum of `VmRSS` from `/proc/<pid>/status` over the tree.
 * - CPU %: user + system time (`/proc/<pid>/stat` fields 14 and 15) of the
 *   tree, per wall-clock time, in percent of one core (like top: a helper
 *   busy on two cores shows 200). Measured since the previous sample of the
 *   same helper taken at least {@link CPU_SAMPLE_MIN_MS} earlier, so
 *   `bulkhead top` shows current use; the first sample is the average over
 *   the helper's life (like ps).
 *
 * On a system without /proc (or for a pid that is gone) the readers return
 * undefined: status shows null rather than a made-up number.
 * @module
 */
import { readFileSync, readdirSync } from 'node:fs';
import { isMmHolderStatus } from './sandboxed-mm-holder.js';

/** Clock ticks per second of /proc's time fields (USER_HZ, fixed at 100 in Linux's user ABI). */
export const USER_HZ = 100;
/** A CPU sample younger than this is reused rather than replaced, so concurrent readers see the same figure. */
export const CPU_SAMPLE_MIN_MS = 500;
/** Processes counted in one tree at most (a fork bomb must not make status() slow). */
export const MAX_TREE_PROCESSES = 256;
/** Samples of helpers not looked at for this long are forgotten. */
const SAMPLE_TTL_MS = 10 * 60_000;

/** What one process's /proc files say. */
export interface ProcSnapshot {
  pid: number;
  ppid: number;
  /** utime + stime, in ms. */
  cpuMs: number;
  /** Start time after boot, in ms. */
  startMs: number;
  /** VmRSS in bytes (0 for a zombie, a kernel thread, or a sandboxed node's mm holder: its pages are node's). */
  rssBytes: number;
}

/** Usage of one helper's process tree. */
export interface ProcessTreeStats {
  /** Resident memory of every process in the tree, in bytes. */
  rssBytes: number;
  /** CPU use in percent of one core (see the module comment for the window), rounded to 0.1. */
  cpuPercent: number;
  /** Total CPU time of the tree, in ms. */
  cpuMs: number;
  /** Processes in the tree (the root included). */
  processes: number;
}

/**
 * Reads `/proc/<pid>/stat` and `/proc/<pid>/status`.
 * @returns undefined when the process does not exist (or /proc is not Linux's)
 */
export function readProc(pid: number, procRoot = '/proc'): ProcSnapshot | undefined {
  let stat: string;
  let status: string;
  try {
    stat = readFileSync(`${procRoot}/${pid}/stat`, 'latin1');
    status = readFileSync(`${procRoot}/${pid}/status`, 'latin1');
  } catch {
    return undefined; // gone, or not Linux
  }
  return parseProc(pid, stat, status);
}

/**
 * Parses the two files. The command name (field 2) is in parentheses and may
 * itself contain spaces and parentheses, so fields are counted from the last ")".
 */
export function parseProc(pid: number, stat: string, status: string): ProcSnapshot | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  // Fields from 3 (state) on; index 0 here is field 3.
  const fields = stat.slice(close + 2).split(' ');
  const field = (n: number): number => Number(fields[n - 3]);
  const ppid = field(4);
  const utime = field(14);
  const stime = field(15);
  const start = field(22);
  if (![ppid, utime, stime, start].every(Number.isFinite)) return undefined;
  // A sandboxed node's mm holder shares node's memory (sandboxed-mm-holder.ts): its VmRSS is node's, counted once.
  const rss = isMmHolderStatus(status) ? null : /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return {
    pid,
    ppid,
    cpuMs: ((utime + stime) * 1000) / USER_HZ,
    startMs: (start * 1000) / USER_HZ,
    rssBytes: rss === null ? 0 : Number(rss[1]) * 1024,
  };
}

/**
 * The pids of `pid`'s descendants (children first, breadth-first), from
 * `/proc/<pid>/task/<tid>/children`; falls back to scanning every
 * `/proc/<n>/stat` when the kernel lacks that file (CONFIG_PROC_CHILDREN).
 */
export function descendants(pid: number, procRoot = '/proc'): number[] {
  const found: number[] = [];
  const queue = [pid];
  let fallback: Map<number, number[]> | undefined;
  while (queue.length > 0 && found.length < MAX_TREE_PROCESSES) {
    const parent = queue.shift()!;
    let children: number[] | undefined = childrenOf(parent, procRoot);
    if (children === undefined) {
      fallback ??= parentMap(procRoot);
      children = fallback.get(parent) ?? [];
    }
    for (const child of children) {
      if (found.length >= MAX_TREE_PROCESSES) break;
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

function childrenOf(pid: number, procRoot: string): number[] | undefined {
  let tasks: string[];
  try {
    tasks = readdirSync(`${procRoot}/${pid}/task`);
  } catch {
    return []; // the process is gone: no children
  }
  const children: number[] = [];
  for (const tid of tasks) {
    let text: string;
    try {
      text = readFileSync(`${procRoot}/${pid}/task/${tid}/children`, 'latin1');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && tid === String(pid)) return undefined; // no CONFIG_PROC_CHILDREN
      continue; // the thread ended meanwhile
    }
    for (const word of text.split(' ')) {
      const child = Number(word);
      if (word !== '' && Number.isInteger(child)) children.push(child);
    }
  }
  return children;
}

function parentMap(procRoot: string): Map<number, number[]> {
  const map = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync(procRoot);
  } catch {
    return map;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`${procRoot}/${entry}/stat`, 'latin1');
    } catch {
      continue;
    }
    const close = stat.lastIndexOf(')');
    const ppid = Number(stat.slice(close + 2).split(' ')[1]);
    if (!Number.isInteger(ppid)) continue;
    const list = map.get(ppid);
    if (list === undefined) map.set(ppid, [Number(entry)]);
    else list.push(Number(entry));
  }
  return map;
}

/** Seconds since boot, from /proc/uptime. */
function uptimeMs(procRoot: string): number | undefined {
  try {
    const seconds = Number(readFileSync(`${procRoot}/uptime`, 'latin1').split(' ')[0]);
    return Number.isFinite(seconds) ? seconds * 1000 : undefined;
  } catch {
    return undefined;
  }
}

interface Sample {
  /** The root's start time: a different one means the pid was reused. */
  startMs: number;
  at: number;
  cpuMs: number;
  percent: number;
  seen: number;
}

/**
 * Samples helpers' process trees and remembers the previous sample of each,
 * for CPU % over the time between samples. One instance per broker is
 * enough; {@link processStats} uses a shared one.
 */
export class ProcessSampler {
  private readonly samples = new Map<number, Sample>();

  constructor(private readonly procRoot = '/proc', private readonly now: () => number = () => performance.now()) {}

  /**
   * Usage of the tree rooted at `pid`.
   * @returns undefined when the process is gone or /proc cannot be read
   */
  sample(pid: number): ProcessTreeStats | undefined {
    const root = readProc(pid, this.procRoot);
    if (root === undefined) {
      this.samples.delete(pid);
      return undefined;
    }
    let rssBytes = root.rssBytes;
    let cpuMs = root.cpuMs;
    let processes = 1;
    for (const child of descendants(pid, this.procRoot)) {
      const snap = readProc(child, this.procRoot);
      if (snap === undefined) continue;
      rssBytes += snap.rssBytes;
      cpuMs += snap.cpuMs;
      processes++;
    }
    const at = this.now();
    const previous = this.samples.get(pid);
    let percent: number;
    if (previous !== undefined && previous.startMs === root.startMs) {
      if (at - previous.at < CPU_SAMPLE_MIN_MS) {
        previous.seen = at;
        return { rssBytes, cpuPercent: previous.percent, cpuMs, processes };
      }
      percent = ((cpuMs - previous.cpuMs) / (at - previous.at)) * 100;
    } else {
      // First look: the average over the helper's life so far.
      const up = uptimeMs(this.procRoot);
      const lifeMs = up === undefined ? 0 : up - root.startMs;
      percent = lifeMs > 0 ? (cpuMs / lifeMs) * 100 : 0;
    }
    percent = Math.max(0, Math.round(percent * 10) / 10);
    this.samples.set(pid, { startMs: root.startMs, at, cpuMs, percent, seen: at });
    this.prune(at);
    return { rssBytes, cpuPercent: percent, cpuMs, processes };
  }

  private prune(now: number): void {
    for (const [pid, sample] of this.samples) {
      if (now - sample.seen > SAMPLE_TTL_MS) this.samples.delete(pid);
    }
  }
}

const shared = new ProcessSampler();

/** Usage of the process tree rooted at `pid` (shared sampler), or undefined when it cannot be read. */
export function processStats(pid: number): ProcessTreeStats | undefined {
  return shared.sample(pid);
}
