/**
 * The safe CBOR codec: cbor-x with records, structured cloning and tagged
 * typed arrays off, plus a check that a decoded item is plain data.
 *
 * Plain data is what JSON can express plus byte strings: null, booleans,
 * numbers, bigints, strings, Uint8Array/Buffer, arrays and plain objects,
 * nested at most {@link MAX_DEPTH} deep. cbor-x already renames a `__proto__`
 * key (so no decoded object gets a foreign prototype) and refuses array/map
 * lengths larger than the bytes left in the frame; the plain-data check then
 * rejects every tag-built value (Date, RegExp, Error, Set, Map, typed arrays,
 * unknown `Tag`s) so nothing from the wire becomes a live object.
 * @module
 */
import { Decoder, Encoder } from 'cbor-x';
import { bulkheadError } from '../errors.js';

/** Deepest nesting of arrays/objects accepted from the wire. */
export const MAX_DEPTH = 64;

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
 * Decodes exactly one CBOR item that must be plain data.
 * @throws BulkheadError `ERR_BAD_FRAME` for malformed CBOR, trailing bytes,
 *   non-plain values or nesting deeper than {@link MAX_DEPTH}.
 */
export function decodeItem(body: Uint8Array): unknown {
  let value: unknown;
  try {
    // decode() throws on truncation and on bytes left after the first item.
    value = decoder.decode(body);
  } catch (err) {
    throw bulkheadError('ERR_BAD_FRAME', `Frame is not one well-formed CBOR item: ${(err as Error).message}`, {}, err);
  }
  const problem = describeNonPlain(value);
  if (problem !== undefined) {
    throw bulkheadError('ERR_BAD_FRAME', `Frame holds ${problem}; only JSON-like values and byte strings may cross the wire.`);
  }
  return value;
}

/**
 * Describes the first value in `value` that may not cross the wire (e.g.
 * "a Date object"), or returns undefined when all of it is plain data.
 * Senders use it to fail one call instead of sending a frame the peer must reject.
 */
export function describeNonPlain(value: unknown): string | undefined {
  return findNonPlain(value, 0);
}

function findNonPlain(value: unknown, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'bigint':
    case 'undefined':
      return undefined;
    case 'object': {
      if (value === null) return undefined;
      if (depth >= MAX_DEPTH) return `nesting deeper than ${MAX_DEPTH}`;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const problem = findNonPlain(value[i], depth + 1);
          if (problem !== undefined) return problem;
        }
        return undefined;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto === Buffer.prototype || proto === Uint8Array.prototype) return undefined;
      if (proto !== Object.prototype) {
        const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
        return `a ${typeof name === 'string' ? name : 'non-plain'} object`;
      }
      for (const key in value) {
        const problem = findNonPlain((value as Record<string, unknown>)[key], depth + 1);
        if (problem !== undefined) return problem;
      }
      return undefined;
    }
    default:
      return `a ${typeof value}`;
  }
}
