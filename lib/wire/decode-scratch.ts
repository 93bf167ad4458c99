/**
 * Decoding a small frame body from one reused buffer. cbor-x builds a
 * DataView for every new source buffer and stores it on the buffer as a
 * property: for a fresh body per frame (the channel hands each frame over in
 * a copy of its own) that cost ~100 ns of a ~700 ns decode. Copying the body
 * into one buffer whose DataView cbor-x keeps costs a few ns.
 *
 * Only for values that cannot point into their source: cbor-x returns byte
 * strings as views of it, so a body that holds one (codec.ts's scan says so)
 * is decoded in place. The caller has checked that the item ends exactly at
 * the body's end, so the scratch's older bytes past it are never read.
 * @module
 */
// The module's binding, not the global: on Node 20 the global `Buffer` is a getter, a function call per use.
import { Buffer } from 'node:buffer';
import { noteDecodedWithoutViews } from './body-pool.js';

/** Frame bodies up to this size are decoded from the scratch; larger ones in place. */
export const DECODE_SCRATCH_BYTES = 4096;

/** A cbor-x decoder, with the `end` argument its types do not declare (decode `source` up to `end`). */
interface DecoderWithEnd {
  decode(source: Uint8Array, end?: number): unknown;
}

/** One buffer for every such decode (decoding never re-enters), allocated at the first. */
let scratch: Buffer | undefined;

/**
 * Decodes `body` (which holds no byte string) with `decoder`, from the scratch when it fits. The caller
 * (codec.ts) tries the plain decoder first (plain-decode.ts, which copies every string out too).
 */
export function decodeWithoutViews(decoder: object, body: Uint8Array): unknown {
  const d = decoder as DecoderWithEnd;
  if (body.length > DECODE_SCRATCH_BYTES) {
    // Large bodies with cbor-x: the plain decoder does not pay there (plain-decode.ts, PLAIN_MAX_BYTES).
    const value = d.decode(body);
    // Its memory may go back to the pool once the channel's handler is done (body-pool.ts, releaseIfUnviewed).
    noteDecodedWithoutViews(body);
    return value;
  }
  scratch ??= Buffer.allocUnsafeSlow(DECODE_SCRATCH_BYTES);
  scratch.set(body);
  return d.decode(scratch, body.length);
}
