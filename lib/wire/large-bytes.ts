/**
 * Sending large byte strings without copying them. cbor-x would copy a
 * 16 MiB Buffer into its output (and framing would copy it again); instead,
 * each byte string of at least {@link LARGE_BYTES_THRESHOLD} bytes is swapped
 * for a unique 16-byte marker before encoding, and the frame is assembled as
 * chunks — the encoded envelope around each marker, a CBOR byte-string head,
 * and the caller's own Buffer — that go out in one writev. The bytes on the
 * wire are exactly what encoding the original value would give.
 * @module
 */
import { Buffer } from 'node:buffer';
import { keepForSending } from './body-pool.js';
import { encodeItem, LARGE_BYTES_THRESHOLD } from './codec.js';
import { FRAME_HEADER_BYTES } from './frame-decoder.js';

export { LARGE_BYTES_THRESHOLD };

/** CBOR head of a 16-byte byte string (major type 2, length 16). */
const MARKER_HEAD = 0x50;
const MARKER_BYTES = 16;
/** Random per process: the odds that user data contains a marker are 2^-96 per position. */
let markerPrefix: Buffer | undefined;

/**
 * Made at the first large byte string, not at import: node:crypto costs a helper ~6–7 ms of
 * start-up on Node 24 (measured), and most helpers never send 64 KiB at once.
 */
function prefix(): Buffer {
  return (markerPrefix ??= process.getBuiltinModule('node:crypto').randomBytes(12));
}

/** A frame as chunks, with its body length. */
export interface FrameChunks {
  /** The frame's bytes in order: the 4-byte length prefix first, unless {@link FrameChunks.headerless}. */
  chunks: Buffer[];
  /** Body length (without the 4-byte header). */
  bodyLength: number;
  /** True when `chunks` is the body alone and the writer adds the length prefix. */
  headerless?: boolean;
}

/**
 * Encodes a wire array as frame chunks. Returns undefined when it holds no
 * large byte string (the caller then takes the ordinary one-buffer path).
 */
export function encodeWithLargeBytes(wire: unknown[]): FrameChunks | undefined {
  const large: Uint8Array[] = [];
  const replaced = swapLarge(wire, large);
  if (large.length === 0) return undefined;
  const encoded = encodeItem(replaced);
  // Markers are unique, so find each one and cut the encoded bytes in position order.
  const order = large.map((bytes, i) => ({ bytes, at: encoded.indexOf(markerBytes(i)) })).sort((a, b) => a.at - b.at);
  const chunks: Buffer[] = [Buffer.alloc(0)]; // header, filled in below
  let bodyLength = 0;
  let from = 0;
  for (const { bytes, at } of order) {
    if (at < 0) throw new Error('bulkhead internal error: large-bytes marker not found in the encoded frame');
    const before = encoded.subarray(from, at);
    const head = byteStringHead(bytes.length);
    const data = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    chunks.push(before, head, data);
    bodyLength += before.length + head.length + data.length;
    from = at + 1 + MARKER_BYTES;
  }
  const rest = encoded.subarray(from);
  chunks.push(rest);
  bodyLength += rest.length;
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32BE(bodyLength, 0);
  chunks[0] = header;
  return { chunks: chunks.filter((c) => c.length > 0), bodyLength };
}

/** The encoded form (head + 16 bytes) of marker `i`. */
function markerBytes(i: number): Buffer {
  const m = Buffer.allocUnsafe(1 + MARKER_BYTES);
  m[0] = MARKER_HEAD;
  prefix().copy(m, 1);
  m.writeUInt32BE(i, 1 + 12);
  return m;
}

/** CBOR head for a byte string of `n` bytes. */
function byteStringHead(n: number): Buffer {
  if (n < 24) return Buffer.from([0x40 | n]);
  if (n < 0x100) return Buffer.from([0x58, n]);
  if (n < 0x10000) return Buffer.from([0x59, n >> 8, n & 0xff]);
  const h = Buffer.allocUnsafe(5);
  h[0] = 0x5a;
  h.writeUInt32BE(n, 1);
  return h;
}

/**
 * Returns `value` with every large byte string replaced by its marker,
 * copying only the arrays and objects on the way to one; `value` itself is
 * returned untouched when there is none. Order of `found` = encoding order.
 */
function swapLarge(value: unknown, found: Uint8Array[]): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Uint8Array) {
    if (value.length < LARGE_BYTES_THRESHOLD) return value;
    found.push(value);
    keepForSending(value); // written from its own memory: a caller's releaseBytes must not free it while queued
    return markerBytes(found.length - 1).subarray(1);
  }
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = value[i] as unknown;
      const r = swapLarge(v, found);
      if (r !== v) {
        copy ??= value.slice();
        copy[i] = r;
      }
    }
    return copy ?? value;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return value;
  let copy: Record<string, unknown> | undefined;
  for (const key in value) {
    const v = (value as Record<string, unknown>)[key];
    const r = swapLarge(v, found);
    if (r !== v) {
      copy ??= { ...(value as Record<string, unknown>) };
      copy[key] = r;
    }
  }
  return copy ?? value;
}
