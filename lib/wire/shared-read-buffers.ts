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

/** The shared read buffer, allocated on first use. */
export function sharedRead(): Buffer {
  return (sharedReadBuffer ??= Buffer.allocUnsafeSlow(READ_BUFFER_BYTES));
}

/** The shared probe buffer, allocated on first use. */
export function sharedProbe(): Buffer {
  return (sharedProbeBuffer ??= Buffer.allocUnsafeSlow(PROBE_READ_BYTES));
}

/**
 * True when `bytes` lies in one of the read buffers every channel shares: the
 * next read overwrites it. A body handed to a channel's handler may be such a
 * view (framed-channel.ts decodes small frames straight from it); whoever
 * keeps one past the handler's return keeps {@link keptBody} of it instead.
 */
export function inSharedReadBuffer(bytes: Uint8Array): boolean {
  const memory = bytes.buffer;
  return memory === sharedReadBuffer?.buffer || memory === sharedProbeBuffer?.buffer;
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
