/**
 * Passing connected sockets between processes: `socketpair(2)`, and
 * `sendmsg(2)` / `recvmsg(2)` with `SCM_RIGHTS`, reached through koffi (Node
 * has no binding for ancillary data). The daemon uses it to hand a client and
 * a helper the two ends of a channel of their own (docs/wire.md, "Hand-off");
 * a client uses it to receive its end.
 *
 * Loaded lazily, by the daemon and by daemon clients only: the embedded broker
 * and the helper runtime never load koffi (a helper receives its end through
 * Node's own IPC channel, see lib/broker/handoff-pipe.ts).
 *
 * Every descriptor made here is close-on-exec. The functions never block: a
 * socket that cannot take a message now answers `EAGAIN`, and
 * {@link FdPassing.waitReadable} waits on libuv's thread pool, not the loop.
 * @module
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { bulkheadError } from '../errors.js';

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const SOCK_NONBLOCK = 0o4000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_NOSIGNAL = 0x4000;
const MSG_DONTWAIT = 0x40;
const MSG_CMSG_CLOEXEC = 0x40000000;
const SHUT_RDWR = 2;
const POLLIN = 0x001;
/** errno values the callers act on. */
export const ERRNO = { EAGAIN: 11, EINTR: 4, EPIPE: 32 } as const;

/** `struct cmsghdr` (x86-64 / arm64 Linux): a size_t length, then level and type. */
const CMSG_HEADER_BYTES = 16;
/** CMSG_LEN(sizeof(int)) and CMSG_SPACE(sizeof(int)). */
const CMSG_ONE_FD_LEN = CMSG_HEADER_BYTES + 4;
const CMSG_ONE_FD_SPACE = CMSG_HEADER_BYTES + 8;
/** Room for the ancillary data of one received message: a peer sending more fds gets them closed (MSG_CTRUNC). */
const CONTROL_BYTES = 64;

/** What {@link FdPassing.receive} got. */
export interface Received {
  /** Bytes read (0 at the peer's end). */
  bytes: number;
  /** The descriptor that came with them, owned by the caller now. */
  fd: number | undefined;
  /** True when ancillary data was cut (more descriptors than one were sent); those are closed by the kernel. */
  truncated: boolean;
}

/** The socket calls of this module, once loaded. */
export interface FdPassing {
  /**
   * A connected pair of Unix stream sockets, both close-on-exec and
   * non-blocking. Non-blocking matters: libuv does not change the flags of a
   * descriptor Node receives over IPC, and a blocking one would stall the
   * helper's event loop on a client that stops reading.
   */
  socketPair(): [number, number];
  /**
   * Sends `data` (and `fd`, if given) in one `sendmsg`. Returns the bytes sent,
   * or `-errno` (`-EAGAIN` when the socket's buffer is full). Never raises SIGPIPE.
   */
  send(socketFd: number, data: Buffer, fd?: number): number;
  /** One non-blocking `recvmsg` into `into`; `-errno` as `bytes` on failure. */
  receive(socketFd: number, into: Buffer): Received;
  /** Resolves true once `fd` is readable (or closed), false after `timeoutMs`. Runs poll(2) on the thread pool. */
  waitReadable(fd: number, timeoutMs: number): Promise<boolean>;
  /** `shutdown(fd, SHUT_RDWR)`: both ends of the connection see its end at once, whoever else holds it. */
  shutdown(fd: number): void;
  /** close(2); errors (already closed) are ignored. */
  close(fd: number): void;
}

let loaded: FdPassing | { problem: string } | undefined;

/**
 * Loads the bindings once per process.
 * @returns the bindings, or `{ problem }` saying why fd passing is not available here
 */
export function loadFdPassing(): FdPassing | { problem: string } {
  if (loaded !== undefined) return loaded;
  try {
    loaded = bind();
  } catch (err) {
    loaded = { problem: `fd passing needs koffi (a dependency of bulkhead) and libc: ${(err as Error).message}` };
  }
  return loaded;
}

/**
 * The bindings, or a typed error.
 * @throws BulkheadError `ERR_LAUNCH_FAILED` (`data.reason: "no-fd-passing"`) when they cannot be loaded
 */
export function requireFdPassing(): FdPassing {
  const fd = loadFdPassing();
  if ('problem' in fd) throw bulkheadError('ERR_LAUNCH_FAILED', fd.problem, { reason: 'no-fd-passing' });
  return fd;
}

/** The descriptor under a connected net.Socket (libuv's), or undefined when it has none. */
export function socketDescriptor(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

type Native = (...args: unknown[]) => unknown;

function bind(): FdPassing {
  const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
  const libc = koffi.load('libc.so.6');
  // Type names are process-wide in koffi: distinct ones, so another module's declarations never clash.
  koffi.struct('bulkhead_iovec', { iov_base: 'void *', iov_len: 'size_t' });
  koffi.struct('bulkhead_msghdr', {
    msg_name: 'void *', msg_namelen: 'uint32_t', msg_iov: 'bulkhead_iovec *', msg_iovlen: 'size_t',
    msg_control: 'void *', msg_controllen: 'size_t', msg_flags: 'int',
  });
  const socketpair = libc.func('int socketpair(int domain, int type, int protocol, _Out_ int *sv)') as Native;
  const sendmsg = libc.func('intptr_t sendmsg(int fd, bulkhead_msghdr *msg, int flags)') as Native;
  const recvmsg = libc.func('intptr_t recvmsg(int fd, _Inout_ bulkhead_msghdr *msg, int flags)') as Native;
  const shutdown = libc.func('int shutdown(int fd, int how)') as Native;
  const close = libc.func('int close(int fd)') as Native;
  const poll = libc.func('int poll(_Inout_ void *fds, uint64_t nfds, int timeout)') as unknown as Native & { async: (...args: unknown[]) => void };
  const errno = (): number => koffi.errno();

  return {
    socketPair() {
      const sv = [-1, -1];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) !== 0) {
        throw bulkheadError('ERR_LAUNCH_FAILED', `socketpair(2) failed (errno ${errno()}); the process may be out of descriptors.`, { reason: 'no-socketpair', errno: errno() });
      }
      return [sv[0]!, sv[1]!];
    },
    send(socketFd, data, fd) {
      let control: Buffer | null = null;
      if (fd !== undefined) {
        control = Buffer.alloc(CMSG_ONE_FD_SPACE);
        control.writeBigUInt64LE(BigInt(CMSG_ONE_FD_LEN), 0);
        control.writeInt32LE(SOL_SOCKET, 8);
        control.writeInt32LE(SCM_RIGHTS, 12);
        control.writeInt32LE(fd, CMSG_HEADER_BYTES);
      }
      const msg = {
        msg_name: null, msg_namelen: 0, msg_iov: [{ iov_base: data, iov_len: data.length }], msg_iovlen: 1,
        msg_control: control, msg_controllen: control === null ? 0 : control.length, msg_flags: 0,
      };
      const n = Number(sendmsg(socketFd, msg, MSG_NOSIGNAL | MSG_DONTWAIT));
      return n < 0 ? -errno() : n;
    },
    receive(socketFd, into) {
      const control = Buffer.alloc(CONTROL_BYTES);
      const msg = {
        msg_name: null, msg_namelen: 0, msg_iov: [{ iov_base: into, iov_len: into.length }], msg_iovlen: 1,
        msg_control: control, msg_controllen: CONTROL_BYTES, msg_flags: 0,
      };
      const n = Number(recvmsg(socketFd, msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
      if (n < 0) return { bytes: -errno(), fd: undefined, truncated: false };
      // koffi wrote the kernel's lengths back into `msg` (size_t may come back as a BigInt).
      const written = msg as Record<string, unknown>;
      return { bytes: n, fd: firstFd(control, Number(written['msg_controllen'])), truncated: (Number(written['msg_flags']) & 0x8 /* MSG_CTRUNC */) !== 0 };
    },
    waitReadable(fd, timeoutMs) {
      // struct pollfd { int fd; short events; short revents; }
      const pollfd = Buffer.alloc(8);
      pollfd.writeInt32LE(fd, 0);
      pollfd.writeInt16LE(POLLIN, 4);
      return new Promise((resolve, reject) => {
        poll.async(pollfd, 1, Math.max(0, Math.floor(timeoutMs)), (err: unknown, result: unknown) => {
          if (err !== null && err !== undefined) reject(err instanceof Error ? err : new Error('poll(2) failed on the thread pool'));
          else resolve(Number(result) > 0);
        });
      });
    },
    shutdown(fd) {
      shutdown(fd, SHUT_RDWR);
    },
    close(fd) {
      close(fd);
    },
  };
}

/** The first descriptor of an SCM_RIGHTS message in `control`; any others are closed (only one is expected). */
function firstFd(control: Buffer, length: number): number | undefined {
  let found: number | undefined;
  let offset = 0;
  while (offset + CMSG_HEADER_BYTES <= length) {
    const len = Number(control.readBigUInt64LE(offset));
    if (len < CMSG_HEADER_BYTES || offset + len > length) break;
    if (control.readInt32LE(offset + 8) === SOL_SOCKET && control.readInt32LE(offset + 12) === SCM_RIGHTS) {
      for (let at = offset + CMSG_HEADER_BYTES; at + 4 <= offset + len; at += 4) {
        const fd = control.readInt32LE(at);
        if (found === undefined) found = fd;
        else loadedClose(fd);
      }
    }
    offset += (len + 7) & ~7;
  }
  return found;
}

function loadedClose(fd: number): void {
  if (loaded !== undefined && !('problem' in loaded)) loaded.close(fd);
}
