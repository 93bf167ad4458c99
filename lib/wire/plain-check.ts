/**
 * The plain-data check: what may cross the wire as a value (null, booleans, numbers, bigints that fit a
 * bignum the peer accepts, strings, Uint8Array/Buffer, arrays and plain objects, nested at most
 * {@link MAX_DEPTH} deep). Senders run it on what they send ({@link describeNonPlain}, which also
 * applies the frame object limit), the codec on what cbor-x decoded (codec.ts, `decodeItem`).
 * @module
 */
// The module's binding, not the global: on Node 20 the global `Buffer` is a getter, a function call per use.
import { Buffer } from 'node:buffer';
import { BYTES_PER_OBJECT, FRAME_OBJECT_ALLOWANCE, LARGE_BYTES_THRESHOLD, MAX_BIGNUM_BYTES, MAX_DEPTH, maxFrameObjects } from './wire-limits.js';

/**
 * Arrays/maps the envelope may add around a value checked by
 * {@link describeNonPlain}: an error envelope's array, its body map and its
 * data map.
 */
const ENVELOPE_OBJECTS = 3;

/** 2^(8·MAX_BIGNUM_BYTES): bigints in [-limit, limit) fit a bignum the peer accepts. */
const BIGNUM_LIMIT = 1n << BigInt(MAX_BIGNUM_BYTES * 8);

/** cbor-x writes bigints in [-2^64, 2^64) with an 8-byte head (`0x1b`/`0x3b`), wider ones as bignums. */
const INT64_LIMIT = 1n << 64n;

/**
 * Describes the first value in `value` that may not cross the wire (e.g.
 * "a Date object"), or returns undefined when all of it is plain data.
 * Senders use it to fail one call instead of sending a frame the peer must reject.
 *
 * It also applies the peer's {@link maxFrameObjects} rule to `value` plus
 * {@link ENVELOPE_OBJECTS} envelope arrays/maps, against a lower bound of the
 * size bulkhead's encoder writes (exact but for non-ASCII text, counted as one
 * byte per UTF-16 unit): a value it accepts never makes a frame the peer
 * rejects for that rule; one just under the limit may be refused.
 */
export function describeNonPlain(value: unknown, tally: PlainTally = newPlainTally()): string | undefined {
  const problem = findNonPlain(value, 0, MAX_DEPTH, tally);
  if (problem !== undefined) return problem;
  const objects = tally.objects + ENVELOPE_OBJECTS;
  if (objects > maxFrameObjects(tally.bytes)) {
    return `${tally.objects} arrays, objects and byte strings in at least ${tally.bytes} bytes: a frame may hold at most ${FRAME_OBJECT_ALLOWANCE} + 1 per ${BYTES_PER_OBJECT} bytes of it (docs/wire.md, section 3); send fewer, larger items (e.g. one flat array or a byte string instead of many tiny arrays or objects)`;
  }
  return undefined;
}

/**
 * What {@link describeNonPlain} counts: arrays, objects and byte strings, a
 * lower bound of the bytes cbor-x (as configured here) encodes the value to,
 * and the byte strings of at least {@link LARGE_BYTES_THRESHOLD} bytes. A
 * sender passes one in to learn `large`: when it is 0 the value can be encoded
 * without the large-bytes search (one walk of the value instead of two).
 */
export interface PlainTally {
  objects: number;
  bytes: number;
  large: number;
}

/** A zeroed {@link PlainTally}. */
export function newPlainTally(): PlainTally {
  return { objects: 0, bytes: 0, large: 0 };
}

/** Size of the shortest CBOR head for argument `arg` (< 2^32). */
function headBytes(arg: number): number {
  return arg < 24 ? 1 : arg < 0x100 ? 2 : arg < 0x10000 ? 3 : 5;
}

/** Fewest bytes cbor-x writes for a number: shortest integer head below 2^32 in magnitude, else float64. */
function numberBytes(n: number): number {
  if (!Number.isInteger(n) || n >= 2 ** 32 || n < -(2 ** 32)) return 9;
  return headBytes(n >= 0 ? n : -1 - n);
}

/** Fewest bytes a text string takes: a head for at least its UTF-16 length, and at least that many UTF-8 bytes. */
function textBytes(s: string): number {
  return headBytes(s.length) + s.length;
}

// Looked up once (findNonPlain runs per object of every message sent or received).
const BUFFER_PROTOTYPE = Buffer.prototype as object;
const UINT8ARRAY_PROTOTYPE = Uint8Array.prototype as object;
const OBJECT_PROTOTYPE = Object.prototype as object;
const getPrototypeOf = Object.getPrototypeOf;
// `typeof value === '…'` each time, not `switch (typeof value)`: V8 turns the former into a type check, the latter into a Typeof builtin call (round seven).
export function findNonPlain(value: unknown, depth: number, limit: number, tally?: PlainTally): string | undefined {
  if (typeof value === 'string') {
    if (tally !== undefined) tally.bytes += textBytes(value);
    return undefined;
  }
  if (typeof value === 'number') {
    if (tally !== undefined) tally.bytes += numberBytes(value);
    return undefined;
  }
  if (typeof value === 'object') {
    if (value === null) {
      if (tally !== undefined) tally.bytes += 1;
      return undefined;
    }
    const proto = getPrototypeOf(value) as unknown;
    // A byte string is a leaf, like a string: it adds no nesting level.
    if (proto === BUFFER_PROTOTYPE || proto === UINT8ARRAY_PROTOTYPE) {
      if (tally !== undefined) {
        const length = (value as Uint8Array).length;
        tally.objects++;
        tally.bytes += headBytes(length) + length;
        if (length >= LARGE_BYTES_THRESHOLD) tally.large++;
      }
      return undefined;
    }
    if (depth >= limit) return `nesting deeper than ${limit}`;
    if (Array.isArray(value)) {
      if (tally !== undefined) {
        tally.objects++;
        tally.bytes += headBytes(value.length);
      }
      for (let i = 0; i < value.length; i++) {
        const item = value[i] as unknown;
        // Strings and numbers, most items, are counted here: no call per leaf (round ten). Written out again in the map loop on purpose: a shared function cost +2-6% CPU per describeNonPlain on Node 24, +7-12% on Node 20 (bench/ab/plain-leaf-ab.mjs, round eleven).
        if (typeof item === 'string') {
          if (tally !== undefined) tally.bytes += textBytes(item);
          continue;
        }
        if (typeof item === 'number') {
          if (tally !== undefined) tally.bytes += numberBytes(item);
          continue;
        }
        const problem = findNonPlain(item, depth + 1, limit, tally);
        if (problem !== undefined) return problem;
      }
      return undefined;
    }
    if (proto !== OBJECT_PROTOTYPE) {
      const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
      return `a ${typeof name === 'string' ? name : 'non-plain'} object`;
    }
    // cbor-x writes an object's map head with a count of at least 2 bytes (b9 00 00).
    if (tally !== undefined) {
      tally.objects++;
      tally.bytes += 3;
    }
    for (const key in value) {
      if (tally !== undefined) tally.bytes += textBytes(key);
      const item = (value as Record<string, unknown>)[key];
      // The array loop's leaf counting, inline for the same measured reason.
      if (typeof item === 'string') {
        if (tally !== undefined) tally.bytes += textBytes(item);
        continue;
      }
      if (typeof item === 'number') {
        if (tally !== undefined) tally.bytes += numberBytes(item);
        continue;
      }
      const problem = findNonPlain(item, depth + 1, limit, tally);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  if (typeof value === 'boolean' || typeof value === 'undefined') {
    if (tally !== undefined) tally.bytes += 1;
    return undefined;
  }
  if (typeof value === 'bigint') {
    // Outside this range cbor-x writes a bignum longer than MAX_BIGNUM_BYTES, which the peer refuses.
    if (value < -BIGNUM_LIMIT || value >= BIGNUM_LIMIT) return `a bigint wider than ${MAX_BIGNUM_BYTES * 8} bits`;
    if (tally !== undefined) {
      if (value >= -INT64_LIMIT && value < INT64_LIMIT) tally.bytes += 9; // an 8-byte head
      else {
        // A bignum: tag, head and at least 9 bytes of magnitude, and its byte string counts as an object.
        tally.objects++;
        tally.bytes += 11;
      }
    }
    return undefined;
  }
  return `a ${typeof value}`;
}
