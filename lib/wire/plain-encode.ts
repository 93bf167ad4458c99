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

/** Containers nested deeper than this are left to cbor-x (the peer refuses them anyway: MAX_FRAME_DEPTH). */
export const PLAIN_ENCODE_MAX_DEPTH = 64;
/** The slab items are written into; returned bodies are views of it, never written again. */
const SLAB_BYTES = 64 * 1024;
/** A new slab is taken when less than this is left, so that most items fit. */
const SLAB_MIN_FREE = 8 * 1024;
/** Strings up to this length are written char by char; longer ones are checked with a regular expression and written by Buffer. */
const SHORT_STRING = 64;

const hasOwnProperty = Object.prototype.hasOwnProperty;
// eslint-disable-next-line no-control-regex -- the point: anything outside ASCII
const NON_ASCII = /[^\x00-\x7f]/;

let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let view = new DataView(slab.buffer, slab.byteOffset, slab.byteLength);
let pos = 0;
let end = 0;
let bail = false;

/**
 * `value` encoded as one CBOR item, byte for byte what codec.ts's cbor-x
 * encoder writes, or undefined when it holds something left to cbor-x. The
 * returned buffer is not reused by later calls (it may be held by a pending
 * write), like cbor-x's.
 */
export function encodePlain(value: unknown): Buffer | undefined {
  if (SLAB_BYTES - pos < SLAB_MIN_FREE) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    view = new DataView(slab.buffer, slab.byteOffset, slab.byteLength);
    pos = 0;
  }
  const start = pos;
  end = SLAB_BYTES;
  bail = false;
  write(value, 0);
  if (bailed()) {
    pos = start;
    return undefined;
  }
  return slab.subarray(start, pos);
}

/** `bail` read through a call: TypeScript would otherwise narrow it to `false` across the calls that set it. */
function bailed(): boolean {
  return bail;
}

function write(value: unknown, depth: number): void {
  if (bail) return;
  if (pos + 9 > end) {
    bail = true;
    return;
  }
  switch (typeof value) {
    case 'string':
      text(value);
      return;
    case 'number':
      number(value);
      return;
    case 'boolean':
      slab[pos++] = value ? 0xf5 : 0xf4;
      return;
    case 'undefined':
      slab[pos++] = 0xf7;
      return;
    case 'object':
      if (value === null) {
        slab[pos++] = 0xf6;
        return;
      }
      if (depth >= PLAIN_ENCODE_MAX_DEPTH) break;
      if (Array.isArray(value)) {
        if (value.constructor !== Array) break;
        const length = value.length;
        head(0x80, length);
        for (let i = 0; i < length && !bail; i++) write(value[i], depth + 1);
        return;
      }
      if ((value as { constructor?: unknown }).constructor === Object) {
        object(value as Record<string, unknown>, depth);
        return;
      }
      break;
  }
  bail = true; // bigints, byte strings and other objects, functions, symbols
}

/** cbor-x's map: head 0xb9 and a 2-byte count, then each own enumerable key and its value, in cbor-x's loop. */
function object(value: Record<string, unknown>, depth: number): void {
  // cbor-x filters `for...in` with the object's own `hasOwnProperty`: only the standard one is mirrored here.
  if (value.hasOwnProperty !== hasOwnProperty) {
    bail = true;
    return;
  }
  // The count is written after the entries, as cbor-x does (for...in is ~15% faster here than Object.keys and a keyed load).
  const at = pos;
  pos += 3;
  let length = 0;
  for (const key in value) {
    if (!hasOwnProperty.call(value, key)) continue;
    if (pos + 9 > end || length === 0xffff) {
      bail = true;
      return;
    }
    length++;
    text(key);
    write(value[key], depth + 1);
    if (bail) return;
  }
  slab[at] = 0xb9;
  slab[at + 1] = length >> 8;
  slab[at + 2] = length & 0xff;
}

/** A head of major type `major` (its top 3 bits) with argument `n` (0 ≤ n < 2^32), minimal, as cbor-x writes array and text heads. */
function head(major: number, n: number): void {
  if (n < 0x18) slab[pos++] = major | n;
  else if (n < 0x100) {
    slab[pos++] = major | 24;
    slab[pos++] = n;
  } else if (n < 0x10000) {
    slab[pos++] = major | 25;
    slab[pos++] = n >> 8;
    slab[pos++] = n & 0xff;
  } else {
    slab[pos++] = major | 26;
    view.setUint32(pos, n);
    pos += 4;
  }
}

/** cbor-x's number encoding with its default options (no float32, no alwaysUseFloat). */
function number(value: number): void {
  if (value >>> 0 === value) {
    // A uint of up to 32 bits (and -0, which cbor-x writes as 0).
    head(0x00, value >>> 0);
  } else if (value >> 0 === value) {
    // A negative int of up to 31 bits.
    head(0x20, ~value);
  } else if (value < 0 && value >= -0x100000000 && Math.floor(value) === value) {
    slab[pos++] = 0x3a;
    view.setUint32(pos, -1 - value);
    pos += 4;
  } else {
    slab[pos++] = 0xfb;
    view.setFloat64(pos, value);
    pos += 8;
  }
}

/** ASCII text with a minimal head; anything else bails. */
function text(value: string): void {
  const length = value.length;
  if (pos + 5 + length > end) {
    bail = true;
    return;
  }
  head(0x60, length);
  if (length <= SHORT_STRING) {
    for (let i = 0; i < length; i++) {
      const c = value.charCodeAt(i);
      if (c >= 0x80) {
        bail = true;
        return;
      }
      slab[pos++] = c;
    }
    return;
  }
  if (NON_ASCII.test(value)) {
    bail = true;
    return;
  }
  // Known to be ASCII, which latin1 writes alike.
  pos += slab.write(value, pos, length, 'latin1');
}
