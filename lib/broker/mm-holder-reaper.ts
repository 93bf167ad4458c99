/**
 * The broker's side of the "mm holder" (issue 19; native/mm-holder/mm_holder.c
 * says what it is): an unsandboxed prewarmed spare starts a process that shares
 * its node's memory, so that when node is SIGKILLed its fds (the broker's EOF)
 * close before the kernel tears that memory down. The holder is the broker's
 * child (CLONE_PARENT) and libuv only waits for the pids it spawned, so this
 * module reaps it on its SIGCHLD: after its helper's exit (the holder leaves
 * ~20 ms after node's death), when it dies alone, and at `broker.close()` (the
 * exit's cleanup waits for that reap, bounded, and reports a holder that would
 * not die).
 *
 * It must never reap anything else: libuv would lose that child's exit. A pid
 * the spare names is accepted only if the broker asked that spare for a holder,
 * it is no helper's pid, a pidfd opens on it (a thread-group leader), its
 * `/proc/<pid>/stat` names `bh-mm-holder` as comm and the broker as parent, it
 * shares the spare's address space (kcmp KCMP_VM: a spare cannot name another
 * process's pid), and, after those reads, waitid on the pidfd still finds it
 * unreaped (so the pid was not reused meanwhile). Every wait goes through that
 * pidfd (waitid P_PIDFD): it can only ever reap that one process.
 * @module
 */
import { closeSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { probeOwnPidfd, type Libc } from '../sandbox/ffi.js';
import { PACKAGE_ROOT } from './package-paths.js';

/** The addon scripts/build-mm-holder.mjs builds. */
const ADDON_PATH = join(PACKAGE_ROOT, 'dist', 'native', 'mm_holder.node');

const WNOHANG = 1;
const WEXITED = 4;
const WNOWAIT = 0x01000000;
const SIGKILL = 9;

/**
 * How long the holder's own exit is waited for after its helper's (it leaves ~20 ms after node's death; its SIGCHLD
 * reaps it) before it is sent SIGKILL.
 */
const GRACE_MS = 1600;
/**
 * After that SIGKILL, how long its reap is waited for before the wait is given up and reported (the holder is
 * still reaped on its SIGCHLD whenever it dies). Generous: a SIGKILLed process tearing node's memory down on a
 * loaded machine can take seconds; only a process stuck in the kernel takes this long.
 */
const KILLED_WAIT_MS = 10_000;

/** The waits {@link mmHolderReaped} allows (a test passes shorter ones; the broker passes none). */
export interface HolderReapBounds {
  /** @default 1600 */
  readonly graceMs?: number;
  /** @default 10000 */
  readonly killedWaitMs?: number;
}

/** An accepted holder. */
interface Claim {
  readonly pid: number;
  readonly pidfd: number;
  done: boolean;
  /** Called once it is reaped (or can never be), by whichever try found it so. */
  reaped: (() => void) | undefined;
  reaping: Promise<string | undefined> | undefined;
}

let reaper: Libc | null | undefined;
/** Sockets of spares the broker asked for a holder → the spare's pid. */
const expected = new WeakMap<Duplex, number>();
const claims = new WeakMap<Duplex, Claim>();
const live = new Set<Claim>();
/** pids of helpers and spares spawned by this process, while they run. */
const helperPids = new Set<number>();

/** libc with everything the reaper needs, probed once on this process itself; null when any is missing. */
function reaperLibc(): Libc | null {
  if (reaper === undefined) {
    // Not our child: ECHILD (10) proves P_PIDFD is known (EINVAL before Linux 5.4).
    reaper = probeOwnPidfd((libc, self) => libc.waitidPidfd(self, WEXITED | WNOHANG | WNOWAIT) === null && libc.errno() === 10 && libc.kcmpSameVm(process.pid, process.pid) === 0);
  }
  return reaper;
}

/**
 * The addon to give an unsandboxed spare (HELPER_ENV.mmHolder), or undefined when
 * it has none: the addon was not built, or this host cannot check and reap a holder.
 */
export function mmHolderAddon(): string | undefined {
  return existsSync(ADDON_PATH) && reaperLibc() !== null ? ADDON_PATH : undefined;
}

/** A helper or spare `pid` runs until `exited` settles: never accepted as a holder meanwhile. */
export function trackHelperPid(pid: number, exited: Promise<unknown>): void {
  helperPids.add(pid);
  void exited.finally(() => helperPids.delete(pid));
}

/** The broker asked the spare `spare` (its fd-3 socket `socket`) for an mm holder. */
export function expectMmHolder(socket: Duplex, spare: number): void {
  expected.set(socket, spare);
}

/**
 * A spare's warm frame named `value` as its holder.
 * @returns why it is refused, or undefined when it was accepted (it is reaped after the spare's exit)
 */
export function claimMmHolder(socket: Duplex, value: unknown): string | undefined {
  const spare = expected.get(socket);
  if (spare === undefined) return 'it named an mm holder, which the broker did not ask for';
  expected.delete(socket);
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 1) return 'its mm holder is not a pid';
  const pid = value;
  if (pid === spare || helperPids.has(pid)) return `pid ${pid}, named as its mm holder, is a helper's`;
  for (const claim of live) if (claim.pid === pid) return `pid ${pid}, named as its mm holder, is another spare's`;
  const libc = reaperLibc();
  if (libc === null) return 'this broker cannot check an mm holder';
  const pidfd = libc.pidfdOpen(pid);
  if (pidfd < 0) return `pid ${pid}, named as its mm holder, is no process`;
  const refused = checkHolder(libc, pid, pidfd, spare);
  if (refused !== undefined) {
    closeSync(pidfd);
    return refused;
  }
  const claim: Claim = { pid, pidfd, done: false, reaped: undefined, reaping: undefined };
  claims.set(socket, claim);
  live.add(claim);
  if (live.size === 1) process.on('SIGCHLD', reapExited);
  return undefined;
}

/** Why `pid` (pinned by `pidfd`) is not `spare`'s holder, or undefined when it is. */
function checkHolder(libc: Libc, pid: number, pidfd: number, spare: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return `pid ${pid}, named as its mm holder, is no process`;
  }
  const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  if (comm !== 'bh-mm-holder' || ppid !== process.pid) return `pid ${pid}, named as its mm holder, is not one (comm "${comm}", parent ${ppid})`;
  if (libc.kcmpSameVm(pid, spare) !== 0) return `pid ${pid}, named as its mm holder, does not share the spare's memory`;
  // Still our unreaped child after the reads above: they read this very process, not a reused pid.
  if (libc.waitidPidfd(pidfd, WEXITED | WNOHANG | WNOWAIT) === null) return `pid ${pid}, named as its mm holder, is not the broker's child`;
  return undefined;
}

/** One try: true once `claim` is reaped or can never be (then its pidfd is closed). */
function tryReap(libc: Libc, claim: Claim): boolean {
  if (claim.done) return true;
  const result = libc.waitidPidfd(claim.pidfd, WEXITED | WNOHANG);
  if (result !== null && result.pid === 0) return false; // still running
  // Reaped now, or no longer ours to reap (ECHILD): either way nothing is left to wait for.
  forget(claim);
  return true;
}

/** Done with `claim`: its pidfd closed, no longer tried. */
function forget(claim: Claim): void {
  claim.done = true;
  live.delete(claim);
  closeSync(claim.pidfd);
  if (live.size === 0) process.off('SIGCHLD', reapExited);
  claim.reaped?.();
}

/** SIGCHLD: reaps every accepted holder that has exited (one that died alone, while its helper serves). */
function reapExited(): void {
  const libc = reaperLibc();
  if (libc !== null) for (const claim of [...live]) tryReap(libc, claim);
}

/**
 * The helper on `socket` exited: reaps its holder, if it had one. Its SIGCHLD reaps it (its own exit, ~20 ms after
 * node's death); after `graceMs` it is sent SIGKILL (through the pidfd), and its reap is waited for `killedWaitMs`
 * more. A holder still there then is reported, not hidden: the promise resolves with why, and the holder stays
 * claimed, reaped on its SIGCHLD whenever it dies (libuv never will).
 * @returns resolves once it is reaped (at once when there was none) with undefined, or with why the wait was given
 *   up; never rejects
 */
export function mmHolderReaped(socket: Duplex, bounds: HolderReapBounds = {}): Promise<string | undefined> {
  const claim = claims.get(socket);
  const libc = reaperLibc();
  // None, or reaped already (it died alone, or before its helper's exit was reported: its SIGCHLD came first).
  if (claim === undefined || libc === null || claim.done) return Promise.resolve(undefined);
  const { graceMs = GRACE_MS, killedWaitMs = KILLED_WAIT_MS } = bounds;
  claim.reaping ??= new Promise<string | undefined>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    claim.reaped = () => {
      clearTimeout(timer);
      resolve(undefined);
    };
    if (tryReap(libc, claim)) return;
    // From here its SIGCHLD (reapExited, listening since the claim) reaps it and resolves this; the timers only bound it.
    timer = setTimeout(() => {
      if (tryReap(libc, claim)) return;
      libc.pidfdSendSignal(claim.pidfd, SIGKILL);
      timer = setTimeout(() => {
        if (tryReap(libc, claim)) return;
        claim.reaped = undefined;
        resolve(`its mm holder (pid ${claim.pid}) did not die within ${killedWaitMs} ms of SIGKILL; it is reaped when it does`);
      }, killedWaitMs);
    }, graceMs);
  });
  return claim.reaping;
}
