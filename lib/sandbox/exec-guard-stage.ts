/**
 * The exec guard, stage side: loads the guard's seccomp filter (built by the
 * broker, {@link ./exec-guard.ts}) and execs the helper's node through it,
 * exactly once. Runs inside the pre-exec stage ({@link ./landlock-exec.ts}),
 * after bubblewrap, seccomp and setpriv, right before node.
 *
 * How one exec gets through a filter that refuses every other:
 * - the filter hands execveat to a listener (SECCOMP_RET_USER_NOTIF) and
 *   refuses execve; it is loaded with TSYNC, so every thread of the stage
 *   carries it (TSYNC_ESRCH lets TSYNC combine with NEW_LISTENER, Linux 5.7);
 * - a worker thread, started after the filter (and after Landlock, which binds
 *   only the threads created after it), calls execveat(node) and blocks in the
 *   notification ({@link ./exec-guard-worker.ts}); the main thread waits for it
 *   (poll, bounded) and answers CONTINUE. It decides on the count (the first
 *   and only notification), never on the arguments, so the documented race of
 *   CONTINUE (arguments read twice) does not apply;
 * - the exec replaces the whole stage and closes the listener (O_CLOEXEC, and
 *   the main thread closes it too). From then on the filter has no listener,
 *   and the kernel answers every execveat ENOSYS; execve is EPERM throughout.
 * @module
 */

import { Worker } from 'node:worker_threads';
import type { ExecGuardWorkerData } from './exec-guard-worker.js';

/** The part of koffi the stage uses. */
type Koffi = typeof import('koffi');

const SECCOMP_SET_MODE_FILTER = 1;
const SECCOMP_FILTER_FLAG_TSYNC = 1;
const SECCOMP_FILTER_FLAG_NEW_LISTENER = 8;
const SECCOMP_FILTER_FLAG_TSYNC_ESRCH = 16;
/** The flags the guard loads its filter with (the broker probes that the kernel accepts them). */
export const EXEC_GUARD_FLAGS = SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
const PR_SET_NO_NEW_PRIVS = 38;
/** _IOWR('!', 0, struct seccomp_notif) and _IOWR('!', 1, struct seccomp_notif_resp). */
const SECCOMP_IOCTL_NOTIF_RECV = 0xc0502100;
const SECCOMP_IOCTL_NOTIF_SEND = 0xc0182101;
const SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1;
const NOTIF_SIZE = 80; // { u64 id; u32 pid; u32 flags; struct seccomp_data { int nr; u32 arch; u64 ip; u64 args[6] } }
const RESP_SIZE = 24; // { u64 id; s64 val; s32 error; u32 flags }

/** seccomp(2)'s and execveat(2)'s numbers per architecture (ffi.ts probes seccomp with the same). */
export const SYSCALLS: Partial<Record<string, { seccomp: number; execveat: number }>> = { x64: { seccomp: 317, execveat: 322 }, arm64: { seccomp: 277, execveat: 281 } };

/** What {@link guardedExec} needs. */
export interface GuardedExecInput {
  koffi: Koffi;
  /** libc as the stage loaded it (`koffi.load('libc.so.6')`). */
  libc: ReturnType<Koffi['load']>;
  /** What the worker loads koffi from (the native binary, or the package). */
  koffiPath: string;
  /** The guard's BPF program (`struct sock_filter[]`). */
  bpf: Buffer;
  path: string;
  argv: string[];
  env: string[];
  /** Called when a step fails (the stage exits with it); never returns. */
  fail: (message: string) => never;
}

/** How long the exec thread may take to reach its exec (a worker start) before the stage gives up. */
const EXEC_THREAD_TIMEOUT_MS = 30_000;
const POLLIN = 1;

/**
 * Loads the guard and execs `path` through it. Returns once the exec is let
 * through (the process is replaced moments later); on failure calls `fail`.
 */
export function guardedExec(input: GuardedExecInput): void {
  const { koffi, libc, bpf, fail } = input;
  const nr = SYSCALLS[process.arch];
  if (nr === undefined) fail(`the exec guard does not know ${process.arch}`);
  const prctl = libc.func('int prctl(int option, unsigned long a, unsigned long b, unsigned long c, unsigned long d)');
  const seccomp = libc.func('long syscall(long nr, unsigned int op, unsigned int flags, void *args)');
  const ioctl = libc.func('int ioctl(int fd, unsigned long request, void *arg)');
  const poll = libc.func('int poll(void *fds, unsigned long nfds, int timeout)');
  const close = libc.func('int close(int fd)');

  // A filter needs no_new_privs (bubblewrap and setpriv set it already; without them the stage does).
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) !== 0) fail(`prctl(PR_SET_NO_NEW_PRIVS) failed (errno ${koffi.errno()})`);
  const fprog = Buffer.alloc(16); // struct sock_fprog { unsigned short len; struct sock_filter *filter }
  fprog.writeUInt16LE(bpf.length / 8, 0);
  fprog.writeBigUInt64LE(koffi.address(bpf), 8);
  const listener = Number(seccomp(nr!.seccomp, SECCOMP_SET_MODE_FILTER, EXEC_GUARD_FLAGS, fprog));
  if (listener < 0) fail(`seccomp(SET_MODE_FILTER, TSYNC | NEW_LISTENER) failed (errno ${koffi.errno()})`);

  const data: ExecGuardWorkerData = { koffi: input.koffiPath, execveat: nr!.execveat, path: input.path, argv: input.argv, env: input.env };
  const worker = new Worker(new URL('./exec-guard-worker.js', import.meta.url), { workerData: data });
  worker.once('message', ({ rc, errno }: { rc: number; errno: number }) => fail(`execveat(${input.path}) failed (rc ${rc}, errno ${errno})`));
  worker.once('error', (err) => fail(`the exec thread failed: ${err.message}`));
  // Wait (bounded) for the worker's exec to arrive as the listener's one notification.
  const pfd = Buffer.alloc(8); // struct pollfd { int fd; short events; short revents }
  pfd.writeInt32LE(listener, 0);
  pfd.writeInt16LE(POLLIN, 4);
  if (poll(pfd, 1, EXEC_THREAD_TIMEOUT_MS) !== 1) fail(`the exec thread did not reach its exec within ${EXEC_THREAD_TIMEOUT_MS} ms (errno ${koffi.errno()})`);
  const notif = Buffer.alloc(NOTIF_SIZE);
  if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, notif) !== 0) fail(`SECCOMP_IOCTL_NOTIF_RECV failed (errno ${koffi.errno()})`);
  // The one exec is the stage's own (nothing else here execs): let it through, then no more.
  if (notif.readInt32LE(16) !== nr!.execveat) fail(`unexpected notification for system call ${notif.readInt32LE(16)}`);
  const resp = Buffer.alloc(RESP_SIZE);
  resp.writeBigUInt64LE(notif.readBigUInt64LE(0), 0);
  resp.writeUInt32LE(SECCOMP_USER_NOTIF_FLAG_CONTINUE, 20);
  if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, resp) !== 0) fail(`SECCOMP_IOCTL_NOTIF_SEND failed (errno ${koffi.errno()})`);
  close(listener);
}
