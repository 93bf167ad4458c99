/**
 * Pure length-prefixed frame decoder: bytes in, frame bodies out, no I/O.
 * A frame is a 4-byte big-endian unsigned length followed by that many bytes.
 * The declared length is checked against the limit as soon as the 4 header
 * bytes are known, before any of the body is buffered (grpc-js's decoder does
 * the same; VS Code's trusts any length).
 * @module
 */
import { Buffer } from 'node:buffer';
import { bulkheadError, type BulkheadError } from '../errors.js';
import { POOLED_BODY_MIN_BYTES, keepForSending, takeBody } from './body-pool.js';
import { keepStage, takeStage } from './body-stages.js';

/** Size of the big-endian length prefix in bytes. */
export const FRAME_HEADER_BYTES = 4;

/** Default upper bound on one frame body: 16 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

/**
 * A body spread over reads gets its own buffer of the declared size at its first byte only up to this size
 * (the size of the shared read buffer, and under the ≤ 80 KiB a sized read holds per idle channel).
 */
export const STAGE_FLOOR_BYTES = 64 * 1024;
/**
 * A larger body is collected in stage buffers of about this many times the bytes that arrived at most
 * ({@link bodyBufferLimit}) until 1/STAGE_GROWTH of it is here; then its own buffer is allocated and what arrived
 * is copied into it once. The extra copy is at most ~1/(STAGE_GROWTH − 1) of the body (a 16 MiB body: a 64 KiB
 * and a 1 MiB stage; a 1 MiB body: one of 64 KiB).
 */
export const STAGE_GROWTH = 16;

/**
 * Splits a byte stream into frame bodies.
 *
 * Bodies that lie inside one input chunk are returned as views of that chunk
 * (no copy). A body spread over chunks is copied into one buffer of exactly
 * the declared size. That buffer follows the bytes that arrived, not the
 * header alone: a body of up to {@link STAGE_FLOOR_BYTES} gets it when its
 * first byte arrives; a larger one once 1/{@link STAGE_GROWTH} of it is here,
 * and until then it is collected in stage buffers of at most
 * {@link bodyBufferLimit} bytes, each copied once into the next. So a peer
 * that sends a header declaring 16 MiB and one byte makes the receiver
 * allocate 64 KiB, not 16 MiB; to make it allocate the whole body it must send
 * a 16th of it. Input chunks are never retained, so memory held between calls
 * is at most 4 header bytes plus one such buffer, however small the chunks
 * are. Bodies of 16 KiB or more that the decoder allocates come from
 * body-pool.ts (released memory of the same size, else fresh), so a caller may
 * give them back with `releaseBytes`.
 */
export class FrameDecoder {
  readonly maxFrameBytes: number;
  /** Header bytes of a header split across chunks. */
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerFilled = 0;
  /** Declared length of the frame being collected, or -1 while the header is incomplete. */
  private expected = -1;
  /**
   * Buffer of the frame being collected across chunks, if any: its own buffer (`expected` bytes), or a stage
   * buffer (fewer) that holds its first `bodyFilled` bytes until enough arrived (see the class comment).
   */
  private body: Buffer | undefined;
  private bodyFilled = 0;
  private failure: BulkheadError<'ERR_FRAME_TOO_LARGE'> | undefined;
  private lastDeclared = 0;

  constructor(maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES) {
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 1 || maxFrameBytes > 0xffffffff) {
      throw bulkheadError('ERR_INVALID_OPTION', `maxFrameBytes must be an integer between 1 and 2^32-1, got ${String(maxFrameBytes)}`);
    }
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Body length declared by the most recent complete header (0 before the first): how large the frames are running. */
  get lastDeclaredLength(): number {
    return this.lastDeclared;
  }

  /** Bytes received but not yet returned as a frame (a partial header and/or body). */
  get pendingBytes(): number {
    return this.headerFilled + this.bodyFilled;
  }

  /**
   * The `ERR_FRAME_TOO_LARGE` this decoder has hit, if any. When a chunk holds
   * complete frames followed by an oversize header, {@link push} returns those
   * frames and leaves the error here (and throws it from the next push), so
   * what a peer's bytes cause never depends on how reads split them.
   */
  get error(): BulkheadError<'ERR_FRAME_TOO_LARGE'> | undefined {
    return this.failure;
  }

  /**
   * Feeds bytes (the first `end` of `chunk`: a reader that reads into its own
   * buffer passes the count it read rather than a view per read); returns every
   * frame body completed by them (possibly none), in order, up to the first
   * header that declares more than `maxFrameBytes`. `own`: `chunk` is fresh
   * memory the caller gives away (a read sized for the next frame,
   * socket-reads.ts), so a body that starts in it and fits in it is collected
   * where it lies, without a copy; the caller then never writes to `chunk`
   * again but through {@link FrameDecoder.bodyRemainder}. Such a chunk that
   * holds more than one body is marked kept (body-pool.ts): `releaseBytes` of
   * one message's bytes must never empty another's.
   * @throws BulkheadError `ERR_FRAME_TOO_LARGE` when such a header comes before
   *   any frame completed by this chunk, and on every call after the decoder
   *   hit one (see {@link error}); the decoder must then be discarded.
   */
  push(chunk: Buffer, end: number = chunk.length, own = false): Buffer[] {
    if (this.failure !== undefined) throw this.failure;
    if (!(end >= 0 && end <= chunk.length)) throw new RangeError(`FrameDecoder.push: end ${end} is outside the chunk (${chunk.length} bytes)`);
    const frames: Buffer[] = [];
    let pos = 0;
    /** Bodies that lie in `chunk` (views, or one collected in place). */
    let inChunk = 0;
    for (;;) {
      if (this.expected < 0) {
        let length: number;
        if (this.headerFilled === 0 && end - pos >= FRAME_HEADER_BYTES) {
          length = chunk.readUInt32BE(pos);
          pos += FRAME_HEADER_BYTES;
        } else {
          const n = Math.min(FRAME_HEADER_BYTES - this.headerFilled, end - pos);
          chunk.copy(this.header, this.headerFilled, pos, pos + n);
          this.headerFilled += n;
          pos += n;
          if (this.headerFilled < FRAME_HEADER_BYTES) break;
          length = this.header.readUInt32BE(0);
          this.headerFilled = 0;
        }
        if (length > this.maxFrameBytes) {
          this.failure = bulkheadError(
            'ERR_FRAME_TOO_LARGE',
            `Peer declared a ${length}-byte frame; the limit is ${this.maxFrameBytes} bytes. Send smaller messages or raise maxFrameBytes on both ends.`,
            { declared: length, limit: this.maxFrameBytes },
          );
          if (frames.length === 0) throw this.failure;
          break;
        }
        this.expected = length;
        this.lastDeclared = length;
      }
      if (this.body === undefined) {
        if (end - pos >= this.expected) {
          frames.push(chunk.subarray(pos, pos + this.expected));
          inChunk++;
          pos += this.expected;
          this.expected = -1;
          continue;
        }
        // Allocate only once body bytes arrive: a bare header costs nothing.
        if (pos === end) break;
        if (own && chunk.length - pos >= this.expected) {
          // Its first bytes are in place; the rest is read into the same memory (bodyRemainder).
          this.body = chunk.subarray(pos, pos + this.expected);
          this.bodyFilled = end - pos;
          inChunk++;
          break;
        }
        this.bodyFilled = 0;
        this.body = this.collectIn(end - pos);
      }
      const n = Math.min(this.body.length - this.bodyFilled, end - pos);
      chunk.copy(this.body, this.bodyFilled, pos, pos + n);
      this.bodyFilled += n;
      pos += n;
      if (this.bodyFilled < this.body.length) break;
      if (this.bodyFilled < this.expected) {
        // A full stage: the bytes still in this chunk have arrived too.
        this.body = this.collectIn(end - pos);
        continue;
      }
      frames.push(this.body);
      this.body = undefined;
      this.bodyFilled = 0;
      this.expected = -1;
    }
    if (own && inChunk > 1) keepForSending(chunk);
    return frames;
  }

  /**
   * Where the rest of the body being collected may be read to directly (the
   * kernel copies into it, nothing else does), when at least `minBytes` of the
   * body remain: the unfilled end of its buffer, which is all of the body's
   * rest, or the rest of a stage buffer (shorter; once it is full, the next
   * call gives the next buffer); else undefined. Fill it only through
   * {@link FrameDecoder.filled}.
   */
  bodyRemainder(minBytes: number): Buffer | undefined {
    const body = this.body;
    if (body === undefined || this.expected - this.bodyFilled < minBytes) return undefined;
    return body.subarray(this.bodyFilled);
  }

  /**
   * `n` bytes were read into the last {@link FrameDecoder.bodyRemainder};
   * returns the body when that completed it.
   */
  filled(n: number): Buffer | undefined {
    const body = this.body;
    if (body === undefined || n > body.length - this.bodyFilled) throw new Error('FrameDecoder.filled: more bytes than the body has room for');
    this.bodyFilled += n;
    if (this.bodyFilled < body.length) return undefined;
    if (this.bodyFilled < this.expected) {
      this.body = this.collectIn(0);
      return undefined;
    }
    this.body = undefined;
    this.bodyFilled = 0;
    this.expected = -1;
    return body;
  }

  /**
   * The buffer to collect the body in from now on, with its first `bodyFilled` bytes copied from the current one,
   * when `more` bytes of it are in hand besides ({@link bodyBufferLimit}): the body's own (`expected` bytes) once
   * the bytes that arrived reach 1/STAGE_GROWTH of it (or it is at most STAGE_FLOOR_BYTES), else a stage. Stages
   * are `ceil(expected / STAGE_GROWTH^j)` bytes (the largest one within the limit), so a full stage is followed by
   * the next one up, and the one of `ceil(expected / STAGE_GROWTH)` by the body's own buffer: the stages copied add
   * up to at most ~1/(STAGE_GROWTH − 1) of the body.
   */
  private collectIn(more: number): Buffer {
    const expected = this.expected;
    const arrived = this.bodyFilled + more;
    let next: Buffer | undefined;
    if (expected > Math.max(STAGE_FLOOR_BYTES, STAGE_GROWTH * arrived)) {
      const limit = bodyBufferLimit(arrived);
      let stage = Math.ceil(expected / STAGE_GROWTH);
      for (let down = STAGE_GROWTH * STAGE_GROWTH; stage > limit; down *= STAGE_GROWTH) stage = Math.ceil(expected / down);
      // Always true (the stage below a full one is the next one up); else the body's own buffer, as before.
      if (stage > this.bodyFilled) next = takeStage(stage);
    }
    next ??= expected >= POOLED_BODY_MIN_BYTES ? takeBody(expected) : Buffer.allocUnsafe(expected);
    if (this.bodyFilled > 0) {
      // The current buffer is a full stage (a body's own buffer is never left): copied out, it serves the next frame.
      this.body!.copy(next, 0, 0, this.bodyFilled);
      keepStage(this.body!);
    }
    return next;
  }
}

/**
 * The most a {@link FrameDecoder} allocates for a body spread over reads while `arrived` bytes of it are here:
 * `max(STAGE_FLOOR_BYTES, STAGE_GROWTH × arrived)`, plus 1/STAGE_GROWTH of that for a stage (so a stage's size can
 * follow the body's rather than powers of two: 68 KiB for a header and a byte, 17 × the bytes that arrived).
 */
export function bodyBufferLimit(arrived: number): number {
  const reach = Math.max(STAGE_FLOOR_BYTES, STAGE_GROWTH * arrived);
  return reach + Math.floor(reach / STAGE_GROWTH);
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
