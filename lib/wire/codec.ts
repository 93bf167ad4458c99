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
 * Only then is the value built (cbor-x), and the plain-data check runs on cbor-x's values as a second line. The plainest
 * small items are built in one walk by plain-decode.ts instead, which applies the same rules to what it accepts. cbor-x
 * renames a `__proto__` map key to `__proto_`, so no decoded object gets a foreign prototype.
 * @module
 */
// The module's binding, not the global: on Node 20 the global `Buffer` is a getter, a function call per use.
import { Buffer } from 'node:buffer';
import type { Decoder, Encoder } from 'cbor-x/index-no-eval';
import { bulkheadError } from '../errors.js';
import { lazyRequire } from '../util/lazy-require.js';
import { decodeWithoutViews } from './decode-scratch.js';
import { findNonPlain } from './plain-check.js';
import { NOT_PLAIN, decodePlain } from './plain-decode.js';
import { keptBody } from './shared-read-buffers.js';
import { BYTES_PER_OBJECT, FRAME_OBJECT_ALLOWANCE, MAX_BIGNUM_BYTES, MAX_FRAME_DEPTH, maxFrameObjects } from './wire-limits.js';

export { BYTES_PER_OBJECT, FRAME_OBJECT_ALLOWANCE, LARGE_BYTES_THRESHOLD, MAX_BIGNUM_BYTES, MAX_DEPTH, MAX_FRAME_DEPTH, maxFrameObjects } from './wire-limits.js';
export { describeNonPlain, newPlainTally, type PlainTally } from './plain-check.js';

// cbor-x's no-eval CommonJS build: no search for the optional native string extractor (~15-25 ms at every
// helper start; sandboxed helpers may not load it anyway), no `new Function` record readers (useRecords is
// off). One CommonJS file instead of an ESM module graph, bundled into bulkhead/service by the build.

const CODEC_OPTIONS = {
  useRecords: false,
  mapsAsObjects: true,
  tagUint8Array: false,
  structuredClone: false,
  pack: false,
  bundleStrings: false,
  useTag259ForMaps: false,
} as const;

// cbor-x is loaded, and its encoder and decoder made, on first use: the small envelopes of a helper's hello and
// first call go through plain-encode.ts and plain-decode.ts (the same bytes), so a helper whose first reply needs
// nothing else never runs cbor-x's module body (~0.3 ms of CPU and ~100 KB of young-generation garbage at every
// start; bench/README.md, "Round ten: the helper's start-up CPU"). In the helper's runtime bundle
// scripts/build-runtime.mjs turns the require below into the bundled copy's (its plugin fails the build when this
// exact text is not here once); unbundled (the broker), node's CommonJS loader loads the package.
const cborRequire = lazyRequire(import.meta.url);
// Module bindings checked at each use (a load and a compare on the hot path, as the constants they replace were loaded).
let encoder: Encoder | undefined;
let decoder: Decoder | undefined;
function loadCbor(): { readonly encoder: Encoder; readonly decoder: Decoder } {
  if (encoder === undefined || decoder === undefined) {
    const cborx = cborRequire()('cbor-x/index-no-eval') as typeof import('cbor-x/index-no-eval');
    encoder = new cborx.Encoder(CODEC_OPTIONS);
    decoder = new cborx.Decoder(CODEC_OPTIONS);
  }
  return { encoder, decoder };
}

/** Whether cbor-x has been loaded in this process (test/codec-lazy.test.ts). @internal */
export function cborLoaded(): boolean {
  return encoder !== undefined;
}

/**
 * Encodes one value as one CBOR item. The returned buffer is not reused by
 * later calls, so it may be held (e.g. by a pending socket write).
 */
export function encodeItem(value: unknown): Buffer {
  return (encoder ?? loadCbor().encoder).encode(value);
}

/**
 * Decodes one CBOR item of plain data. `borrowed`: `body` may lie in a shared read buffer; then byte strings come from a copy.
 * @throws BulkheadError `ERR_BAD_FRAME` for malformed CBOR, trailing bytes,
 *   anything outside the data model of docs/wire.md (tags but bignums, non-text
 *   map keys, ...), nesting deeper than {@link MAX_FRAME_DEPTH} or more arrays,
 *   maps and byte strings than {@link maxFrameObjects} allows for its length.
 */
export function decodeItem(body: Uint8Array, borrowed = false): unknown {
  // The plainest small items in one walk: the plain decoder applies the scan's rules to what it accepts
  // (plain-decode.ts) and builds only null, booleans, numbers, strings, arrays and `{}` objects, nested no
  // deeper than MAX_FRAME_DEPTH (the plain-data check's own limit): nothing for the scan or the check to find.
  // test/wire-plain-decode.test.ts and test/wire-plain-check.test.ts hold it to that.
  const plain = decodePlain(body);
  if (plain !== NOT_PLAIN) return plain;
  const malformed = scanItem(body);
  if (malformed !== undefined) {
    throw bulkheadError('ERR_BAD_FRAME', `Frame is not one CBOR item of plain data: ${malformed}. See docs/wire.md for the accepted data model.`);
  }
  let value: unknown;
  try {
    // decode() throws on truncation and on trailing bytes. No byte string (a view of its source): decode-scratch.ts.
    const cbor = decoder ?? loadCbor().decoder;
    value = scanSawByteString ? cbor.decode(borrowed ? keptBody(body, true) : body) : decodeWithoutViews(cbor, body);
  } catch (err) {
    throw bulkheadError('ERR_BAD_FRAME', `Frame is not one well-formed CBOR item: ${(err as Error).message}`, {}, err);
  }
  // The plain-data check is the second line against cbor-x's values (live objects from a tag the scan ever let through).
  const problem = findNonPlain(value, 0, MAX_FRAME_DEPTH);
  if (problem !== undefined) {
    throw bulkheadError('ERR_BAD_FRAME', `Frame holds ${problem}; only JSON-like values and byte strings may cross the wire.`);
  }
  return value;
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
