/**
 * The wire's size and shape limits (docs/wire.md): how deep a value may nest, how many arrays, maps
 * and byte strings a frame may hold, how wide a bignum may be. Shared by the codec's byte scan
 * (codec.ts) and the plain-data check (plain-check.ts); codec.ts re-exports them.
 * @module
 */

/**
 * Deepest nesting of arrays/objects in one value that may cross the wire
 * (params, result, event payload, hello info, error data): a value that is
 * itself an array or object counts as 1. Checked by `describeNonPlain` (plain-check.ts).
 */
export const MAX_DEPTH = 64;

/**
 * Deepest nesting of arrays/maps accepted in one frame's CBOR item:
 * {@link MAX_DEPTH} plus 2 for the envelope array and an error body map, so
 * that every value `describeNonPlain` (plain-check.ts) accepts also decodes at the peer.
 */
export const MAX_FRAME_DEPTH = MAX_DEPTH + 2;

/**
 * Longest byte string accepted under a bignum tag (2 or 3): 64 bytes, 512 bits.
 * cbor-x converts bignums in quadratic time, so longer ones are refused.
 */
export const MAX_BIGNUM_BYTES = 64;

/**
 * Arrays, maps and byte strings any frame body may hold, whatever its size:
 * enough for every envelope at full nesting ({@link MAX_FRAME_DEPTH}) and for
 * small messages of any shape. See {@link maxFrameObjects}.
 */
export const FRAME_OBJECT_ALLOWANCE = 1024;

/**
 * Body bytes that pay for each array, map or byte string beyond
 * {@link FRAME_OBJECT_ALLOWANCE}. Each of these decodes to a JS object of
 * 40–110 bytes of heap (an empty map ~64, an empty byte string ~104) however
 * few bytes it takes on the wire (one), so without this a 16 MiB frame of
 * `a0 a0 a0 …` would pin ~1 GiB. At 8 bytes each, a frame of empty maps costs
 * about what an array of one-byte integers does: 8 bytes of heap per wire byte.
 */
export const BYTES_PER_OBJECT = 8;

/**
 * Most arrays, maps and byte strings (counted together, at every depth, the
 * envelope and bignum byte strings included) that a frame body of
 * `bodyLength` bytes may hold: {@link FRAME_OBJECT_ALLOWANCE} +
 * ⌊bodyLength / {@link BYTES_PER_OBJECT}⌋. One more is `ERR_BAD_FRAME`.
 */
export function maxFrameObjects(bodyLength: number): number {
  return FRAME_OBJECT_ALLOWANCE + Math.floor(bodyLength / BYTES_PER_OBJECT);
}

/** Byte strings at least this long are sent from the caller's Buffer, not copied (large-bytes.ts); `describeNonPlain` (plain-check.ts) counts them. */
export const LARGE_BYTES_THRESHOLD = 64 * 1024;
