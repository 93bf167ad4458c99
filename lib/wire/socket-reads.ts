/**
 * Reading a socket into buffers the reader chooses: Node's `onread` option of
 * `net.Socket`, switched on for a socket that already exists.
 *
 * By default Node allocates a fresh 64 KiB buffer for every read, copies what
 * arrived into one of the exact size, and hands that to 'data' listeners. A
 * frame spread over reads is then copied once more into its body. Every read
 * costs an allocation of external memory, which drives V8's major GCs: a
 * 64 KiB echo spent most of the broker's CPU in mark-compact (measured,
 * bench/README.md). With `onread` the kernel copies into a buffer we give it:
 * one reused read buffer for small frames, and the body itself for the rest of
 * a large frame, so a large frame is copied once (by the kernel) and a read
 * allocates nothing. (Its first 16th is read into stage buffers until it has
 * arrived, and copied once more: the body's buffer follows the bytes sent,
 * frame-decoder.ts.) After a frame of 16–80 KiB the next read goes into fresh
 * memory sized for one more such frame (a sized read), which the frame's body
 * and byte strings are then views of. A small frame is decoded where it lies in the read buffer
 * (framed-channel.ts); only a body that is kept, or whose byte strings would
 * be views of it, is copied ({@link keptBody}).
 *
 * `onread` can only be given when a socket is created, and the broker's end of
 * a helper's channel is `child.stdio[3]`, which Node creates. So this sets the
 * same three fields the constructor would (found by their symbols'
 * descriptions, `kBuffer`, `kBufferCb`, `kBufferGen`, unchanged from Node 12 to
 * 26) and tells the handle to read into the buffer, exactly what
 * `initSocketHandle` does for a socket made with `onread`. Node's own
 * pause()/resume() of such a socket stop and restart reading as documented.
 * Where anything of that is missing (another Node, a stream that is not a
 * socket, e.g. the in-memory pair of the tests), it returns false and the
 * caller reads with 'data' events as before.
 * @module
 */
import type { Buffer } from 'node:buffer';
import { fstatSync, readSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { FRAME_HEADER_BYTES, type FrameDecoder } from './frame-decoder.js';
import { POOLED_BODY_MIN_BYTES, takeBody } from './body-pool.js';
import { READ_BUFFER_BYTES, isSharedReadBuffer, sharedProbe, sharedRead } from './shared-read-buffers.js';

// Where they live now; kept importable from here.
export { inSharedReadBuffer, keptBody } from './shared-read-buffers.js';

/** A frame body with at least this much still to come is read straight into the body. */
const DIRECT_READ_MIN_BYTES = 16 * 1024;
/**
 * Frames from this size on make the next boundary read small: the 64 KiB read would leave at least
 * DIRECT_READ_MIN_BYTES to read straight into the body, so the read count is the same (the direct
 * read fills the body exactly and libuv reads once more) and only the copy goes. For a frame that a
 * 64 KiB read nearly holds (a 64 KiB echo), the small read would cost one read syscall more, which
 * measured about what the copy costs (bench/README.md, "Round four").
 */
const PROBE_AFTER_BYTES = READ_BUFFER_BYTES + DIRECT_READ_MIN_BYTES;
/**
 * Frames from this size on (and under PROBE_AFTER_BYTES) make the next boundary read a sized one: into fresh
 * memory of one such frame (header included) plus {@link SIZED_READ_SLACK}, taken from body-pool.ts. A frame of
 * that size arriving whole is then one read and no copy: its body is a view of that memory, which no read
 * touches again (the 64 KiB echo: was a 64 KiB read into the shared buffer, a copy of it into a fresh body, and
 * a second read for the body's last bytes). A frame that arrives in parts is collected in that memory (the
 * decoder's `own`); frames of other sizes are decoded from it as from any chunk of their own.
 */
const SIZED_READ_MIN_BYTES = POOLED_BODY_MIN_BYTES;
/**
 * Room a sized read leaves past the frame it expects: libuv reads again after a read that filled its buffer
 * (an EAGAIN when the frame was all there), and stops after one that did not.
 */
const SIZED_READ_SLACK = 1;

/** Where {@link readFramesIntoOwnBuffers} hands what it read. */
export interface FrameReads {
  /**
   * `n` bytes read into the start of `buffer`. `sized` false: `buffer` is a shared read buffer; consume them
   * before returning (bodies in them are views that the next read overwrites). `sized` true: `buffer` is fresh
   * memory nothing else holds or reads into again; push it to the decoder with `own` (frame-decoder.ts).
   */
  chunk(buffer: Buffer, n: number, sized: boolean): void;
  /** A body the kernel finished filling. */
  body(body: Buffer): void;
  /** The decoder refused what was read. */
  failed(error: unknown): void;
}

/**
 * Reads `stream` for `decoder` (see {@link readIntoOwnBuffers}): into the shared read buffer,
 * or straight into the rest of a body being collected when at least 16 KiB of it are to come.
 * Returns false, changing nothing, when `stream` cannot be read that way.
 */
export function readFramesIntoOwnBuffers(stream: Duplex, decoder: FrameDecoder, to: FrameReads): boolean {
  /** This channel's last frame had a large body: read the next header with the small probe buffer. */
  let largeFrames = false;
  /** Its last frame had a body of SIZED_READ_MIN_BYTES up to PROBE_AFTER_BYTES: read the next one sized. */
  let sizedFrames = false;
  /** The sized read's memory next() gave, until that read arrives. */
  let sized: Buffer | undefined;
  const next = (): Buffer => {
    const rest = decoder.bodyRemainder(DIRECT_READ_MIN_BYTES);
    if (rest !== undefined) return rest;
    // At a frame boundary after a large frame; in the tail of a body, the big buffer takes it and what follows.
    if (decoder.bodyRemainder(1) === undefined) {
      if (largeFrames) return sharedProbe();
      if (sizedFrames) return (sized ??= takeBody(decoder.lastDeclaredLength + FRAME_HEADER_BYTES + SIZED_READ_SLACK));
    }
    return sharedRead();
  };
  const runningSize = (): void => {
    // Large frames coming: read the next header small. A small one in a probe read: back to big reads.
    const declared = decoder.lastDeclaredLength;
    largeFrames = declared >= PROBE_AFTER_BYTES;
    sizedFrames = !largeFrames && declared >= SIZED_READ_MIN_BYTES;
  };
  return readIntoOwnBuffers(stream, next, (n, buffer) => {
    // `buffer` is what next() gave this read: a shared buffer itself, a sized read's memory, or the rest of a body of its own.
    if (isSharedReadBuffer(buffer)) {
      to.chunk(buffer, n, false); // no view per read: the decoder takes the count (frame-decoder.ts)
      runningSize();
      return;
    }
    if (buffer === sized) {
      sized = undefined;
      to.chunk(buffer, n, true);
      runningSize();
      return;
    }
    let body: Buffer | undefined;
    try {
      body = decoder.filled(n);
    } catch (err) {
      to.failed(err);
      return;
    }
    if (body !== undefined) to.body(body);
  });
}

/** The handle method Node's `onread` path uses (StreamBase::UseUserBuffer). */
interface UserBufferHandle {
  useUserBuffer(buffer: Uint8Array): void;
}

/**
 * Makes `stream` read into the buffers `next` returns (called before the first
 * read and after each one) and report each read as `received(n, buffer)`: the
 * first `n` bytes of `buffer` arrived. Returns false, changing nothing, when
 * `stream` is not a socket whose reads can be redirected.
 *
 * Bytes the stream buffered before the switch are not read by this: the
 * caller drains them first (stream.read()).
 */
export function readIntoOwnBuffers(stream: Duplex, next: () => Buffer, received: (n: number, buffer: Buffer) => void): boolean {
  if (!(stream instanceof Socket)) return false;
  const handle = (stream as unknown as { _handle?: Partial<UserBufferHandle> | null })._handle;
  if (handle === null || handle === undefined || typeof handle.useUserBuffer !== 'function') return false;
  const symbols = Object.getOwnPropertySymbols(stream);
  const kBuffer = symbols.find((s) => s.description === 'kBuffer');
  const kBufferCb = symbols.find((s) => s.description === 'kBufferCb');
  const kBufferGen = symbols.find((s) => s.description === 'kBufferGen');
  if (kBuffer === undefined || kBufferCb === undefined || kBufferGen === undefined) return false;
  const fields = stream as unknown as Record<symbol, unknown>;
  // Already reading into a caller's buffer (a socket made with onread): leave it alone.
  if (fields[kBuffer] !== null && fields[kBuffer] !== undefined) return false;
  const first = next();
  fields[kBuffer] = first;
  // The buffer the handle reads into now. Given the same again, Node would look up its memory in C++
  // per read (Buffer::Data: a JSTypedArray::GetBuffer); given anything but a Uint8Array, it keeps the
  // buffer it has (and passes it to kBufferCb again), which is the case of every small message.
  let current = first;
  fields[kBufferGen] = (): Buffer | undefined => {
    const buffer = next();
    if (buffer === current) return undefined;
    current = buffer;
    return buffer;
  };
  fields[kBufferCb] = (n: number, buffer: Buffer): boolean => {
    received(n, buffer);
    return true;
  };
  (handle as UserBufferHandle).useUserBuffer(first);
  return true;
}

/**
 * Reads what the socket `fd` holds right now into `buffer`, without waiting: the byte count, 0 when nothing is there
 * (EAGAIN), at its end, or `fd` is not a socket. For a cold helper's first read (lib/connection/helper-server.ts): the
 * broker's hello and first call are in the socket by the time the entry module ran, and reading them at once answers
 * the call before the event loop's first turn, where a young-generation task V8 posted during the start (at ~819 KB
 * of new space) would run first (bench/README.md, "Round twelve: cold launch (launch12)"). Only a socket: libuv set
 * it non-blocking when Node opened it, so an empty one fails at once instead of blocking.
 */
export function readWaitingNow(fd: number, buffer: Buffer): number {
  try {
    if (!fstatSync(fd).isSocket()) return 0;
    return readSync(fd, buffer, 0, buffer.length, null);
  } catch {
    return 0; // EAGAIN (nothing yet) or any other error: the event loop reads, as before.
  }
}
