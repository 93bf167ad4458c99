/**
 * How a helper ended, read from the kernel when its channel closes, before its exit is reported. After a
 * prewarmed spare took over (spare-takeover.ts), the old helper's calls in flight need not wait for the
 * exit: a call made right after a crash reaches the dying helper before the broker sees its channel close,
 * and its caller retries on the spare as soon as it is rejected.
 *
 * When a process dies, the kernel sets its exit status (`exit_code`, field 52 of /proc/<pid>/stat, in
 * waitpid form) in do_exit() before it closes the process's files; the channel (fd 3) closes when the
 * last thread has closed them. So at the close node's status is already final, and the task shows `Z` or
 * the PF_EXITING flag. It is taken only then, and only when non-zero: 0 is also what the kernel shows a
 * reader without ptrace read access (a helper under another uid when the broker is not root) and before
 * do_exit() set it (a helper that closed fd 3 itself and exits afterwards). Wherever nothing shows a final
 * status (still running, reaped already, 0, a stop), the calls wait for the exit as before: no status is
 * ever guessed.
 *
 * Unsandboxed (and under wrappers that exec one another) node is the spawned child: the broker reaps it, so
 * at the close it is still there and its status is the child's. Under bubblewrap, node runs below
 * bubblewrap's pid-namespace init, which reaps it at once and exits with its end relayed (its code, or
 * 128 + N for a death by signal N: `propagate_exit_status` in bubblewrap.c), as the outer bubblewrap then
 * does. The chain is read from the top, and a status read below the spawned child is mapped the same way,
 * then read as the exit event's is (`innerExit`, exit-report.ts): a call failed here carries the code and signal the
 * exit gives. When the broker reads the close after the init reaped node and before it relayed the end,
 * nothing shows it yet: a few turns of the event loop later the chain is read again, then the exit tells.
 * Unless the broker holds a pidfd on node (node-pidfd.ts, a sandboxed prewarmed helper): then node's own status
 * is read, from its /proc/<pid>/stat until it is reaped and from the pidfd after, and the gap is gone.
 * @module
 */
import { readFileSync } from 'node:fs';
import type { BulkheadError } from '../errors.js';
import { effectiveSignal } from '../sandbox/exit-reason.js';
import { identity, PF_EXITING } from './certain-death.js';
import type { HelperProcess } from './helper-process.js';
import { isMmHolder } from './sandboxed-mm-holder.js';

/** An end as the spawned child reports it (before a wrapper's 128 + N is read as a signal). */
export interface ChildEnd {
  /** Exit code, or null for a death by signal. */
  code: number | null;
  /** Signal name, or null. */
  signal: NodeJS.Signals | null;
}

/**
 * The exit status (waitpid form) in the text of a /proc/<pid>/stat, when the kernel shows it final: the
 * task is a zombie (`Z`, `X`) or in do_exit() (PF_EXITING, and not stopped), and the status is non-zero
 * and not a stop's. Else undefined.
 */
export function finalExitStatus(stat: string): number | undefined {
  // Fields after the command name (which may hold spaces and parentheses): fields[0] is field 3 (state),
  // fields[6] field 9 (flags), fields[49] field 52 (exit_code, Linux ≥ 3.5).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).trimEnd().split(' ');
  const state = fields[0];
  const flags = Number(fields[6]);
  const status = Number(fields[49]);
  const ended = state === 'Z' || state === 'X' || (state !== 't' && state !== 'T' && Number.isInteger(flags) && (flags & PF_EXITING) !== 0);
  if (!ended || !Number.isInteger(status) || status <= 0 || status > 0xffff) return undefined;
  // 0x7f in the low bits is a stopped task's status (WIFSTOPPED), never an end.
  return (status & 0x7f) === 0x7f ? undefined : status;
}

/**
 * The end a waitpid-form `status` gives the spawned child. `relayed`: node ran under bubblewrap, which
 * exits with node's code, or 128 + N after node's death by signal N. Undefined for a signal number this
 * node does not name (the exit will tell).
 */
export function childEndOf(status: number, relayed: boolean): ChildEnd | undefined {
  const signalNumber = status & 0x7f;
  if (signalNumber === 0) return { code: (status >> 8) & 0xff, signal: null };
  if (relayed) return { code: 128 + signalNumber, signal: null };
  const signal = effectiveSignal(128 + signalNumber, null);
  return signal === null ? undefined : { code: null, signal };
}

/** A sandboxed helper's node held by a pidfd (node-pidfd.ts). */
export interface HeldNode {
  /** node's pid in the broker's pid namespace. */
  readonly pid: number;
  /**
   * Its exit status (waitpid form) once it was reaped, by anyone; null while it is not; undefined when that cannot be
   * told (an error, the pidfd closed).
   */
  reapedStatus(): number | null | undefined;
}

/** More wrappers than any launch plan stacks: the walk down the chain stops there. */
const MAX_CHAIN = 6;
/** How many more turns of the event loop a chain whose node is gone and whose wrappers have not ended yet is read again. */
const MAX_REREADS = 3;

/** The chain ends in a wrapper with no child left: node is gone (its end relayed soon), but nothing shows it yet. */
export const RELAYING = 'relaying';

/**
 * How the helper spawned as `pid` ended, when its process chain shows a final exit status now; else
 * undefined. The chain is read from the top: the spawned child (its own status is exactly what its exit
 * will report), then, under bubblewrap, each process with a single child below it down to node (bubblewrap's
 * pid-namespace init, then node). bubblewrap reaps node within microseconds of its death, so at the close
 * node is often gone and its init is exiting with node's end already relayed (its code, or 128 + N). The
 * walk never goes below node (a helper's own children's ends are not its end), nor through a process with
 * several children (an orphan of the helper could be mistaken for it).
 * @param nodeBinary - the node binary helpers run (compared by device and inode)
 * @param node - node under the wrappers, held by a pidfd: its own end is read first (then no {@link RELAYING})
 * @returns the end; {@link RELAYING} when a wrapper below the spawned child has no child left and has not
 *   ended yet (node was reaped; its relay is microseconds away); undefined when nothing shows an end
 */
export function endAtClose(pid: number, nodeBinary: string, node?: HeldNode): ChildEnd | typeof RELAYING | undefined {
  const binary = identity(nodeBinary);
  if (binary === undefined) return undefined;
  for (let at = pid, depth = 0; depth < MAX_CHAIN; depth++) {
    let status = finalExitStatus(readStat(at));
    if (status !== undefined && at === pid) return childEndOf(status, false);
    if (depth === 0 && node !== undefined) status = heldNodeStatus(node);
    if (status !== undefined) {
      // A wrapper's death kills what runs under it (bubblewrap's --die-with-parent, the pid namespace): when the
      // spawned child ended meanwhile, its own status is the truth, and the kernel set it before that kill.
      const top = finalExitStatus(readStat(pid));
      return top === undefined ? childEndOf(status, true) : childEndOf(top, false);
    }
    // Alive and not ending: node (or a process that cannot be told from it) is not walked past.
    const exe = identity(`/proc/${at}/exe`);
    if (exe === undefined || exe === binary) return undefined;
    const children = childrenOf(at);
    if (children.length === 0 && at !== pid) return RELAYING;
    if (children.length !== 1) return undefined;
    at = children[0]!;
  }
  return undefined;
}

/**
 * The held node's final status: the one the pidfd gives once node was reaped (0 included: that is its own exit
 * code, not a reader's lack of access), else its /proc/<pid>/stat's while it is exiting or a zombie. The stat is
 * read first and trusted only when the pidfd then still shows node unreaped: a pid is reused only after a reap,
 * so the stat read was node's.
 */
function heldNodeStatus(node: HeldNode): number | undefined {
  const exiting = finalExitStatus(readStat(node.pid));
  const reaped = node.reapedStatus();
  if (reaped === null) return exiting;
  return reaped === undefined || reaped < 0 || reaped > 0xffff ? undefined : reaped;
}

/** The text of /proc/<pid>/stat, or '' when the process is gone. */
function readStat(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return '';
  }
}

/**
 * The children of a single-threaded process (a sandbox wrapper), or none when they cannot be read. A sandboxed
 * node's mm holder (sandboxed-mm-holder.ts), node's sibling under bubblewrap's init, is not counted: it is
 * no end of the helper's (the namespace's end kills it), and it runs node's binary in node's memory.
 */
export function childrenOf(pid: number): number[] {
  let all: number[];
  try {
    all = readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').split(' ').filter((word) => word !== '').map(Number);
  } catch {
    return [];
  }
  return all.filter((child) => !isMmHolder(child));
}

/**
 * At the close of the channel of a helper a spare took over from: when the kernel already shows how it
 * ended, its calls in flight fail now with the error its exit would give them (`routed` fails those routed
 * to it: daemon clients, calling services); else they wait for its exit. The channel's close is reported
 * after the poll phase that read its EOF, and what the helper wrote on stderr before it died was ready in
 * that poll too: the error's stderr tail and `thrown` have it.
 * @param nodeBinary - the node binary helpers run
 * @param node - its node, when a pidfd holds it (node-pidfd.ts)
 * @param rereads - how many more turns a relaying chain is read again
 */
export function failCallsAtClose(helper: HelperProcess, nodeBinary: string, routed: (error: BulkheadError) => void, node?: HeldNode, rereads = MAX_REREADS): void {
  // Its exit was handled first (the close and the exit came in one poll): the exit tells, as before.
  if (helper.pid === undefined || helper.isExited) return;
  const end = endAtClose(helper.pid, nodeBinary, node);
  if (end === RELAYING) {
    // Read again on the next turns (a few /proc reads each), never longer than a few turns: else the exit tells.
    if (rereads > 0) setImmediate(() => failCallsAtClose(helper, nodeBinary, routed, node, rereads - 1));
    return;
  }
  const error = end === undefined ? undefined : helper.interruptAtClose(end);
  if (error !== undefined) routed(error);
}
