/**
 * The envelope: every frame body is one CBOR array whose first element is the
 * message kind as a small integer. In memory an envelope is a discriminated
 * union on a string `kind`. See docs/wire.md for the byte-level spec.
 *
 * This module encodes envelopes, and is where the rest of bulkhead imports the
 * envelope from: the types and wire numbers are envelope-types.ts's, decoding is
 * envelope-decode.ts's, both re-exported here.
 * @module
 */
import { encodeItem } from './codec.js';
import { KIND, type Envelope } from './envelope-types.js';
import { FRAME_HEADER_BYTES, encodeFrame } from './frame-decoder.js';
import { encodeWithLargeBytes, type FrameChunks } from './large-bytes.js';
import { encodePlainFrame, placePlainEnvelopeFrame, placePlainFrame, plainNext, plainSlab } from './plain-encode.js';

export * from './envelope-types.js';
export { decodeEnvelope } from './envelope-decode.js';

/** Encodes an envelope to a complete frame (length prefix included). */
export function encodeEnvelope(envelope: Envelope): Buffer {
  return encodeFrame(encodeItem(toWire(envelope)));
}

/**
 * Encodes an envelope as frame chunks (length prefix first). Large byte
 * strings in it are not copied: their chunks are the caller's own Buffers,
 * which must not change until the frame is written. `noLargeBytes`: the
 * caller's `describeNonPlain` walk (lib/wire/codec.ts) found no byte string of
 * LARGE_BYTES_THRESHOLD or more in the envelope, so the search for them is
 * skipped (were one there after all, it would be copied: same bytes on the wire).
 * Without large byte strings the result is one chunk: for the plain items of
 * plain-encode.ts the whole frame, its length prefix written in place (a lone
 * frame is written as it is); else `headerless`, cbor-x's output itself, and
 * the caller writes the 4-byte length prefix (FramedChannel writes it straight
 * into its outgoing buffer: one copy less per frame).
 */
export function encodeEnvelopeChunks(envelope: Envelope, noLargeBytes = false): FrameChunks {
  if (noLargeBytes) {
    const frame = encodePlainEnvelope(envelope);
    if (frame !== undefined) return { chunks: [frame], bodyLength: frame.length - FRAME_HEADER_BYTES };
  }
  const wire = toWire(envelope);
  const large = noLargeBytes ? undefined : encodeWithLargeBytes(wire);
  if (large !== undefined) return large;
  // The common small envelope without cbor-x (plain-encode.ts: the same bytes), its length prefix in front
  // already; anything else with cbor-x, and the writer adds the prefix.
  const frame = noLargeBytes ? undefined : encodePlainFrame(wire);
  if (frame !== undefined) return { chunks: [frame], bodyLength: frame.length - FRAME_HEADER_BYTES };
  const body = encodeItem(wire);
  return { chunks: [body], bodyLength: body.length, headerless: true };
}

/**
 * The whole frame of an envelope with no large byte string, when plain-encode.ts
 * takes it (the bytes {@link encodeEnvelopeChunks} gives), else undefined; calls,
 * replies, events and items without building their wire array (round eleven).
 */
export function encodePlainEnvelope(e: Envelope): Buffer | undefined {
  const length = placePlainEnvelope(e);
  return length < 0 ? undefined : plainSlab.subarray(plainNext - length, plainNext);
}

/** {@link encodePlainEnvelope} with no view made: its length, the frame the last `length` bytes before `plainNext` in `plainSlab`, or -1. */
export function placePlainEnvelope(e: Envelope): number {
  switch (e.kind) {
    case 'call': return placePlainEnvelopeFrame(KIND.call, 5, e.id, e.method, e.params, e.meta);
    case 'reply': return placePlainEnvelopeFrame(KIND.reply, 3, e.id, e.result);
    case 'event': return placePlainEnvelopeFrame(KIND.event, 4, e.callId, e.name, e.payload);
    case 'item': return placePlainEnvelopeFrame(KIND.item, 3, e.id, e.value);
    default: return placePlainFrame(toWire(e));
  }
}

/** The body (cbor-x's, no length prefix) of an envelope with no large byte string that plain-encode.ts left. */
export function encodeEnvelopeBody(e: Envelope): Buffer {
  return encodeItem(toWire(e));
}

function toWire(e: Envelope): unknown[] {
  switch (e.kind) {
    case 'hello': return [KIND.hello, e.role, e.protocol, e.version, e.schemaHash, e.info];
    case 'call': return [KIND.call, e.id, e.method, e.params, e.meta];
    case 'reply': return [KIND.reply, e.id, e.result];
    case 'error': return [KIND.error, e.id, e.error];
    case 'event': return [KIND.event, e.callId, e.name, e.payload];
    case 'cancel': return [KIND.cancel, e.id, e.reason];
    case 'goodbye': return [KIND.goodbye, e.reason];
    case 'activity': return [KIND.activity, e.transactions];
    case 'peer': return [KIND.peer, e.range, e.peer];
    case 'item': return [KIND.item, e.id, e.value];
    case 'credit': return [KIND.credit, e.id, e.items];
    case 'end': return [KIND.end, e.id];
  }
}
