/**
 * A daemon client's side of the hand-off (docs/wire.md, "Hand-off"): the
 * daemon's answer to `auth` may carry a descriptor (`SCM_RIGHTS`), the
 * client's end of a direct channel to the helper. libuv reads a socket with
 * read(2), which would drop that descriptor, so the client stops libuv
 * reading before the answer can arrive and reads exactly that one frame with
 * recvmsg(2) itself (waiting on the thread pool, never on the event loop).
 * Bytes after the frame stay in the socket for libuv.
 * @module
 */
import type { Socket } from 'node:net';
import { bulkheadError } from '../errors.js';
import { FRAME_HEADER_BYTES } from '../wire/frame-decoder.js';
import { ERRNO, loadFdPassing, socketDescriptor, type FdPassing } from '../broker/fd-passing.js';
import { MAX_HANDSHAKE_FRAME_BYTES, parseHandshakeMessage } from './handshake-io.js';

/** libuv's stream handle under a net.Socket: the two calls this module needs. */
interface StreamHandle {
  readStop(): number;
  readStart(): number;
}

/** What the daemon answered to `auth`, and the descriptor that came with it. */
export interface HandoffAnswer {
  message: Record<string, unknown>;
  /** The client's end of the direct channel (owned by the caller), when the daemon handed one off. */
  fd: number | undefined;
}

/**
 * Whether this process can take a hand-off: fd passing loads, and `socket`
 * has a descriptor and a libuv handle that can stop reading.
 */
export function canReceiveHandoff(socket: Socket): boolean {
  return !('problem' in loadFdPassing()) && socketDescriptor(socket) !== undefined && typeof handleOf(socket)?.readStop === 'function';
}

/**
 * Stops libuv reading `socket`. Call synchronously right after writing `auth`
 * (before returning to the event loop), so libuv cannot read the answer.
 * Node still believes the handle reads, so it never restarts it on its own.
 */
export function holdReads(socket: Socket): void {
  handleOf(socket)?.readStop?.();
}

/** Lets libuv read `socket` again (for the daemon's lifecycle messages). */
export function resumeReads(socket: Socket): void {
  handleOf(socket)?.readStart?.();
}

/**
 * Reads one handshake frame from `socket` with recvmsg, keeping the descriptor
 * that arrives with it. The socket must be held (see {@link holdReads}).
 * @throws BulkheadError `ERR_AUTH_FAILED` (`reason: "timeout"` or `"closed"`),
 *   `ERR_FRAME_TOO_LARGE`, `ERR_BAD_FRAME`
 */
export async function receiveHandoffAnswer(socket: Socket, timeoutMs: number): Promise<HandoffAnswer> {
  const fds = loadFdPassing() as FdPassing;
  const fd = socketDescriptor(socket);
  if (fd === undefined) throw bulkheadError('ERR_AUTH_FAILED', 'The connection to the daemon has no descriptor.', { reason: 'closed' });
  const deadline = Date.now() + timeoutMs;
  let received: number | undefined;
  const readExactly = async (into: Buffer): Promise<void> => {
    let filled = 0;
    while (filled < into.length) {
      const left = deadline - Date.now();
      if (left <= 0 || !(await fds.waitReadable(fd, left))) {
        throw bulkheadError('ERR_AUTH_FAILED', `No handshake answer within ${timeoutMs} ms.`, { reason: 'timeout', timeoutMs });
      }
      const r = fds.receive(fd, into.subarray(filled));
      if (r.fd !== undefined) {
        // One descriptor per answer: a second one is not ours to keep.
        if (received === undefined) received = r.fd;
        else fds.close(r.fd);
      }
      if (r.bytes === -ERRNO.EAGAIN || r.bytes === -ERRNO.EINTR) continue;
      if (r.bytes <= 0) throw bulkheadError('ERR_AUTH_FAILED', 'The daemon closed the connection during the handshake.', { reason: 'closed' });
      filled += r.bytes;
    }
  };
  try {
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    await readExactly(header);
    const length = header.readUInt32BE(0);
    if (length > MAX_HANDSHAKE_FRAME_BYTES) {
      throw bulkheadError('ERR_FRAME_TOO_LARGE', `A handshake message declares ${length} bytes; the limit is ${MAX_HANDSHAKE_FRAME_BYTES}.`, { reason: 'too-large', declared: length, limit: MAX_HANDSHAKE_FRAME_BYTES });
    }
    const body = Buffer.alloc(length);
    await readExactly(body);
    return { message: parseHandshakeMessage(body), fd: received };
  } catch (err) {
    if (received !== undefined) fds.close(received);
    throw err;
  }
}

function handleOf(socket: Socket): Partial<StreamHandle> | undefined {
  return (socket as unknown as { _handle?: Partial<StreamHandle> | null })._handle ?? undefined;
}
