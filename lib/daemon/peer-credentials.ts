/**
 * Who is on the other end of a Unix socket, as the kernel says: `SO_PEERCRED`
 * (the uid, gid and pid the peer had when it called connect()) and, on Linux
 * 6.5 and later, `SO_PEERPIDFD` (a pidfd for that very process, so a pid
 * recycled after the peer exits is never mistaken for it).
 *
 * Node has no binding for getsockopt, so it is reached through koffi, a
 * maintained FFI that ships prebuilt binaries. koffi is loaded on first use, by
 * the daemon only: neither the embedded broker nor the helper runtime load it.
 * @module
 */
import { closeSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { bulkheadError } from '../errors.js';

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const SO_PEERPIDFD = 77;

/** A peer's credentials as the kernel reported them. */
export interface PeerCredentials {
  uid: number;
  gid: number;
  pid: number;
  /** A pidfd for the peer process (Linux ≥ 6.5), owned by the caller: close it with {@link closePeerPidfd}. */
  pidfd: number | undefined;
}

type GetSockOpt = (fd: number, level: number, name: number, value: Buffer, length: number[]) => number;

let getsockopt: GetSockOpt | undefined;

/**
 * Loads the FFI binding. Called once when the daemon starts, so a host where it
 * cannot load fails at start, not on the first client.
 * @throws BulkheadError `ERR_LAUNCH_FAILED` when koffi or libc cannot be loaded
 */
export function loadPeerCredentials(): void {
  if (getsockopt !== undefined) return;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as {
      load(path: string): { func(signature: string): GetSockOpt };
    };
    getsockopt = koffi.load('libc.so.6').func('int getsockopt(int fd, int level, int name, _Out_ void *value, _Inout_ uint32_t *length)');
  } catch (err) {
    throw bulkheadError('ERR_LAUNCH_FAILED', `The daemon cannot read its clients' kernel credentials (SO_PEERCRED through koffi): ${(err as Error).message}. Install the koffi package (a dependency of bulkhead) for this platform.`, { reason: 'no-peer-credentials' });
  }
}

/**
 * The kernel's credentials of the process at the other end of `socket`.
 * @throws BulkheadError `ERR_AUTH_FAILED` (`data.reason: "no-peer-credentials"`) when the
 *   socket has no descriptor or the kernel refuses: the daemon then admits nobody (fail closed)
 */
export function peerCredentials(socket: Socket): PeerCredentials {
  loadPeerCredentials();
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw bulkheadError('ERR_AUTH_FAILED', 'The connection has no socket descriptor to read the peer\'s credentials from.', { reason: 'no-peer-credentials' });
  const cred = Buffer.alloc(12); // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
  const length = [12];
  if (getsockopt!(fd, SOL_SOCKET, SO_PEERCRED, cred, length) !== 0 || length[0] !== 12) {
    throw bulkheadError('ERR_AUTH_FAILED', 'The kernel did not report the peer\'s credentials (SO_PEERCRED).', { reason: 'no-peer-credentials' });
  }
  const pidfdOut = Buffer.alloc(4);
  const pidfdLength = [4];
  // Older kernels answer ENOPROTOOPT: the pid alone is then what we have.
  const pidfd = getsockopt!(fd, SOL_SOCKET, SO_PEERPIDFD, pidfdOut, pidfdLength) === 0 ? pidfdOut.readInt32LE(0) : undefined;
  return { pid: cred.readInt32LE(0), uid: cred.readUInt32LE(4), gid: cred.readUInt32LE(8), pidfd };
}

/**
 * True while the peer process behind `pidfd` still runs (its pid then still
 * names it). Reads the pidfd's `Pid:` line, which the kernel sets to -1 (or 0)
 * once the process has exited.
 */
export function peerAlive(pidfd: number, pid: number): boolean {
  try {
    const match = /^Pid:\s*(-?\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${pidfd}`, 'utf8'));
    return match !== null && Number(match[1]) === pid;
  } catch {
    return false;
  }
}

/** Closes a pidfd from {@link peerCredentials}. Idempotent per value: pass each once. */
export function closePeerPidfd(pidfd: number | undefined): void {
  if (pidfd === undefined) return;
  try {
    closeSync(pidfd);
  } catch {
    // Already closed: nothing held.
  }
}
