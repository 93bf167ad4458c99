/**
 * Frame I/O for the daemon handshake, before a socket becomes a bulkhead
 * channel: read one CBOR map per frame (small frames only), write one, and
 * hand the socket over with any bytes the peer already pipelined behind.
 * @module
 */
import type { Socket } from 'node:net';
import { bulkheadError, type BulkheadError } from '../errors.js';
import { decodeItem, encodeItem } from '../wire/codec.js';
import { encodeFrame, FRAME_HEADER_BYTES } from '../wire/frame-decoder.js';

/** Largest handshake frame: a certificate and a signature fit easily. */
export const MAX_HANDSHAKE_FRAME_BYTES = 64 * 1024;

/** Bytes a peer may send ahead of the handshake's end (what it pipelines behind it), before it is refused. */
const MAX_PIPELINED_BYTES = 4 * 1024 * 1024;

/**
 * Reads handshake messages from a socket until released. Frames are cut from
 * the raw bytes only when a message is asked for, so whatever the peer sent
 * behind the handshake (whole frames or part of one) goes back to the socket
 * byte for byte on release.
 */
export class HandshakeReader {
  /** Bytes received and not yet taken as a handshake message. */
  private pending: Buffer = Buffer.alloc(0);
  private waiter: { resolve(m: Record<string, unknown>): void; reject(e: BulkheadError): void } | undefined;
  private failure: BulkheadError | undefined;
  private readonly onData = (chunk: Buffer) => this.push(chunk);
  private readonly onEnd = () => this.fail(bulkheadError('ERR_AUTH_FAILED', 'The peer closed the connection during the handshake.'));

  constructor(private readonly socket: Socket) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
  }

  /** The next message (a CBOR map), or a rejection on close, garbage or timeout. */
  next(timeoutMs: number): Promise<Record<string, unknown>> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    try {
      const frame = this.takeFrame();
      if (frame !== undefined) return Promise.resolve(this.parse(frame));
    } catch (err) {
      this.fail(err as BulkheadError);
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(bulkheadError('ERR_AUTH_FAILED', `No handshake message within ${timeoutMs} ms.`)), timeoutMs);
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

  /** Stops reading and puts unread bytes back, so a FramedChannel can take the socket over. */
  release(): void {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.pause();
    // Bytes the peer pipelined after the handshake belong to the channel, a partial frame included.
    if (this.pending.length > 0) this.socket.unshift(this.pending);
    this.pending = Buffer.alloc(0);
  }

  private push(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.pending.length > MAX_PIPELINED_BYTES) {
      this.fail(bulkheadError('ERR_AUTH_FAILED', `More than ${MAX_PIPELINED_BYTES} bytes arrived before the handshake finished.`));
      return;
    }
    const waiter = this.waiter;
    if (waiter === undefined) return;
    try {
      const frame = this.takeFrame();
      if (frame === undefined) return;
      this.waiter = undefined;
      waiter.resolve(this.parse(frame));
    } catch (err) {
      this.fail(err as BulkheadError);
    }
  }

  /** Cuts the next whole frame off the pending bytes; undefined until one is complete. */
  private takeFrame(): Buffer | undefined {
    if (this.pending.length < FRAME_HEADER_BYTES) return undefined;
    const length = this.pending.readUInt32BE(0);
    if (length > MAX_HANDSHAKE_FRAME_BYTES) {
      throw bulkheadError('ERR_FRAME_TOO_LARGE', `A handshake message declares ${length} bytes; the limit is ${MAX_HANDSHAKE_FRAME_BYTES}.`, { size: length, limit: MAX_HANDSHAKE_FRAME_BYTES });
    }
    if (this.pending.length < FRAME_HEADER_BYTES + length) return undefined;
    const frame = this.pending.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length);
    this.pending = this.pending.subarray(FRAME_HEADER_BYTES + length);
    return frame;
  }

  private parse(frame: Buffer): Record<string, unknown> {
    const value = decodeItem(frame);
    if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
      throw bulkheadError('ERR_AUTH_FAILED', 'A handshake message must be a CBOR map.');
    }
    return value as Record<string, unknown>;
  }

  private fail(error: BulkheadError): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(error);
  }
}

/** Writes one handshake message. */
export function writeHandshake(socket: Socket, message: Record<string, unknown>): void {
  socket.write(encodeFrame(encodeItem(message)));
}
