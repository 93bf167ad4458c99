/**
 * Frame I/O for the daemon handshake, before a socket becomes a bulkhead
 * channel: read one CBOR map per frame (small frames only), write one, and
 * hand the socket over with any bytes the peer already pipelined behind.
 * @module
 */
import type { Socket } from 'node:net';
import { bulkheadError, type BulkheadError } from '../errors.js';
import { decodeItem, encodeItem } from '../wire/codec.js';
import { encodeFrame, FrameDecoder } from '../wire/frame-decoder.js';

/** Largest handshake frame: a certificate and a signature fit easily. */
export const MAX_HANDSHAKE_FRAME_BYTES = 64 * 1024;

/** Reads handshake messages from a socket until released. */
export class HandshakeReader {
  private readonly decoder = new FrameDecoder(MAX_HANDSHAKE_FRAME_BYTES);
  private readonly frames: Buffer[] = [];
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
    const frame = this.frames.shift();
    if (frame !== undefined) return Promise.resolve(this.parse(frame));
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
    // Frames the peer pipelined after the handshake belong to the channel.
    for (const frame of this.frames.splice(0).reverse()) this.socket.unshift(encodeFrame(frame));
  }

  private push(chunk: Buffer): void {
    try {
      for (const frame of this.decoder.push(chunk)) this.frames.push(frame);
    } catch (err) {
      this.fail(err as BulkheadError);
      return;
    }
    if (this.waiter !== undefined && this.frames.length > 0) {
      const waiter = this.waiter;
      this.waiter = undefined;
      try {
        waiter.resolve(this.parse(this.frames.shift()!));
      } catch (err) {
        waiter.reject(err as BulkheadError);
      }
    }
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
