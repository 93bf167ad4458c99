/**
 * How the broker tells a sandboxed helper's mm holder from node (issue 19, round twelve; bench/README.md "Round
 * twelve: relaunch under a sandbox"). The holder (native/mm-preload/mm_preload.c) is a task node's dynamic linker
 * starts with `clone(CLONE_VM | CLONE_PARENT)` before node's main: it shares node's memory, so `/proc/<pid>/exe`
 * names node's binary and its RSS is node's, and under bubblewrap it is node's sibling below the sandbox's init.
 * The broker's walks down a helper's process chain (certain-death.ts, exit-at-close.ts, node-pidfd.ts) skip it,
 * and the status's process stats do not add its RSS (the same pages as node's).
 *
 * The test: a task named `bh-mm-holder` with one thread. A node can take that name (`process.title`) but never
 * has one thread (V8's own threads start before any of the helper's code), so a helper cannot pass its node off
 * as its holder: the walks would then find no node and fall back to what they did without one (the kill of the
 * helper's process group, the exit's report). A helper that can run other programs (`processes.children: true`)
 * could name a one-threaded child so: the walks only ever skip it (they never take it for node, and they do not go
 * below node), and the status would not add its RSS, a display figure (the memory limit is the cgroup's). Under
 * `processes.children: false` the only task a helper can make is a CLONE_VM one, which is what a holder is.
 * @module
 */
import { readFileSync } from 'node:fs';

/** The name the holder has from birth (mm_preload.c takes it for the clone: comm is copied then). */
export const MM_HOLDER_NAME = 'bh-mm-holder';

/** The Name: line of a holder's /proc/<pid>/status (the name has no character a pattern would read otherwise). */
const HOLDER_NAME_LINE = new RegExp(`^Name:\\t${MM_HOLDER_NAME}\\n`, 'm');

/** True when the text of a /proc/<pid>/status is a holder's: that name, one thread. */
export function isMmHolderStatus(status: string): boolean {
  return HOLDER_NAME_LINE.test(status) && /^Threads:\t1\n/m.test(status);
}

/** True for a sandboxed helper's mm holder (see the module comment); false when it is not or cannot be read. */
export function isMmHolder(pid: number, procRoot = '/proc'): boolean {
  try {
    return isMmHolderStatus(readFileSync(`${procRoot}/${pid}/status`, 'latin1'));
  } catch {
    return false;
  }
}
