/**
 * The safe CBOR codec: cbor-x with records, structured cloning and tagged typed arrays off, behind a check of
 * the raw bytes and a check of the result.
 *
 * Plain data is what JSON can express plus byte strings and `undefined`: null, booleans, numbers, bigints,
 * strings, Uint8Array/Buffer, arrays and plain objects, nested at most {@link MAX_DEPTH} deep.
 *
 * cbor-x alone is not enough: it turns tags into live values, and several tags yield values that look plain
 * (records, value sharing, packed tables, tag 27 calling `Object`), one (value sharing) lets a few hundred bytes
 * expand into an exponentially large tree, and its recursion overflows the stack on deep input. So
 * {@link decodeItem} first walks the bytes without recursion (`scanItem`) and accepts only the data model of
 * docs/wire.md: no tags but bignums (2, 3) on byte strings of at most {@link MAX_BIGNUM_BYTES}, text map keys
 * only, no simple values but false/true/null/undefined, no indefinite-length strings, nesting at most
 * {@link MAX_FRAME_DEPTH}, at most {@link maxFrameObjects} arrays, maps and byte strings, exactly one item.
 * Only then is the value built (cbor-x, or plain-decode.ts), and the plain-data check runs on it as a second line. cbor-x
 * renames a `__proto__` map key to `__proto_`, so no decoded object gets a foreign prototype.
 * @module
 */
// The module's binding, not the global: on Node 20 the global `Buffer` is a getter, a function call per use.
import { Buffer } from 'node:buffer';
import { Decoder, Encoder } from 'cbor-x/index-no-eval';
import { bulkheadError } from '../errors.js';
import { decodeWithoutViews } from './decode-scratch.js';
import { keptBody } from './shared-read-buffers.js';

// cbor-x's no-eval CommonJS build: no search for the optional native string extractor (~15-25 ms at every
// helper start; sandboxed helpers may not load it anyway), no `new Function` record readers (useRecords is
// off). One CommonJS file instead of an ESM module graph, bundled into bulkhead/service by the build.

/**
 * Deepest nesting of arrays/objects in one value that may cross the wire
 * (params, result, event payload, hello info, error data): a value that is
 * itself an array or object counts as 1. Checked by {@link describeNonPlain}.
 */
export const MAX_DEPTH = 64;

/**
 * Deepest nesting of arrays/maps accepted in one frame's CBOR item:
 * {@link MAX_DEPTH} plus 2 for the envelope array and an error body map, so
 * that every value {@link describeNonPlain} accepts also decodes at the peer.
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

/** Byte strings at least this long are sent from the caller's Buffer, not copied (large-bytes.ts); {@link describeNonPlain} counts them. */
export const LARGE_BYTES_THRESHOLD = 64 * 1024;

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

const CODEC_OPTIONS = {
  useRecords: false,
  mapsAsObjects: true,
  tagUint8Array: false,
  structuredClone: false,
  pack: false,
  bundleStrings: false,
  useTag259ForMaps: false,
} as const;

const encoder = new Encoder(CODEC_OPTIONS);
const decoder = new Decoder(CODEC_OPTIONS);

/**
 * Encodes one value as one CBOR item. The returned buffer is not reused by
 * later calls, so it may be held (e.g. by a pending socket write).
 */
export function encodeItem(value: unknown): Buffer {
  return encoder.encode(value);
}

/**
 * Decodes one CBOR item of plain data. `borrowed`: `body` may lie in a shared read buffer; then byte strings come from a copy.
 * @throws BulkheadError `ERR_BAD_FRAME` for malformed CBOR, trailing bytes,
 *   anything outside the data model of docs/wire.md (tags but bignums, non-text
 *   map keys, ...), nesting deeper than {@link MAX_FRAME_DEPTH} or more arrays,
 *   maps and byte strings than {@link maxFrameObjects} allows for its length.
 */
export function decodeItem(body: Uint8Array, borrowed = false): unknown {
  const malformed = scanItem(body);
  if (malformed !== undefined) {
    throw bulkheadError('ERR_BAD_FRAME', `Frame is not one CBOR item of plain data: ${malformed}. See docs/wire.md for the accepted data model.`);
  }
  let value: unknown;
  try {
    // decode() throws on truncation and on trailing bytes. No byte string (a view of its source): decode-scratch.ts.
    value = scanSawByteString ? decoder.decode(borrowed ? keptBody(body, true) : body) : decodeWithoutViews(decoder, body);
  } catch (err) {
    throw bulkheadError('ERR_BAD_FRAME', `Frame is not one well-formed CBOR item: ${(err as Error).message}`, {}, err);
  }
  const problem = findNonPlain(value, 0, MAX_FRAME_DEPTH);
  if (problem !== undefined) {
    throw bulkheadError('ERR_BAD_FRAME', `Frame holds ${problem}; only JSON-like values and byte strings may cross the wire.`);
  }
  return value;
}

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
function findNonPlain(value: unknown, depth: number, limit: number, tally?: PlainTally): string | undefined {
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
        const problem = findNonPlain(value[i], depth + 1, limit, tally);
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
      const problem = findNonPlain((value as Record<string, unknown>)[key], depth + 1, limit, tally);
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

/**
 * What a receiving peer's decoder would refuse in this frame body (see
 * {@link decodeItem}), or undefined when it passes. For a broker that
 * re-encodes a frame before passing it on: the result must still pass.
 */
export function checkItem(body: Uint8Array): string | undefined {
  return scanItem(body);
}

/** Set by the last scanItem: the item held a byte string (bignums' included). */
let scanSawByteString = false;

/** scanItem's container stack, shared by every call (it never re-enters); counts go up to the frame length (< 2^32). */
const STACK_LEFT = new Float64Array(MAX_FRAME_DEPTH + 1);
const STACK_SEEN = new Uint32Array(MAX_FRAME_DEPTH + 1);
const STACK_IS_MAP = new Uint8Array(MAX_FRAME_DEPTH + 1);

/**
 * Walks one CBOR item in `body` without recursion or allocation beyond a
 * stack of at most {@link MAX_FRAME_DEPTH} entries, and returns what makes it
 * fall outside the wire's data model (e.g. "tag 1 at byte 0"), or undefined
 * when it is exactly one acceptable item. Runs in time linear in `body.length`
 * whatever lengths the bytes declare. Counts arrays, maps and byte strings
 * against {@link maxFrameObjects}, so the value cbor-x then builds holds at
 * most that many JS objects.
 */
function scanItem(body: Uint8Array): string | undefined {
  const end = body.length;
  const maxObjects = maxFrameObjects(end);
  let objects = 0;
  // Per open container (a stack of `depth` entries, reused across calls: no allocation per frame):
  // items still expected (-1: indefinite), items seen, and whether it is a map.
  const left = STACK_LEFT;
  const seen = STACK_SEEN;
  const isMap = STACK_IS_MAP;
  let depth = 0;
  let pos = 0;
  let bignumAt = -1; // offset of a bignum tag whose byte string comes next
  let done = false;
  scanSawByteString = false;
  while (!done) {
    if (pos >= end) return pos === 0 ? 'empty body' : `truncated at byte ${pos}`;
    const start = pos;
    const initial = body[pos++]!;
    const major = initial >> 5;
    const info = initial & 0x1f;
    const top = depth - 1;
    // `& 1` on a Uint32Array, not `% 2` on a float: V8 compiles that to a call of fmod.
    const keyExpected = depth > 0 && isMap[top] === 1 && (seen[top]! & 1) === 0;
    if (bignumAt >= 0 && (major !== 2 || info === 31)) return `tag at byte ${bignumAt} does not wrap a definite byte string`;
    if (initial === 0xff) {
      if (depth === 0 || left[top] !== -1) return `break code outside an indefinite-length array or map at byte ${start}`;
      if (!keyExpected && isMap[top] === 1) return `map key without a value at byte ${start}`;
      depth--;
      depth = itemDone(depth);
      done = depth < 0;
      continue;
    }
    if (keyExpected && major !== 3) return `map key of major type ${major} at byte ${start}; keys must be text strings`;
    let arg = 0;
    if (info < 24) arg = info;
    else if (info <= 27) {
      const size = 1 << (info - 24);
      if (end - pos < size) return `truncated at byte ${start}`;
      for (let i = 0; i < size; i++) arg = arg * 256 + body[pos + i]!;
      pos += size;
    } else if (info === 31) {
      if (major !== 4 && major !== 5) return `indefinite length for major type ${major} at byte ${start}`;
      arg = -1;
    } else return `reserved additional information ${info} at byte ${start}`;
    if ((major === 2 || major === 4 || major === 5) && ++objects > maxObjects) {
      return `more than ${maxObjects} arrays, maps and byte strings (at byte ${start}); a ${end}-byte body may hold ${FRAME_OBJECT_ALLOWANCE} + 1 per ${BYTES_PER_OBJECT} bytes`;
    }
    switch (major) {
      case 0:
      case 1:
        break;
      case 2:
      case 3:
        if (major === 2) scanSawByteString = true;
        if (arg > end - pos) return `string of ${arg} bytes at byte ${start} runs past the end of the frame`;
        if (bignumAt >= 0 && arg > MAX_BIGNUM_BYTES) return `bignum of ${arg} bytes at byte ${bignumAt}; the limit is ${MAX_BIGNUM_BYTES}`;
        bignumAt = -1;
        pos += arg;
        break;
      case 4:
      case 5: {
        if (depth >= MAX_FRAME_DEPTH) return `nesting deeper than ${MAX_FRAME_DEPTH} at byte ${start}`;
        const items = major === 5 && arg > 0 ? arg * 2 : arg;
        // Every item takes at least one byte, so no honest length exceeds what is left.
        if (items > end - pos) return `${major === 4 ? 'array' : 'map'} of ${arg} entries at byte ${start} runs past the end of the frame`;
        if (items === 0) break;
        left[depth] = items;
        seen[depth] = 0;
        isMap[depth] = major === 5 ? 1 : 0;
        depth++;
        continue;
      }
      case 6:
        if (arg !== 2 && arg !== 3) return `tag ${arg} at byte ${start}`;
        bignumAt = start;
        continue;
      default: // 7
        if (info < 20 || info === 24) return `simple value ${info === 24 ? arg : info} at byte ${start}`;
    }
    depth = itemDone(depth);
    done = depth < 0;
  }
  if (pos !== end) return `${end - pos} bytes after the item`;
  return undefined;
}

/**
 * Counts one finished item in the `depth` open containers; returns the depth
 * after closing the ones it completed, or -1 when the root item is finished.
 */
function itemDone(depth: number): number {
  const left = STACK_LEFT;
  const seen = STACK_SEEN;
  for (;;) {
    const top = depth - 1;
    if (top < 0) return -1;
    seen[top]!++;
    if (left[top] === -1 || --left[top]! > 0) return depth;
    depth--;
  }
}
