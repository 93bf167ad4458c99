/**
 * Decoding the common small item without cbor-x, and without a fresh string
 * per map key.
 *
 * cbor-x reads every text string, map keys included, into a new string; each
 * `object[key] = value` then has V8 look the key up in its string table
 * (internalize it), a hash and a compare per key per message, and the new
 * strings are garbage. That was ~10% of the client's CPU per event and a
 * share of every call on both ends (bench/README.md, rounds four to six).
 * Here short ASCII strings come from a small cache keyed by their bytes, so a
 * key or a repeated value (method and event names, enum-like values) is the
 * same string object each time: after its first use as a key V8 finds it in
 * one step.
 *
 * It stands in for `scanItem` (codec.ts), which then does not run: what it
 * returns is exactly one item ending at the body's end, every length checked
 * against the bytes left before anything is read or allocated, nesting at most
 * MAX_FRAME_DEPTH, at most `maxFrameObjects` arrays and maps, text map keys
 * only: the scan's rules (docs/wire.md), so it accepts nothing the scan refuses
 * (test/wire-plain-decode.test.ts checks that on random and hostile bytes).
 * Anything it does not accept goes to the scan and cbor-x as before. One walk
 * of a received small message instead of two (bench/README.md, round ten).
 * And only the plainest part of the data model:
 * integers with heads up to 4 bytes, float64, ASCII text, definite
 * arrays and maps, false/true/null/undefined. Anything else (byte strings,
 * bignums, 8-byte integer heads, float16/32, non-ASCII text, indefinite
 * lengths, very long containers) returns {@link NOT_PLAIN} and the caller
 * decodes the item with cbor-x as before: what this returns is always what
 * cbor-x (with codec.ts's options) returns for the same bytes, `__proto__`
 * keys renamed to `__proto_` as cbor-x does (test/wire-plain-decode.test.ts
 * compares the two).
 * @module
 */

// The module's binding, not the global: on Node 20 the global `Buffer` is a getter, a function call per use.
import { Buffer } from 'node:buffer';
import { MAX_FRAME_DEPTH, maxFrameObjects } from './wire-limits.js';

/** Returned when the item holds something this decoder leaves to cbor-x. */
export const NOT_PLAIN: unique symbol = Symbol('not plain');

/** Containers longer than this are left to cbor-x (its own limits apply to them). */
const MAX_CONTAINER = 1_000_000;
/** Strings up to this many bytes go through the cache. */
const CACHED_BYTES = 24;
/** Cache entries (a power of two). */
const CACHE_SLOTS = 1024;

// The strings' slots are made on the first cached string, not at import: 8 KB of young objects that a cold helper
// would otherwise hold before its first turn, where a Node 20 helper is a few KB from a scavenge (bench/README.md,
// "Round eleven: Node 20 cold launch"). The byte arrays are off the V8 heap (a typed array above 64 bytes).
let cacheStrings: (string | undefined)[] | undefined;
const cacheBytes = new Uint8Array(CACHE_SLOTS * CACHED_BYTES);
const cacheLengths = new Uint8Array(CACHE_SLOTS);
/**
 * By a string's offset in its body and its length: the cache slot the string there took last time. Messages of one
 * shape hold the same keys and names at the same offsets, so that slot is tried first, by its bytes alone, before the
 * hash over the string's bytes is computed: a hit costs one compare loop instead of two (bench/README.md, "Round
 * thirteen: broker CPU per call"). A slot's string, length and bytes change together, so bytes that match are its string.
 */
const placeSlots = new Uint16Array(CACHE_SLOTS);

/** float64 from 8 big-endian bytes. */
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

let src: Uint8Array = new Uint8Array(0);
let pos = 0;
/** The body's length: nothing at or past it is read. */
let end = 0;
/** Arrays and maps the body may still hold (the frame object limit, wire-limits.ts). */
let objectsLeft = 0;
let bail = false;

/**
 * Bodies up to this size only. Above it cbor-x is as fast or faster (its
 * string handling wins on many distinct strings), and a late bail (non-ASCII
 * text near the end) costs the work twice. Measured (bench/README.md, round
 * six, "the plain decoder's cap"), rows with distinct names, Node 20 / 24:
 * 1 KiB 0.64 / 0.60 of cbor-x's time, 4 KiB 0.77 / 0.66, 8 KiB 0.88 / 0.70,
 * 16 KiB 1.01 / 0.98, 64 KiB 1.50 / 1.18; a late bail 1.6–2.6× at any size.
 * 4 KiB keeps most of the gain where it is large, bounds a bail's loss to
 * ~25 µs, and is the scratch decoder's size (decode-scratch.ts).
 */
export const PLAIN_MAX_BYTES = 4096;

/**
 * The value of the one CBOR item `body` holds, or {@link NOT_PLAIN}: for a
 * body longer than {@link PLAIN_MAX_BYTES}, one whose item does not end exactly
 * at its end, one the scan would refuse (see above) and one that holds anything
 * but the plainest values. Needs no scan first.
 */
export function decodePlain(body: Uint8Array): unknown {
  if (!begin(body)) return NOT_PLAIN;
  const value = read(0);
  return finish() ? value : NOT_PLAIN;
}

const EMPTY = new Uint8Array(0);

/** Starts a walk of `body` (one at a time: the walk's state is this module's); false, setting nothing, for a body too long or empty. */
function begin(body: Uint8Array): boolean {
  if (body.length > PLAIN_MAX_BYTES || body.length === 0) return false;
  src = body;
  pos = 0;
  end = body.length;
  objectsLeft = maxFrameObjects(end);
  bail = false;
  return true;
}

/** Ends the walk {@link begin} started: true when every value was plain and the item ends at the body's end. */
function finish(): boolean {
  src = EMPTY;
  return !bailed() && pos === end;
}

/**
 * {@link decodePlain} for a body whose item is an array of fewer than 24 elements (every envelope), taken element by
 * element so that no array is built for them: {@link openPlainArray}, then {@link nextPlainElement} once per element,
 * then {@link closePlain}, all for one body before any other decode. The same walk and the same rules: the array counts
 * as one container of the frame object limit, its elements sit one level down.
 * @returns the element count, or -1 when the body does not hold such an array at its start (decode it as before)
 */
export function openPlainArray(body: Uint8Array): number {
  const initial = body[0];
  // A definite array with its count in the head byte.
  if (initial === undefined || initial < 0x80 || initial > 0x97 || !begin(body)) return -1;
  const count = initial & 0x1f;
  pos = 1;
  // As read() opens an array at depth 0: every element takes at least a byte; the array is a container.
  if (count > end - pos || !container(0)) bail = true;
  return count;
}

/** The next element of the array {@link openPlainArray} opened (undefined once the walk has bailed). */
export function nextPlainElement(): unknown {
  return read(1);
}

/** Ends the walk {@link openPlainArray} began: true when every element was plain and the item ends at the body's end. */
export function closePlain(): boolean {
  return finish();
}

/** `bail` read through a call: TypeScript would otherwise narrow it to `false` across the calls that set it. */
function bailed(): boolean {
  return bail;
}

/** The item at `pos`, inside `depth` open arrays and maps. Every read of `src` is checked against `end` first. */
function read(depth: number): unknown {
  if (bail) return undefined;
  if (pos >= end) return refuse(); // truncated
  const initial = src[pos++]!;
  const major = initial >> 5;
  const info = initial & 0x1f;
  if (major === 7) {
    switch (initial) {
      case 0xf4: return false;
      case 0xf5: return true;
      case 0xf6: return null;
      case 0xf7: return undefined;
      case 0xfb: return end - pos < 8 ? refuse() : float64();
      default:
        bail = true;
        return undefined;
    }
  }
  let arg: number;
  if (info < 24) arg = info;
  else if (info === 24) {
    if (pos >= end) return refuse();
    arg = src[pos++]!;
  } else if (info === 25) {
    if (end - pos < 2) return refuse();
    arg = src[pos]! * 0x100 + src[pos + 1]!;
    pos += 2;
  } else if (info === 26) {
    if (end - pos < 4) return refuse();
    arg = ((src[pos]! * 0x100 + src[pos + 1]!) * 0x100 + src[pos + 2]!) * 0x100 + src[pos + 3]!;
    pos += 4;
  } else {
    bail = true; // 8-byte heads (bigints), indefinite lengths
    return undefined;
  }
  switch (major) {
    case 0: return arg;
    case 1: return -1 - arg;
    case 3: return arg > end - pos ? refuse() : text(arg);
    case 4: {
      // Every item takes at least a byte: a longer array than the bytes left is refused before it is allocated.
      if (arg > MAX_CONTAINER || arg > end - pos || !container(depth)) break;
      const array = new Array<unknown>(arg);
      for (let i = 0; i < arg && !bailed(); i++) array[i] = read(depth + 1);
      return array;
    }
    case 5: {
      if (arg > MAX_CONTAINER || 2 * arg > end - pos || !container(depth)) break;
      const object: Record<string, unknown> = {};
      for (let i = 0; i < arg && !bailed(); i++) {
        // Text keys only (the scan's rule); a key's head and bytes are checked against the end like any item.
        if (pos >= end) return refuse();
        const head = src[pos++]!;
        if (head >> 5 !== 3) return refuse();
        let length = head & 0x1f;
        if (length === 24) {
          if (pos >= end) return refuse();
          length = src[pos++]!;
        } else if (length > 24) return refuse();
        if (length > end - pos) return refuse();
        const key = text(length);
        // cbor-x renames this key so that no decoded object gets a foreign prototype.
        object[key === '__proto__' ? '__proto_' : key] = read(depth + 1);
      }
      return object;
    }
  }
  bail = true; // byte strings, tags (bignums), long containers
  return undefined;
}

/** Leaves the item to the scan and cbor-x. */
function refuse(): unknown {
  bail = true;
  return undefined;
}

/** An array or map may open inside `depth` others: within MAX_FRAME_DEPTH and the frame object limit (the scan's rules). */
function container(depth: number): boolean {
  return depth < MAX_FRAME_DEPTH && --objectsLeft >= 0;
}

function float64(): number {
  if (littleEndian) for (let i = 0; i < 8; i++) f64Bytes[i] = src[pos + 7 - i]!;
  else for (let i = 0; i < 8; i++) f64Bytes[i] = src[pos + i]!;
  pos += 8;
  return f64[0]!;
}

/** An ASCII text string of `length` bytes at `pos` (short ones from the cache); anything else bails. */
function text(length: number): string {
  const u = src;
  const start = pos;
  const end = start + length;
  if (length > CACHED_BYTES) {
    for (let i = start; i < end; i++) {
      if (u[i]! >= 0x80) {
        bail = true;
        return '';
      }
    }
    pos = end;
    // Known to be ASCII, which latin1 reads alike.
    return Buffer.from(u.buffer, u.byteOffset + start, length).toString('latin1');
  }
  const guess = (start * 8 + length) & (CACHE_SLOTS - 1);
  const known = placeSlots[guess]!;
  if (cacheLengths[known] === length && cacheStrings !== undefined) {
    const at = known * CACHED_BYTES;
    let i = 0;
    while (i < length && cacheBytes[at + i] === u[start + i]) i++;
    const cached = cacheStrings[known];
    if (i === length && cached !== undefined) {
      pos = end;
      return cached;
    }
  }
  let hash = length;
  for (let i = start; i < end; i++) {
    const b = u[i]!;
    if (b >= 0x80) {
      bail = true;
      return '';
    }
    hash = (Math.imul(hash, 31) + b) | 0;
  }
  pos = end;
  const slot = (hash ^ (hash >>> 10)) & (CACHE_SLOTS - 1);
  placeSlots[guess] = slot;
  const strings = cacheStrings ??= new Array<string | undefined>(CACHE_SLOTS).fill(undefined);
  const cached = strings[slot];
  if (cached !== undefined && cacheLengths[slot] === length) {
    const at = slot * CACHED_BYTES;
    let same = true;
    for (let i = 0; i < length; i++) {
      if (cacheBytes[at + i] !== u[start + i]) {
        same = false;
        break;
      }
    }
    if (same) return cached;
  }
  const s = length === 0 ? '' : String.fromCharCode.apply(null, u.subarray(start, end) as unknown as number[]);
  strings[slot] = s;
  cacheLengths[slot] = length;
  cacheBytes.set(u.subarray(start, end), slot * CACHED_BYTES);
  return s;
}
