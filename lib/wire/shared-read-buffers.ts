/**
 * The read buffers every socket channel shares (socket-reads.ts reads into
 * them), in a module of their own so the codec can tell a view of one
 * without importing node:net.
 * @module
 */
// The module's binding, not the global: on Node 20 the global `Buffer` is a getter, a function call per use.
import { Buffer } from 'node:buffer';
import { keepForSending, keptCopy, lendableCopy } from './body-pool.js';

/** Size of the shared read buffer (Node's own read size). */
export const READ_BUFFER_BYTES = 64 * 1024;
/**
 * Size of the read at a frame boundary after a large frame. A 64 KiB read that starts a large frame
 * fills the shared buffer with its body, all of which is then copied into the body. After a large
 * frame the next one is likely large too, so the next header is read with this small buffer and the
 * rest of the body straight into it by the kernel. One small read first when small frames follow.
 */
export const PROBE_READ_BYTES = 4 * 1024;

/** One read buffer for all channels: each read is consumed before libuv reads again, so idle channels hold none. */
let sharedReadBuffer: Buffer | undefined;
/** Shared like the read buffer. */
let sharedProbeBuffer: Buffer | undefined;
/**
 * Their memories, kept once: `.buffer` is a call into V8's runtime on Node 24 (not inlined: ~2% of a
 * helper's samples per round trip when read three times per read, round eight).
 */
let sharedReadMemory: ArrayBufferLike | undefined;
let sharedProbeMemory: ArrayBufferLike | undefined;

/** The shared read buffer, allocated on first use. */
export function sharedRead(): Buffer {
  if (sharedReadBuffer === undefined) {
    sharedReadBuffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
    sharedReadMemory = sharedReadBuffer.buffer;
  }
  return sharedReadBuffer;
}

/** The shared probe buffer, allocated on first use. */
export function sharedProbe(): Buffer {
  if (sharedProbeBuffer === undefined) {
    sharedProbeBuffer = Buffer.allocUnsafeSlow(PROBE_READ_BYTES);
    sharedProbeMemory = sharedProbeBuffer.buffer;
  }
  return sharedProbeBuffer;
}

/** True when `buffer` is one of the shared read buffers itself (what a read was given), by identity: no `.buffer`. */
export function isSharedReadBuffer(buffer: Uint8Array): boolean {
  return buffer === sharedReadBuffer || buffer === sharedProbeBuffer;
}

/**
 * True when `bytes` lies in one of the read buffers every channel shares: the
 * next read overwrites it. A body handed to a channel's handler may be such a
 * view (framed-channel.ts decodes small frames straight from it); whoever
 * keeps one past the handler's return keeps {@link keptBody} of it instead.
 */
export function inSharedReadBuffer(bytes: Uint8Array): boolean {
  if (sharedReadMemory === undefined && sharedProbeMemory === undefined) return false;
  const memory = bytes.buffer;
  return memory === sharedReadMemory || memory === sharedProbeMemory;
}

/**
 * `body` itself, or a copy of it when it lies in a shared read buffer (see {@link inSharedReadBuffer}).
 * `lendable`: a copy of 16 KiB or more comes from body-pool.ts, so `releaseBytes` takes its byte strings back
 * (the decoder's use: its values are views of the result). Otherwise the caller keeps the body itself, so
 * `body` is marked as kept: its memory is never given back to the pool (body-pool.ts, releaseIfUnviewed).
 */
export function keptBody<B extends Uint8Array>(body: B, lendable = false): B | Buffer {
  if (!inSharedReadBuffer(body)) {
    if (!lendable) keepForSending(body);
    return body;
  }
  return lendable ? lendableCopy(body) : keptCopy(body);
}
