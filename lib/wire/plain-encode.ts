/**
 * Encoding the common small item without cbor-x: the mirror of plain-decode.ts.
 *
 * cbor-x's `encode()` is general: per call it resets its shared-structure,
 * bundling, packing and reference-tracking state, and per value it walks a
 * long chain of type and option checks. For the envelopes a service sends most
 * (events, replies: small arrays and maps of numbers and short ASCII text)
 * that was about a third of a helper's busy CPU per event (bench/README.md,
 * round seven). Here only the plainest part of the data model is encoded,
 * into a shared slab as cbor-x does: integers, other numbers as float64,
 * ASCII text, arrays and plain objects (`constructor === Object`), false, true,
 * null, undefined. Anything else (byte strings and other typed arrays,
 * bigints, non-ASCII text, Maps, class instances, null-prototype objects,
 * objects with an own `hasOwnProperty`, nesting deeper than
 * {@link PLAIN_ENCODE_MAX_DEPTH}, an item that does not fit the slab's free
 * part) returns undefined and the caller encodes the value with cbor-x.
 *
 * The bytes are exactly cbor-x's (1.6.x, codec.ts's options: no records, maps
 * as objects, no tagging, packing, bundling or structured clone): the same
 * integer heads (including cbor-x's `-0` as 0 and its 0x3a for integers down
 * to -2^32), float64 for every other number, minimal heads for text and
 * arrays, and cbor-x's map head for objects, always the 2-byte count (0xb9),
 * keys in `for...in` order. test/wire-plain-encode.test.ts compares the two
 * byte for byte on generated items.
 * @module
 */

// The module's binding, not the global: on Node 20 the global `Buffer` is a getter, a function call per use.
import { Buffer } from 'node:buffer';
import { FRAME_HEADER_BYTES } from './frame-decoder.js';

/** Containers nested deeper than this are left to cbor-x (the peer refuses them anyway: MAX_FRAME_DEPTH). */
export const PLAIN_ENCODE_MAX_DEPTH = 64;
/** The slab items are written into; returned bodies are views of it, never written again. */
const SLAB_BYTES = 64 * 1024;
/** A new slab is taken when less than this is left, so that most items fit. */
const SLAB_MIN_FREE = 8 * 1024;
/** Strings up to this length are written char by char; longer ones are checked with a regular expression and written by Buffer. */
const SHORT_STRING = 64;

// eslint-disable-next-line @typescript-eslint/unbound-method -- compared by identity, and called with .call
const hasOwnProperty = Object.prototype.hasOwnProperty;
// eslint-disable-next-line no-control-regex -- the point: anything outside ASCII
const NON_ASCII = /[^\x00-\x7f]/;

/**
 * The slab items are written into (a live binding: a new one is taken when
 * little is left). Bytes before {@link plainNext} are never written again, so a
 * view of them, or of a run of frames placed one after the other, stays valid.
 */
export let plainSlab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let view = new DataView(plainSlab.buffer, plainSlab.byteOffset, plainSlab.byteLength);
/** Where the next item starts in {@link plainSlab}: the end of the last item placed (a live binding). */
export let plainNext = 0;

/** What the writers return for "leave this value to cbor-x" (positions are ≥ 0). */
const BAIL = -1;

/**
 * `value` encoded as one CBOR item, byte for byte what codec.ts's cbor-x
 * encoder writes, or undefined when it holds something left to cbor-x. The
 * returned buffer is not reused by later calls (it may be held by a pending
 * write), like cbor-x's.
 */
export function encodePlain(value: unknown): Buffer | undefined {
  return encodeInSlab(value, 0);
}

/**
 * `value` as a whole frame: the 4-byte big-endian length of {@link encodePlain}'s
 * bytes, then those bytes, written in place in the slab (undefined where
 * encodePlain's would be). A channel writes it as it is: no buffer allocated and
 * no copy to put the length in front, which a lone frame (a round trip's
 * request or reply) otherwise cost on each end (bench/README.md, round ten).
 */
export function encodePlainFrame(value: unknown): Buffer | undefined {
  return encodeInSlab(value, FRAME_HEADER_BYTES);
}

/** Encodes `value` after `headerBytes` left for a length prefix (written when there are any). */
function encodeInSlab(value: unknown, headerBytes: number): Buffer | undefined {
  const length = placeInSlab(value, headerBytes);
  return length === BAIL ? undefined : plainSlab.subarray(plainNext - length, plainNext);
}

/**
 * Like {@link encodePlainFrame}, but makes no view: the frame's length, its
 * bytes the last `length` before {@link plainNext} in {@link plainSlab}, or -1
 * where encodePlainFrame gives undefined.
 */
export function placePlainFrame(value: unknown): number {
  return placeInSlab(value, FRAME_HEADER_BYTES);
}

function placeInSlab(value: unknown, headerBytes: number): number {
  if (SLAB_BYTES - plainNext < SLAB_MIN_FREE) newSlab();
  const start = plainNext;
  const end = write(plainSlab, value, start + headerBytes, 0);
  if (end === BAIL) return BAIL;
  if (headerBytes !== 0) view.setUint32(start, end - start - headerBytes);
  plainNext = end;
  return end - start;
}

function newSlab(): void {
  plainSlab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  view = new DataView(plainSlab.buffer, plainSlab.byteOffset, plainSlab.byteLength);
  plainNext = 0;
}

/**
 * The envelope `[kind, a, b, c, d]` cut to its first `length` elements (3 to 5)
 * placed in {@link plainSlab} as a whole frame, as {@link placePlainFrame}
 * places that array (the same bytes), with no view made (a channel keeps one
 * view per run of frames, outbox.ts): the frame's length, its bytes the last
 * `length` before {@link plainNext}, or -1 where placePlainFrame gives -1. For
 * the envelopes sent per call, reply, event and item (envelope.ts): no array is
 * built for them, and their kind and id are written without the generic walk's
 * type dispatch.
 */
export function placePlainEnvelopeFrame(kind: number, length: number, a: unknown, b: unknown, c?: unknown, d?: unknown): number {
  if (SLAB_BYTES - plainNext < SLAB_MIN_FREE) newSlab();
  const out = plainSlab;
  const start = plainNext;
  // Both heads are one byte (fewer than 24 elements; kinds are below 24), and SLAB_MIN_FREE is left for them.
  out[start + FRAME_HEADER_BYTES] = 0x80 | length;
  out[start + FRAME_HEADER_BYTES + 1] = kind;
  let p = start + FRAME_HEADER_BYTES + 2;
  p = typeof a === 'number' ? number(out, a, p) : write(out, a, p, 1);
  if (p !== BAIL) p = write(out, b, p, 1);
  if (length > 3 && p !== BAIL) p = write(out, c, p, 1);
  if (length > 4 && p !== BAIL) p = write(out, d, p, 1);
  if (p === BAIL) return BAIL;
  view.setUint32(start, p - start - FRAME_HEADER_BYTES);
  plainNext = p;
  return p - start;
}

// Each writer takes the slab and a position and returns the position after what it wrote, or BAIL.
// (Positions in locals, not module state: about a fifth faster per item.)

// `typeof value === '…'` each time, not `switch (typeof value)`: V8 turns the former into a type check and
// the latter into a call of its Typeof builtin (plain-check.ts does the same; round eleven measured it here).
function write(out: Buffer, value: unknown, at: number, depth: number): number {
  if (at + 9 > SLAB_BYTES) return BAIL;
  if (typeof value === 'string') return text(out, value, at);
  if (typeof value === 'number') return number(out, value, at);
  if (typeof value === 'object') {
    if (value === null) {
      out[at] = 0xf6;
      return at + 1;
    }
    if (depth >= PLAIN_ENCODE_MAX_DEPTH) return BAIL;
    if (Array.isArray(value)) {
      if (value.constructor !== Array) return BAIL;
      const length = value.length;
      let p = head(out, 0x80, length, at);
      for (let i = 0; i < length && p !== BAIL; i++) p = write(out, value[i], p, depth + 1);
      return p;
    }
    if ((value as { constructor?: unknown }).constructor === Object) return object(out, value as Record<string, unknown>, at, depth);
    return BAIL;
  }
  if (typeof value === 'boolean') {
    out[at] = value ? 0xf5 : 0xf4;
    return at + 1;
  }
  if (value === undefined) {
    out[at] = 0xf7;
    return at + 1;
  }
  return BAIL; // bigints, functions, symbols
}

/** cbor-x's map: head 0xb9 and a 2-byte count, then each own enumerable key and its value, in cbor-x's loop. */
function object(out: Buffer, value: Record<string, unknown>, at: number, depth: number): number {
  // cbor-x filters `for...in` with the object's own `hasOwnProperty`: only the standard one is mirrored here.
  if (value.hasOwnProperty !== hasOwnProperty) return BAIL;
  // The count is written after the entries, as cbor-x does (for...in is ~15% faster here than Object.keys and a keyed load).
  let p = at + 3;
  let length = 0;
  for (const key in value) {
    if (!hasOwnProperty.call(value, key)) continue;
    if (p + 9 > SLAB_BYTES || length === 0xffff) return BAIL;
    length++;
    p = text(out, key, p);
    if (p === BAIL) return BAIL;
    p = write(out, value[key], p, depth + 1);
    if (p === BAIL) return BAIL;
  }
  out[at] = 0xb9;
  out[at + 1] = length >> 8;
  out[at + 2] = length & 0xff;
  return p;
}

/** A head of major type `major` (its top 3 bits) with argument `n` (0 ≤ n < 2^32), minimal, as cbor-x writes array and text heads. */
function head(out: Buffer, major: number, n: number, at: number): number {
  if (n < 0x18) {
    out[at] = major | n;
    return at + 1;
  }
  if (n < 0x100) {
    out[at] = major | 24;
    out[at + 1] = n;
    return at + 2;
  }
  if (n < 0x10000) {
    out[at] = major | 25;
    out[at + 1] = n >> 8;
    out[at + 2] = n & 0xff;
    return at + 3;
  }
  out[at] = major | 26;
  view.setUint32(at + 1, n);
  return at + 5;
}

/** cbor-x's number encoding with its default options (no float32, no alwaysUseFloat). */
function number(out: Buffer, value: number, at: number): number {
  // A uint of up to 32 bits (and -0, which cbor-x writes as 0).
  if (value >>> 0 === value) return head(out, 0x00, value >>> 0, at);
  // A negative int of up to 31 bits.
  if (value >> 0 === value) return head(out, 0x20, ~value, at);
  if (value < 0 && value >= -0x100000000 && Math.floor(value) === value) {
    out[at] = 0x3a;
    view.setUint32(at + 1, -1 - value);
    return at + 5;
  }
  out[at] = 0xfb;
  view.setFloat64(at + 1, value);
  return at + 9;
}

/** ASCII text with a minimal head; anything else bails. */
function text(out: Buffer, value: string, at: number): number {
  const length = value.length;
  if (at + 5 + length > SLAB_BYTES) return BAIL;
  let p = head(out, 0x60, length, at);
  if (length <= SHORT_STRING) {
    for (let i = 0; i < length; i++) {
      const c = value.charCodeAt(i);
      if (c >= 0x80) return BAIL;
      out[p++] = c;
    }
    return p;
  }
  if (NON_ASCII.test(value)) return BAIL;
  // Known to be ASCII, which latin1 writes alike.
  return p + out.write(value, p, length, 'latin1');
}
