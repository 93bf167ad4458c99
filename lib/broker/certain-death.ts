/**
 * Makes a helper's death certain once its channel closed without the broker
 * asking, without masking the exit it is already making. The channel closes
 * when the helper's node closed fd 3: because it is dying (a crash, an exit of
 * its own, a SIGKILL from outside), or because it hung up and keeps running
 * (a hostile or broken helper). The first must not be killed again: under
 * bubblewrap the wrappers are still relaying the exit (code 1 of an uncaught
 * throw would turn into SIGKILL). The second is killed: its node directly (in
 * bubblewrap's pid namespace it is outside the broker's process group) and the
 * helper's process group (the wrappers and what it started).
 *
 * The kernel tells which it is: /proc/<pid>/stat of the helper's node says
 * zombie (`Z`, `X`) or, while its threads tear down, the PF_EXITING flag.
 * @module
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { descendants } from './process-stats.js';
import type { HeldNode } from './exit-at-close.js';
import { isMmHolder } from './sandboxed-mm-holder.js';

/** The kernel's PF_EXITING task flag (include/linux/sched.h): the task is in do_exit(). */
export const PF_EXITING = 0x4;

/** What the broker found when the channel closed. */
export type DeathVerdict =
  /** The helper's node is exiting or gone: its own exit will be reported, nothing was signalled. */
  | 'dying'
  /** The helper's node was alive and not exiting: it and its process group got SIGKILL. */
  | 'killed';

/**
 * Finds the helper's node in the process tree under `pid` (the spawned child: node itself, or its
 * outermost sandbox wrapper) and kills it unless it is already dying.
 * @param nodeBinary - the node binary helpers run (compared by device and inode, so a bind mount or a symlink matches)
 * @param killGroup - sends SIGKILL to the helper's process group (and records why)
 * @param held - the helper's node held by a pidfd (node-pidfd.ts), if any: when it shows its end, no walk is made
 */
export function makeDeathCertain(pid: number, nodeBinary: string, killGroup: () => void, held?: HeldNode): DeathVerdict {
  // A sandboxed prewarmed helper's node held by a pidfd shows a crash with two reads: the walk below (~0.2 ms of
  // /proc reads, on the takeover's path) is left for a node that does not show its end (one that hung up).
  if (held !== undefined && heldNodeEnding(held)) return 'dying';
  const node = helperNode(pid, nodeBinary);
  if (node === undefined || exiting(node)) return 'dying';
  try {
    process.kill(node, 'SIGKILL');
  } catch {
    // Gone meanwhile: it was dying after all; the group kill below is harmless then.
  }
  killGroup();
  return 'killed';
}

/**
 * Sends SIGKILL to every process under `pid`, the deepest first. Under bubblewrap the helper's node runs
 * in a pid namespace and a session of its own, outside the broker's process group: a kill of the group
 * reaches only the outer wrapper, and node died only through the chain that follows (the namespace's init
 * gets `--die-with-parent`'s signal, and its death kills node). Killing node directly takes the chain off
 * the kill's path. Processes gone meanwhile are skipped.
 */
export function killDescendants(pid: number): void {
  for (const descendant of descendants(pid).reverse()) {
    try {
      process.kill(descendant, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}

/**
 * The first process (breadth-first from `pid`) that runs `nodeBinary`, or whose binary cannot be read (a
 * zombie, or a helper that made itself non-dumpable: it is judged by its state), or undefined when none is left.
 */
export function helperNode(pid: number, nodeBinary: string): number | undefined {
  const want = identity(nodeBinary);
  if (want === undefined) return undefined;
  const isNode = (candidate: number): boolean => {
    const have = identity(`/proc/${candidate}/exe`);
    return have === undefined || have === want;
  };
  // Unsandboxed, the child is node itself (setpriv execs it): no walk of the tree.
  if (isNode(pid)) return pid;
  // Under bubblewrap node's mm holder is node's sibling and runs node's binary: it is not node.
  return descendants(pid).find((candidate) => isNode(candidate) && !isMmHolder(candidate));
}

/** Device and inode of the file at `path` (following links), or undefined when it cannot be read. */
export function identity(path: string): string | undefined {
  try {
    const { dev, ino } = statSync(path);
    return `${dev}:${ino}`;
  } catch {
    return undefined; // a zombie's exe link is empty, a non-dumpable process's is not ours to read, a process gone has none
  }
}

/**
 * True when the held node (node-pidfd.ts) has ended: reaped (its pidfd says so), or its /proc/<pid>/stat, read while
 * the pidfd still showed it unreaped (so the stat was node's: a pid is reused only after a reap), says zombie or
 * PF_EXITING. False when that cannot be told (the pidfd closed or failing, the stat unreadable while unreaped).
 */
function heldNodeEnding(node: HeldNode): boolean {
  const stat = readStat(node.pid);
  const reaped = node.reapedStatus();
  if (reaped === undefined) return false;
  if (reaped !== null) return true;
  return stat !== undefined && statEnding(stat);
}

/** The text of /proc/<pid>/stat, or undefined when it cannot be read. */
function readStat(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
}

/** True when the process is a zombie, being reaped, gone, or in do_exit(). */
function exiting(pid: number): boolean {
  const stat = readStat(pid);
  return stat === undefined || statEnding(stat);
}

/** True when a /proc/<pid>/stat text shows a zombie, a task being reaped, or one in do_exit(). */
function statEnding(stat: string): boolean {
  // Fields after the command name (which may hold spaces and parentheses): state, ppid, pgrp, session, tty, tpgid, flags.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const flags = Number(fields[6]);
  return state === 'Z' || state === 'X' || (Number.isFinite(flags) && (flags & PF_EXITING) !== 0);
}

/** Sends `signal` to a helper's process group (to the child alone when it has none); SIGKILL also to every process under it first. */
export function signalHelperTree(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  if (signal === 'SIGKILL') killDescendants(child.pid);
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is gone or was never created; fall back to the child itself.
    child.kill(signal);
  }
}
