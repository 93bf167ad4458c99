/**
 * Socket activation (sd_listen_fds(3)): when systemd (or
 * `systemd-socket-activate`) started the daemon with its listening socket,
 * `LISTEN_PID` is our pid and `LISTEN_FDS=1`, and the socket is fd 3. The
 * daemon adopts it instead of creating its own: connections that arrived
 * before it was ready wait in the socket's backlog and are served once it
 * listens, and systemd keeps the socket (and its path) across restarts.
 *
 * Only one socket is expected; `LISTEN_FDNAMES` is ignored (whatever it says,
 * fd 3 is the one). The variables are removed from the environment once read
 * (sd_listen_fds' unset_environment), so nothing spawned later sees them.
 * @module
 */
import { fstatSync, readFileSync, readlinkSync } from 'node:fs';
import type { Server } from 'node:net';
import { resolve } from 'node:path';
import { bulkheadError } from '../errors.js';

/** The first fd systemd passes (SD_LISTEN_FDS_START). */
export const SD_LISTEN_FDS_START = 3;

/**
 * The fd systemd passed, or undefined when the daemon was not socket-activated.
 * Removes `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` from `env` either way.
 * @throws BulkheadError `ERR_SOCKET_ACTIVATION` when systemd passed more than one socket
 */
export function listenFdFromEnv(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number | undefined {
  const listenPid = env['LISTEN_PID'];
  const listenFds = env['LISTEN_FDS'];
  delete env['LISTEN_PID'];
  delete env['LISTEN_FDS'];
  delete env['LISTEN_FDNAMES'];
  if (listenPid === undefined || listenFds === undefined || Number(listenPid) !== pid) return undefined;
  const count = Number(listenFds);
  if (!Number.isInteger(count) || count < 1) return undefined;
  if (count !== 1) {
    throw bulkheadError('ERR_SOCKET_ACTIVATION', `systemd passed ${count} sockets (LISTEN_FDS=${listenFds}); the daemon listens on exactly one: give its .socket unit a single ListenStream=.`, { fds: count });
  }
  return SD_LISTEN_FDS_START;
}

/**
 * Listens on the passed fd after checking it is a listening Unix stream
 * socket bound to `socketPath` (the path clients sign in their proof: a
 * socket elsewhere would make every handshake fail, so refuse it up front).
 * @throws BulkheadError `ERR_SOCKET_ACTIVATION` naming what is wrong with the fd
 */
export async function listenOnPassedFd(server: Server, fd: number, socketPath: string): Promise<void> {
  const found = describeUnixSocket(fd);
  if (typeof found === 'string') throw activationError(found, socketPath);
  if (!found.stream) throw activationError(`fd ${fd} is a Unix datagram or seqpacket socket, not a stream one (ListenStream=)`, socketPath);
  if (!found.listening) throw activationError(`fd ${fd} is a Unix socket that does not listen`, socketPath);
  if (found.path === undefined || resolve(found.path) !== resolve(socketPath)) {
    throw activationError(`the passed socket is bound to ${found.path === undefined ? 'no path (unnamed or abstract)' : found.path}, not to ${socketPath}`, socketPath);
  }
  await new Promise<void>((done, fail) => {
    const onError = (err: Error) => fail(activationError(`fd ${fd} cannot be listened on (${(err as NodeJS.ErrnoException).code ?? err.message})`, socketPath));
    server.once('error', onError);
    server.listen({ fd }, () => {
      server.off('error', onError);
      done();
    });
  });
}

/** What /proc says about a Unix socket fd. */
interface UnixSocketInfo {
  /** Bound path; undefined for an unnamed or abstract socket. */
  path: string | undefined;
  /** SOCK_STREAM. */
  stream: boolean;
  /** listen() was called on it (__SO_ACCEPTCON). */
  listening: boolean;
}

/**
 * Looks the fd's socket up in /proc/net/unix by inode (Node can neither
 * getsockname() a socket it did not bind nor read SO_ACCEPTCONN). A string
 * says why it is not a Unix socket.
 */
export function describeUnixSocket(fd: number): UnixSocketInfo | string {
  let link: string;
  try {
    if (!fstatSync(fd).isSocket()) return `fd ${fd} is not a socket`;
    link = readlinkSync(`/proc/self/fd/${fd}`);
  } catch (err) {
    return `fd ${fd} is not open (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
  }
  const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
  if (inode === undefined) return `fd ${fd} is not a socket (${link})`;
  // "Num RefCount Protocol Flags Type St Inode Path"; flags 0x10000 is __SO_ACCEPTCON, type 1 is SOCK_STREAM.
  for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[6] !== inode) continue;
    const path = fields.slice(7).join(' ');
    return {
      path: path.startsWith('/') ? path : undefined,
      stream: parseInt(fields[4] ?? '', 16) === 1,
      listening: (parseInt(fields[3] ?? '0', 16) & 0x10000) !== 0,
    };
  }
  return `fd ${fd} is not a Unix socket (a TCP/UDP socket, or another kind)`;
}

function activationError(what: string, socketPath: string) {
  return bulkheadError('ERR_SOCKET_ACTIVATION', `Socket activation: ${what}. The .socket unit's ListenStream= must be the daemon's socketPath (${socketPath}); regenerate the units with \`bulkhead unit\`.`, { socketPath });
}

/**
 * True when the daemon runs under systemd with its stdout going to the
 * journal (`JOURNAL_STREAM` set, or `INVOCATION_ID` set by the service
 * manager): logs then go to stdout, and journald keeps and rotates them.
 */
export function underJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env['JOURNAL_STREAM'] ?? '') !== '' || (env['INVOCATION_ID'] ?? '') !== '';
}
