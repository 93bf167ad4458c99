/**
 * Frame bodies of 16 KiB or more, and the opt-in way to give one back:
 * {@link releaseBytes}.
 *
 * Why: a received byte string is a view of its frame body, and by default the
 * body is a fresh ArrayBuffer that the caller owns. On Node 24 and 26 (V8 13/14)
 * those bytes count as external memory and no longer make V8 scavenge; with a
 * large young generation they pile up until external-memory pressure starts a
 * mark-compact, and once one runs V8's heap controller sets the old-generation
 * limit to the live size plus the young generation's capacity, so every later
 * promotion starts the next one. A 64 KiB echo then spent most of the caller's
 * CPU in mark-compacts (bench/README.md, "Round five: payloads"). A body whose
 * memory is given back is reused for a later frame of the same size instead
 * of allocating, and V8 sees no new external memory.
 *
 * Safety: the memory is reused only after it was detached from the released
 * ArrayBuffer (ArrayBuffer transfer), so every view the caller still holds,
 * of this byte string or any other of the same message, reads as empty:
 * a later frame never shows through a retained view. Only bodies this module
 * allocated are accepted, and none that was queued for sending (a received
 * byte string passed on as a large payload, or a forwarded body): the queued
 * write keeps its bytes. Anything else is left alone. The pool is bounded.
 *
 * Without the caller: a body that decoded into values holding no view of it is
 * released by the channel once its handler returned ({@link releaseIfUnviewed}),
 * and fresh bodies come with a young-generation nudge (scavenge-nudge.ts).
 * @module
 */
// The module's binding, not the global: on Node 20 the global `Buffer` is a getter, a function call per use.
import { Buffer } from 'node:buffer';
import { nudgeYoungGeneration } from './scavenge-nudge.js';

/** Frame bodies from this size on come from the pool and may be released. */
export const POOLED_BODY_MIN_BYTES = 16 * 1024;
/** Released memories kept for reuse, at most. */
const POOL_MAX_ENTRIES = 4;
/** Bytes kept for reuse, at most (one 16 MiB frame and a few smaller ones). */
const POOL_MAX_BYTES = 24 * 1024 * 1024;

/** What a body in lendable memory may leave of it: a sized read's 4-byte header and 1-byte slack (socket-reads.ts). */
const SIZED_READ_OVERHEAD_BYTES = 5;

/** Memories given back, waiting for a frame body of their exact size. */
const pool: ArrayBuffer[] = [];
let pooledBytes = 0;
/** ArrayBuffers this module handed out as frame bodies and that were not released yet. */
const lendable = new WeakSet<ArrayBuffer>();

/**
 * A buffer of `size` bytes (≥ {@link POOLED_BODY_MIN_BYTES}) for one frame
 * body: released memory of that exact size when there is some, else fresh.
 * Its contents are unspecified; the caller fills all of it.
 */
export function takeBody(size: number): Buffer {
  let memory: ArrayBuffer | undefined;
  for (let i = pool.length - 1; i >= 0; i--) {
    if (pool[i]!.byteLength === size) {
      memory = pool[i]!;
      pool.splice(i, 1);
      pooledBytes -= size;
      break;
    }
  }
  // Fresh memory outside the JS heap: keep the young generation moving, so it is freed by a scavenge (scavenge-nudge.ts).
  if (memory === undefined) nudgeYoungGeneration(size);
  const body = memory === undefined ? Buffer.allocUnsafeSlow(size) : Buffer.from(memory, 0, size);
  lendable.add(body.buffer);
  return body;
}

/**
 * A plain copy of `bytes` for a caller that keeps it (keptBody, shared-read-buffers.ts). A copy of
 * {@link POOLED_BODY_MIN_BYTES} or more is fresh memory outside the JS heap like a fresh body, so it nudges
 * the young generation too (scavenge-nudge.ts; a 64 KiB copy per message without it: 9–16 mark-compacts per
 * 20k on Node 24/26, bench/README.md round six).
 */
export function keptCopy(bytes: Uint8Array): Buffer {
  if (bytes.length >= POOLED_BODY_MIN_BYTES) nudgeYoungGeneration(bytes.length);
  return Buffer.from(bytes);
}

/**
 * A copy of `bytes` that {@link releaseBytes} accepts when it is at least
 * {@link POOLED_BODY_MIN_BYTES} long (a pooled buffer), else a plain copy:
 * for a received body that lies in a read buffer the next read overwrites.
 */
export function lendableCopy(bytes: Uint8Array): Buffer {
  if (bytes.length < POOLED_BODY_MIN_BYTES) return Buffer.from(bytes);
  const body = takeBody(bytes.length);
  body.set(bytes);
  return body;
}

/**
 * Gives the memory of a received byte string back to bulkhead, to be reused
 * for a later message of the same size. Opt-in, for callers that move many
 * large byte strings (≥ 16 KiB) and are done with each one: it spares the
 * allocation, and on Node 24 and 26 the garbage collection it causes.
 *
 * It releases the whole message the bytes arrived in: afterwards every view
 * of it — `bytes` itself and any other byte string of the same result, event,
 * item or params — is empty (length 0), never another message's bytes. Pass
 * only bytes that nothing else still uses, e.g. not bytes still being sent
 * or shared with other listeners.
 *
 * @returns true when the memory was taken back; false, changing nothing, when
 *   `bytes` is not a received byte string bulkhead owns: a buffer of your own,
 *   a small message (under 16 KiB) or one that arrived otherwise than over a
 *   socket, one already released, or one passed on as a payload of 64 KiB or
 *   more (it is sent from its own memory, which must not be reused). A small
 *   message that arrived alone in memory sized for a larger one (the read after
 *   a 16–80 KiB message, socket-reads.ts) is taken back too: true, and only that
 *   message is emptied.
 */
export function releaseBytes(bytes: Uint8Array): boolean {
  if (!(bytes instanceof Uint8Array)) return false;
  const memory = bytes.buffer as ArrayBuffer;
  if (!lendable.has(memory)) return false;
  lendable.delete(memory);
  // Detach first: the views the caller holds lose the memory before anything can reuse it.
  const kept = detach(memory);
  if (pool.length >= POOL_MAX_ENTRIES || pooledBytes + kept.byteLength > POOL_MAX_BYTES) {
    const oldest = pool.shift();
    if (oldest !== undefined) pooledBytes -= oldest.byteLength;
  }
  if (pooledBytes + kept.byteLength <= POOL_MAX_BYTES) {
    pool.push(kept);
    pooledBytes += kept.byteLength;
  }
  return true;
}

/**
 * `bytes` is about to be queued for sending by reference (the large-bytes path,
 * a forwarded body) or kept by a channel handler (`keptBody`): its memory can
 * never be released from then on, so a caller who releases it early cannot
 * make a queued write send a later message's bytes, and {@link releaseIfUnviewed}
 * leaves it alone. It is then freed by the garbage collector as usual.
 */
export function keepForSending(bytes: Uint8Array): void {
  lendable.delete(bytes.buffer as ArrayBuffer);
}

/**
 * Received bodies of {@link POOLED_BODY_MIN_BYTES} or more that were decoded into values holding no
 * view of them (no byte string: cbor-x copied everything out). Keyed by the body object itself, so a
 * decode of some other view of the same memory never marks it.
 */
const decodedWithoutViews = new WeakSet<Uint8Array>();

/** The decoder read all of `body` into fresh values (decode-scratch.ts): no value points into its memory. */
export function noteDecodedWithoutViews(body: Uint8Array): void {
  if (body.length >= POOLED_BODY_MIN_BYTES) decodedWithoutViews.add(body);
}

/**
 * Gives a received frame body back to the pool once its channel's handler returned, when nothing can
 * reach its memory: it was decoded into values holding no view of it ({@link noteDecodedWithoutViews})
 * and nobody kept it (`keptBody`, a forward or `sendRaw` mark it with {@link keepForSending}; handlers
 * keep bodies only that way, since a body may lie in a read buffer the next read overwrites).
 * Detached as {@link releaseBytes} does, so a holder this reasoning missed reads an empty buffer,
 * never a later message. Anything else (a small body, one not from this pool, a view into a larger
 * memory but a sized read's, one decoded with byte strings) is left to the garbage collector. Lendable
 * memory holds one message's bytes only: a sized read that held more than one body was marked kept
 * (FrameDecoder.push, socket-reads.ts).
 */
export function releaseIfUnviewed(body: Uint8Array): void {
  if (body.length < POOLED_BODY_MIN_BYTES || !decodedWithoutViews.delete(body)) return;
  // A body spans its memory, but for a sized read's header and slack (socket-reads.ts): no other frame's bytes in it.
  if (body.buffer.byteLength - body.byteLength > SIZED_READ_OVERHEAD_BYTES) return;
  releaseBytes(body);
}

/** Bytes waiting for reuse (for tests and measurements). */
export function pooledBodyBytes(): number {
  return pooledBytes;
}

/** Moves `memory`'s bytes to a new ArrayBuffer without copying; `memory` and its views become empty. */
function detach(memory: ArrayBuffer): ArrayBuffer {
  const withTransfer = memory as ArrayBuffer & { transfer?: () => ArrayBuffer };
  // ArrayBuffer.prototype.transfer: Node ≥ 21. On Node 20, structuredClone's transfer list does the same.
  if (typeof withTransfer.transfer === 'function') return withTransfer.transfer();
  return structuredClone(memory, { transfer: [memory] });
}
