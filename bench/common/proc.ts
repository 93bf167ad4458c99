/**
 * What Linux tells us about a child process: CPU time and resident memory,
 * read from /proc so that no transport needs an extra method to report them.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { isMmHolder } from '../../lib/broker/sandboxed-mm-holder.js';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/**
 * User + system CPU of process `pid` (all its threads), in µs. Resolution is
 * one clock tick (10 ms at 100 Hz): measure over ≥ 1 s of work.
 */
export function cpuMicrosOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1e6) / clockTicks();
}

/**
 * CPU of process `pid` so far (all its threads), in ms, from the scheduler's nanosecond counters
 * (`/proc/PID/task/TID/schedstat`): fine enough for one process start. 0 when it is gone.
 */
export function schedCpuMsOf(pid: number): number {
  let ns = 0;
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    // gone (or a task went between the listing and its read): what was read so far
  }
  return ns / 1e6;
}

/** CPU of this process (all threads), in µs. */
export function ownCpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Resident set of one process in bytes (VmRSS), or 0 when it is gone. */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

/**
 * Private memory of one process in bytes (`Private_Clean` + `Private_Dirty` of /proc/<pid>/smaps_rollup): what it
 * costs the machine, unlike its RSS, which also counts file pages every process of the same node binary shares.
 * 0 when it is gone or cannot be read.
 */
export function privateOf(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
    return (kb('Private_Clean') + kb('Private_Dirty')) * 1024;
  } catch {
    return 0;
  }
}

/** `pid` and all its descendants (sandbox wrappers fork the real helper). */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    const p = out[i]!;
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').split(' ')) if (c !== '') out.push(Number(c));
      } catch {
        // the task exited meanwhile
      }
    }
  }
  return out;
}

/**
 * The node process of a helper: the deepest process in its tree whose command is a node binary (the pid
 * itself when unsandboxed). By argv[0], not by name: Node 24+ names its main thread "MainThread".
 */
export function nodePidOf(pid: number): number {
  const tree = processTree(pid);
  for (let i = tree.length - 1; i >= 0; i--) {
    try {
      const argv0 = readFileSync(`/proc/${tree[i]}/cmdline`, 'utf8').split('\0')[0] ?? '';
      // A sandboxed node's mm holder shares node's memory, so its cmdline is node's too: never the one to kill or read.
      if ((argv0 === 'node' || argv0.endsWith('/node')) && !isMmHolder(tree[i]!)) return tree[i]!;
    } catch {
      // gone
    }
  }
  return pid;
}
