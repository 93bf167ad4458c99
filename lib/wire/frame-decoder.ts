/**
 * Pure length-prefixed frame decoder: bytes in, frame bodies out, no I/O.
 * A frame is a 4-byte big-endian unsigned length followed by that many bytes.
 * The declared length is checked against the limit as soon as the 4 header
 * bytes are known, before any of the body is buffered (grpc-js's decoder does
 * the same; VS Code's trusts any length).
 * @module
 */
import { bulkheadError } from '../errors.js';

/** Size of the big-endian length prefix in bytes. */
export const FRAME_HEADER_BYTES = 4;

/** Default upper bound on one frame body: 16 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

/**
 * Splits a byte stream into frame bodies.
 *
 * Bodies that lie inside one input chunk are returned as views (no copy);
 * bodies spread over chunks are copied once into a buffer of exactly the
 * declared size, which the limit bounds.
 */
export class FrameDecoder {
  readonly maxFrameBytes: number;
  /** Chunks not yet consumed; the first one is read from `offset`. */
  private chunks: Buffer[] = [];
  private offset = 0;
  private buffered = 0;
  /** Declared length of the frame being collected, or -1 while the header is incomplete. */
  private expected = -1;

  constructor(maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES) {
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 1 || maxFrameBytes > 0xffffffff) {
      throw bulkheadError('ERR_INVALID_OPTION', `maxFrameBytes must be an integer between 1 and 2^32-1, got ${String(maxFrameBytes)}`);
    }
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Bytes received but not yet returned as a frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /**
   * Feeds bytes; returns every frame body completed by them (possibly none).
   * @throws BulkheadError `ERR_FRAME_TOO_LARGE` when a header declares more than
   *   `maxFrameBytes`; the decoder must then be discarded.
   */
  push(chunk: Buffer): Buffer[] {
    const frames: Buffer[] = [];
    if (chunk.length === 0) return frames;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.expected < 0) {
        if (this.buffered < FRAME_HEADER_BYTES) break;
        const length = this.readHeader();
        if (length > this.maxFrameBytes) {
          throw bulkheadError(
            'ERR_FRAME_TOO_LARGE',
            `Peer declared a ${length}-byte frame; the limit is ${this.maxFrameBytes} bytes. Send smaller messages or raise maxFrameBytes on both ends.`,
            { declared: length, limit: this.maxFrameBytes },
          );
        }
        this.expected = length;
      }
      if (this.buffered < this.expected) break;
      frames.push(this.take(this.expected));
      this.expected = -1;
    }
    return frames;
  }

  private readHeader(): number {
    const first = this.chunks[0]!;
    if (first.length - this.offset >= FRAME_HEADER_BYTES) {
      const length = first.readUInt32BE(this.offset);
      this.consume(FRAME_HEADER_BYTES);
      return length;
    }
    return this.take(FRAME_HEADER_BYTES).readUInt32BE(0);
  }

  /** Removes `n` buffered bytes (n <= buffered) and returns them. */
  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (n === 0) return Buffer.alloc(0);
    if (first !== undefined && first.length - this.offset >= n) {
      const view = first.subarray(this.offset, this.offset + n);
      this.consume(n);
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    let written = 0;
    while (written < n) {
      const head = this.chunks[0]!;
      const available = head.length - this.offset;
      const count = Math.min(available, n - written);
      head.copy(out, written, this.offset, this.offset + count);
      written += count;
      this.consume(count);
    }
    return out;
  }

  private consume(n: number): void {
    this.offset += n;
    this.buffered -= n;
    const head = this.chunks[0];
    if (head !== undefined && this.offset === head.length) {
      this.chunks.shift();
      this.offset = 0;
    }
  }
}

/**
 * Prefixes one body with its 4-byte big-endian length, copying both into one
 * buffer so a single write carries the frame.
 */
export function encodeFrame(body: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  frame.writeUInt32BE(body.length, 0);
  frame.set(body, FRAME_HEADER_BYTES);
  return frame;
}
