/**
 * Frame I/O for the daemon handshake, before a socket becomes a bulkhead
 * channel: read one CBOR map per frame (small frames only), write one, and
 * hand the socket over with any bytes the peer already pipelined behind.
 *
 * The reader is the only code that sees a stranger's bytes, so it is strict:
 * received chunks are kept as a list (no copy per chunk; a frame is joined once,
 * when it is complete), the bytes it holds are bounded, and the first problem
 * (garbage, an oversize header, too many bytes, the peer's end) stops it for
 * good: it detaches, pauses the socket and rejects the waiting and every later
 * {@link HandshakeReader.next}. Nothing is read from a failed socket again.
 * @module
 */
import type { Socket } from 'node:net';
import { bulkheadError, isBulkheadError, type BulkheadError } from '../errors.js';
import { decodeItem, encodeItem } from '../wire/codec.js';
import { encodeFrame, FRAME_HEADER_BYTES } from '../wire/frame-decoder.js';

/** Largest handshake frame body: a certificate and a signature fit easily. */
export const MAX_HANDSHAKE_FRAME_BYTES = 64 * 1024;

/**
 * Bytes a reader holds at most before it is released: one largest handshake
 * frame with its header, plus as much again that the peer pipelined behind it.
 * Past this the reader fails (the peer sent more than any handshake needs).
 * One socket read may overshoot it by at most one read (64 KiB in Node).
 */
export const MAX_HANDSHAKE_PENDING_BYTES = 2 * (FRAME_HEADER_BYTES + MAX_HANDSHAKE_FRAME_BYTES);

/** Why a handshake read failed; carried as `data.reason` of the refusal. */
export type HandshakeReadFailure = 'bad-cbor' | 'not-a-map' | 'too-large' | 'too-many-bytes' | 'closed';

/**
 * Reads handshake messages from a socket until released. Frames are cut from
 * the raw bytes only when a message is asked for, so whatever the peer sent
 * behind the handshake (whole frames or part of one) goes back to the socket
 * byte for byte on release.
 */
export class HandshakeReader {
  /** Bytes received and not yet taken as a handshake message, in arrival order. */
  private chunks: Buffer[] = [];
  private pendingBytes = 0;
  private waiter: { resolve(m: Record<string, unknown>): void; reject(e: BulkheadError): void } | undefined;
  private failure: BulkheadError | undefined;
  private detached = false;
  private readonly onData = (chunk: Buffer) => this.push(chunk);
  private readonly onEnd = () => this.fail(bulkheadError('ERR_AUTH_FAILED', 'The peer closed the connection during the handshake.', { reason: 'closed' }));

  constructor(private readonly socket: Socket, private readonly maxPendingBytes = MAX_HANDSHAKE_PENDING_BYTES) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.resume(); // a socket paused before the reader existed (a held connection) reads from now on
  }

  /** The error that stopped this reader, if one did. */
  get failed(): BulkheadError | undefined {
    return this.failure;
  }

  /**
   * The next message (a CBOR map). Rejects on garbage, an oversize frame, the
   * peer's end, or `timeoutMs` without a whole message; any of these stops the
   * reader for good.
   */
  next(timeoutMs: number): Promise<Record<string, unknown>> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.waiter !== undefined) return Promise.reject(bulkheadError('ERR_INVALID_OPTION', 'HandshakeReader.next() called while a message is already awaited.'));
    const ready = this.tryTake();
    if (ready !== undefined) return ready;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(bulkheadError('ERR_AUTH_FAILED', `No handshake message within ${timeoutMs} ms.`, { reason: 'timeout', timeoutMs })), timeoutMs);
      timer.unref();
      this.waiter = {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  /**
   * Stops reading and puts unread bytes back, so a FramedChannel can take the socket over.
   * @throws the reader's failure, when it failed (bytes were dropped: the socket must not be used)
   */
  release(): void {
    if (this.failure !== undefined) throw this.failure;
    this.detach();
    // Bytes the peer pipelined after the handshake belong to the channel, a partial frame included.
    if (this.pendingBytes > 0) this.socket.unshift(this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.pendingBytes));
    this.chunks = [];
    this.pendingBytes = 0;
  }

  /**
   * Fails the reader (if it has not failed yet): it stops reading the socket at
   * once, drops what it held, and the awaited message rejects with `error`.
   */
  fail(error: BulkheadError): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.detach();
    this.chunks = [];
    this.pendingBytes = 0;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(error);
  }

  private detach(): void {
    if (this.detached) return;
    this.detached = true;
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.pause();
  }

  private push(chunk: Buffer): void {
    if (this.failure !== undefined) return;
    this.chunks.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes > this.maxPendingBytes) {
      this.fail(bulkheadError('ERR_FRAME_TOO_LARGE', `More than ${this.maxPendingBytes} bytes arrived before the handshake finished.`, { reason: 'too-many-bytes', declared: this.pendingBytes, limit: this.maxPendingBytes }));
      return;
    }
    const waiter = this.waiter;
    if (waiter === undefined) return;
    const taken = this.tryTake();
    if (taken === undefined) return;
    this.waiter = undefined;
    taken.then((m) => waiter.resolve(m), (e: unknown) => waiter.reject(e as BulkheadError));
  }

  /** A settled promise when a whole message (or a failure) is ready; undefined while more bytes are needed. */
  private tryTake(): Promise<Record<string, unknown>> | undefined {
    try {
      const frame = this.takeFrame();
      return frame === undefined ? undefined : Promise.resolve(parseHandshakeMessage(frame));
    } catch (err) {
      // Everything thrown here is a typed refusal; anything else is a bug and must not be swallowed.
      if (!isBulkheadError(err)) throw err;
      this.fail(err);
      return Promise.reject(err);
    }
  }

  /** Cuts the next whole frame off the pending bytes; undefined until one is complete. */
  private takeFrame(): Buffer | undefined {
    if (this.pendingBytes < FRAME_HEADER_BYTES) return undefined;
    if (this.chunks[0]!.length < FRAME_HEADER_BYTES) this.chunks = [Buffer.concat(this.chunks, this.pendingBytes)];
    const length = this.chunks[0]!.readUInt32BE(0);
    if (length > MAX_HANDSHAKE_FRAME_BYTES) {
      throw bulkheadError('ERR_FRAME_TOO_LARGE', `A handshake message declares ${length} bytes; the limit is ${MAX_HANDSHAKE_FRAME_BYTES}.`, { reason: 'too-large', declared: length, limit: MAX_HANDSHAKE_FRAME_BYTES });
    }
    const total = FRAME_HEADER_BYTES + length;
    if (this.pendingBytes < total) return undefined;
    // Joined once, when whole: at most MAX_HANDSHAKE_PENDING_BYTES are copied per message.
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.pendingBytes);
    const rest = all.subarray(total);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
    return all.subarray(FRAME_HEADER_BYTES, total);
  }
}

/**
 * Decodes one handshake frame body: one CBOR item of plain data (docs/wire.md
 * section 3) that is a map. Throws `ERR_BAD_FRAME` with `data.reason`
 * `"bad-cbor"` or `"not-a-map"`.
 */
export function parseHandshakeMessage(frame: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = decodeItem(frame);
  } catch (err) {
    throw bulkheadError('ERR_BAD_FRAME', `A handshake message is not one CBOR item of plain data: ${(err as Error).message}`, { reason: 'bad-cbor' });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw bulkheadError('ERR_BAD_FRAME', 'A handshake message must be a CBOR map (see the handshake section of docs/wire.md).', { reason: 'not-a-map' });
  }
  return value as Record<string, unknown>;
}

/** Writes one handshake message. */
export function writeHandshake(socket: Socket, message: Record<string, unknown>): void {
  socket.write(encodeFrame(encodeItem(message)));
}
