/**
 * The envelope: every frame body is one CBOR array whose first element is the
 * message kind as a small integer. In memory an envelope is a discriminated
 * union on a string `kind`. See docs/wire.md for the byte-level spec.
 * @module
 */
import { bulkheadError, type SerializedError } from '../errors.js';
import { decodeItem, encodeItem } from './codec.js';
import { FRAME_HEADER_BYTES, encodeFrame } from './frame-decoder.js';
import { encodeWithLargeBytes, type FrameChunks } from './large-bytes.js';
import { encodePlainFrame, placePlainEnvelopeFrame, placePlainFrame, plainNext, plainSlab } from './plain-encode.js';

/** Wire numbers of the message kinds. Never renumber. */
export const KIND = {
  hello: 0,
  call: 1,
  reply: 2,
  error: 3,
  event: 4,
  cancel: 5,
  goodbye: 6,
  activity: 7,
  peer: 8,
  item: 9,
  credit: 10,
  end: 11,
} as const;

/**
 * Call ids are split into ranges of this size. Range 0 belongs to the broker's
 * own calls; in daemon mode each routed client gets one range of its own, so
 * the broker forwards its frames without rewriting ids, and a {@link PeerEnvelope}
 * tells the helper who owns which range.
 */
export const ID_RANGE_SIZE = 2 ** 20;

/** Which end of a connection sent a hello. */
export type HelloRole = 'service' | 'client';

/** First message each end sends: which protocol it speaks. */
export interface HelloEnvelope {
  kind: 'hello';
  role: HelloRole;
  protocol: string;
  version: string;
  schemaHash: string;
  /** Free-form plain data (e.g. the helper's pid). */
  info: Record<string, unknown>;
}

/** Who made a call, as verified by the broker (never as claimed by the caller). */
export interface PeerInfo {
  /** Identity name; `"main-app"` for the embedding process in embedded mode. */
  name: string;
  /** Daemon clients: the connecting process's uid, gid and pid, from the kernel (SO_PEERCRED). */
  uid?: number;
  gid?: number;
  pid?: number;
}

/** Per-call metadata set by the caller's side. */
export interface CallMeta {
  /** Milliseconds the caller will wait; the service may use it to give up early. */
  timeoutMs?: number;
  /**
   * Target service, on a helper's outbound channel (fd 4) only: which service
   * the broker should route this call to, if the helper's manifest `connects` to it.
   */
  service?: string;
  /**
   * W3C trace context of the caller (`00-<trace id>-<parent id>-<flags>`);
   * the broker passes it on untouched, the service's handler sees it as
   * `ctx.traceparent`. A malformed one is dropped, as the W3C spec asks.
   */
  traceparent?: string;
}

/** A request. `id` is unique among the sender's calls in flight on this connection. */
export interface CallEnvelope {
  kind: 'call';
  id: number;
  method: string;
  params: unknown;
  meta: CallMeta | null;
}

/** A successful answer to call `id`. */
export interface ReplyEnvelope {
  kind: 'reply';
  id: number;
  result: unknown;
}

/** A failed answer to call `id`; id 0 is a connection-level error sent before closing. */
export interface ErrorEnvelope {
  kind: 'error';
  id: number;
  error: SerializedError;
}

/** A service-to-client event; `callId` 0 means it is for every client of the service. */
export interface EventEnvelope {
  kind: 'event';
  callId: number;
  name: string;
  payload: unknown;
}

/** Why a caller gave up on a call. */
export type CancelReason = 'cancelled' | 'deadline';

/** The caller no longer wants the answer to call `id`. */
export interface CancelEnvelope {
  kind: 'cancel';
  id: number;
  reason: CancelReason;
}

/** The sender will send nothing more and is about to close. */
export interface GoodbyeEnvelope {
  kind: 'goodbye';
  reason: string;
}

/**
 * Service → broker: how many transactions (`ctx.keepAlive()` holds) are open.
 * Sent when the count changes between zero and non-zero; while it is non-zero
 * the broker does not stop the helper for being idle.
 */
export interface ActivityEnvelope {
  kind: 'activity';
  transactions: number;
}

/**
 * Broker → service: calls whose ids fall in range `range` (ids
 * `range * ID_RANGE_SIZE` to `(range + 1) * ID_RANGE_SIZE - 1`) come from
 * `peer`, as the broker verified it; `peer: null` ends the binding. Calls in
 * a range with no binding come from the embedding app.
 */
export interface PeerEnvelope {
  kind: 'peer';
  range: number;
  peer: PeerInfo | null;
}

/**
 * One item of the stream of call `id`: from the service, an item it yields
 * (`yields`); from the caller, an item of its input (`accepts`). The sender
 * may send one only while it holds a credit for it (see {@link CreditEnvelope}).
 */
export interface ItemEnvelope {
  kind: 'item';
  id: number;
  value: unknown;
}

/**
 * The receiver of call `id`'s items grants `items` more to the sender (the
 * first credit opens the window; later ones acknowledge items consumed).
 */
export interface CreditEnvelope {
  kind: 'credit';
  id: number;
  items: number;
}

/** Caller → service: the caller's input items for call `id` are complete. */
export interface EndEnvelope {
  kind: 'end';
  id: number;
}

/** Every message that crosses a bulkhead connection. */
export type Envelope =
  | HelloEnvelope
  | CallEnvelope
  | ReplyEnvelope
  | ErrorEnvelope
  | EventEnvelope
  | CancelEnvelope
  | GoodbyeEnvelope
  | ActivityEnvelope
  | PeerEnvelope
  | ItemEnvelope
  | CreditEnvelope
  | EndEnvelope;

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

/**
 * Decodes one frame body into an envelope, checking its shape. `borrowed`:
 * `body` may lie in a shared read buffer (see {@link decodeItem}).
 * @throws BulkheadError `ERR_BAD_FRAME` for anything that is not a valid envelope.
 */
export function decodeEnvelope(body: Uint8Array, borrowed = false): Envelope {
  const item = decodeItem(body, borrowed);
  if (!Array.isArray(item) || item.length === 0) throw bad('not a non-empty array');
  const a = item as unknown[];
  switch (a[0]) {
    case KIND.hello:
      expectLength(a, 6, 'hello');
      if (a[1] !== 'service' && a[1] !== 'client') throw bad('hello role must be "service" or "client"');
      return { kind: 'hello', role: a[1], protocol: str(a[2], 'hello protocol'), version: str(a[3], 'hello version'), schemaHash: str(a[4], 'hello schemaHash'), info: obj(a[5], 'hello info') };
    case KIND.call:
      expectLength(a, 5, 'call');
      return { kind: 'call', id: id(a[1]), method: str(a[2], 'call method'), params: a[3], meta: a[4] === null || a[4] === undefined ? null : callMeta(a[4]) };
    case KIND.reply:
      expectLength(a, 3, 'reply');
      return { kind: 'reply', id: id(a[1]), result: a[2] };
    case KIND.error: {
      expectLength(a, 3, 'error');
      const errorId = a[1] === 0 ? 0 : id(a[1]);
      const e = obj(a[2], 'error body');
      const data = e['data'];
      return {
        kind: 'error',
        id: errorId,
        error: {
          code: str(e['code'], 'error code'),
          message: str(e['message'], 'error message'),
          ...(data === undefined || data === null ? {} : { data: obj(data, 'error data') }),
        },
      };
    }
    case KIND.event:
      expectLength(a, 4, 'event');
      return { kind: 'event', callId: a[1] === 0 ? 0 : id(a[1]), name: str(a[2], 'event name'), payload: a[3] };
    case KIND.cancel:
      expectLength(a, 3, 'cancel');
      if (a[2] !== 'cancelled' && a[2] !== 'deadline') throw bad('cancel reason must be "cancelled" or "deadline"');
      return { kind: 'cancel', id: id(a[1]), reason: a[2] };
    case KIND.goodbye:
      expectLength(a, 2, 'goodbye');
      return { kind: 'goodbye', reason: str(a[1], 'goodbye reason') };
    case KIND.activity: {
      expectLength(a, 2, 'activity');
      const n = a[1];
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_CALL_ID) throw bad('activity transactions must be a non-negative integer');
      return { kind: 'activity', transactions: n };
    }
    case KIND.peer: {
      expectLength(a, 3, 'peer');
      const range = a[1];
      if (typeof range !== 'number' || !Number.isInteger(range) || range < 1 || range >= 2 ** 32 / ID_RANGE_SIZE) throw bad('peer range must be an integer from 1 to 4095');
      return { kind: 'peer', range, peer: a[2] === null ? null : peerInfo(a[2]) };
    }
    case KIND.item:
      expectLength(a, 3, 'item');
      return { kind: 'item', id: id(a[1]), value: a[2] };
    case KIND.credit: {
      expectLength(a, 3, 'credit');
      const n = a[2];
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_CREDIT) throw bad(`credit items must be an integer from 1 to ${MAX_CREDIT}`);
      return { kind: 'credit', id: id(a[1]), items: n };
    }
    case KIND.end:
      expectLength(a, 2, 'end');
      return { kind: 'end', id: id(a[1]) };
    default:
      // Never String() a decoded map: an own "toString" key would make that throw a TypeError.
      throw bad(`unknown message kind ${typeof a[0] === 'number' ? String(a[0]) : `of type ${describeType(a[0])}`}`);
  }
}

/** Largest number of items one credit message may grant. */
export const MAX_CREDIT = 65536;

/** Largest call id; ids wrap back to 1 after it. */
export const MAX_CALL_ID = 0xffffffff;

function bad(what: string) {
  return bulkheadError('ERR_BAD_FRAME', `Invalid envelope: ${what}. The peer is not speaking the bulkhead wire format (docs/wire.md).`);
}

function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Uint8Array) return 'byte string';
  return typeof v;
}

function expectLength(a: unknown[], n: number, kind: string): void {
  if (a.length !== n) throw bad(`${kind} must have ${n} elements, has ${a.length}`);
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw bad(`${what} must be a string`);
  return v;
}

function id(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_CALL_ID) throw bad('call id must be an integer from 1 to 2^32-1');
  return v;
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) throw bad(`${what} must be a map`);
  return v as Record<string, unknown>;
}

function callMeta(v: unknown): CallMeta {
  const m = obj(v, 'call meta');
  const meta: CallMeta = {};
  const timeoutMs = m['timeoutMs'];
  if (timeoutMs !== undefined) {
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) throw bad('call meta timeoutMs must be a non-negative number');
    meta.timeoutMs = timeoutMs;
  }
  const service = m['service'];
  if (service !== undefined) meta.service = str(service, 'call meta service');
  const traceparent = m['traceparent'];
  // version-traceid-parentid-flags in lower-case hex (the receiver checks the ids further, if it traces).
  if (typeof traceparent === 'string' && /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/.test(traceparent)) meta.traceparent = traceparent;
  return meta;
}

function peerInfo(v: unknown): PeerInfo {
  const p = obj(v, 'peer');
  const peer: PeerInfo = { name: str(p['name'], 'peer name') };
  if (typeof p['uid'] === 'number') peer.uid = p['uid'];
  if (typeof p['gid'] === 'number') peer.gid = p['gid'];
  if (typeof p['pid'] === 'number') peer.pid = p['pid'];
  return peer;
}
