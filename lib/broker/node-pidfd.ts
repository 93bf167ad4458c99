/**
 * A pidfd on a sandboxed prewarmed helper's node, opened while it serves (issue 19, round eleven), so that at
 * its channel's close the broker can tell how node ended even after another process reaped it.
 *
 * Under bubblewrap, node runs below the sandbox's pid-namespace init, which reaps it within microseconds of its
 * death. From that reap until the init and the outer bubblewrap have relayed its end and exited (each must be
 * woken and get a CPU first), nothing in /proc shows that node ended, nor how: exit-at-close.ts then let the
 * calls in flight wait for the exit, and a caller's retry on the spare with them. A pidfd keeps naming the
 * process it was opened on after that process is reaped (a pid number may be reused then, a pidfd never), and
 * Linux 6.15's PIDFD_GET_INFO gives whoever holds one the exit status the reaper took (PIDFD_INFO_EXIT), from
 * the reap on. Before the reap, node's own /proc/<pid>/stat shows its end (exit-at-close.ts reads it); after,
 * the pidfd does: at the close there is no gap left.
 *
 * Which process is node: the chain under the spawned child, one child at each step (bubblewrap, its init), down
 * to the first process that runs the node binary, walked as exit-at-close.ts walks it at the close. The walk is
 * made once the helper said hello (a spare: once warm), after node's exec and off any relaunch's path, and made
 * again after the pidfd is opened: the pidfd's process was still unreaped after that second walk, so the pid the
 * walk found was that process (a pid is reused only after a reap). A host without koffi, pidfd_open or
 * PIDFD_GET_INFO (Linux < 6.13), or a chain that is not one child per step, holds nothing: the close reads /proc
 * alone, as before.
 * @module
 */
import { closeSync } from 'node:fs';
import { probeOwnPidfd, type Libc } from '../sandbox/ffi.js';
import { identity } from './certain-death.js';
import { childrenOf, type HeldNode } from './exit-at-close.js';
import type { HelperProcess } from './helper-process.js';

/** More wrappers than any launch plan stacks (as exit-at-close.ts). */
const MAX_CHAIN = 6;

let probed: Libc | null | undefined;
const held = new WeakMap<HelperProcess, HeldNode>();

/** libc when pidfd_open and PIDFD_GET_INFO work here (probed once, on this process), else null. */
function pidfdLibc(): Libc | null {
  // A running process: null (no exit information yet); undefined when the kernel has no PIDFD_GET_INFO.
  if (probed === undefined) probed = probeOwnPidfd((libc, self) => libc.pidfdExitStatus(self) === null);
  return probed;
}

/** The first process running `node` (device:inode) below `spawned`, one child per step; undefined when there is none or `spawned` is node. */
function nodeBelow(spawned: number, node: string): number | undefined {
  for (let at = spawned, depth = 0; depth < MAX_CHAIN; depth++) {
    if (identity(`/proc/${at}/exe`) === node) return at === spawned ? undefined : at;
    const children = childrenOf(at);
    if (children.length !== 1) return undefined;
    at = children[0]!;
  }
  return undefined;
}

/**
 * Opens a pidfd on `helper`'s node when it runs below a wrapper (a sandbox), and keeps it until the helper's
 * exit is reported. Call once the helper said hello.
 * @param nodeBinary - the node binary helpers run
 * @returns true when a pidfd is held
 */
export function holdNode(helper: HelperProcess, nodeBinary: string): boolean {
  const spawned = helper.pid;
  if (spawned === undefined || helper.isExited || held.has(helper)) return false;
  const node = identity(nodeBinary);
  const libc = node === undefined ? null : pidfdLibc();
  if (libc === null) return false;
  const pid = nodeBelow(spawned, node!);
  if (pid === undefined) return false;
  const pidfd = libc.pidfdOpen(pid);
  if (pidfd < 0) return false;
  // The walk again, then the pidfd's process still unreaped: the pid the walk found was that process.
  if (nodeBelow(spawned, node!) !== pid || libc.pidfdExitStatus(pidfd) !== null) {
    closeSync(pidfd);
    return false;
  }
  let open = true;
  // Never asked once closed: the fd number may name another file by then.
  held.set(helper, { pid, reapedStatus: () => (open ? libc.pidfdExitStatus(pidfd) : undefined) });
  void helper.exited.finally(() => {
    held.delete(helper);
    open = false;
    closeSync(pidfd);
  });
  return true;
}

/** `helper`'s held node (its pid in this namespace and its exit status once reaped), or undefined. */
export function heldNode(helper: HelperProcess): HeldNode | undefined {
  return held.get(helper);
}
