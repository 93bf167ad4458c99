/**
 * Decoding an envelope: one frame body in, a checked {@link Envelope} out, or a
 * typed `ERR_BAD_FRAME`. Every element is checked before it becomes part of an
 * envelope (ids in range, strings where strings belong, maps that are maps).
 * See docs/wire.md, section 4.
 * @module
 */
import { bulkheadError } from '../errors.js';
import { decodeItem } from './codec.js';
import { clearPlainElements, decodePlainElements, plainElements } from './plain-decode.js';
import { ID_RANGE_SIZE, KIND, MAX_CALL_ID, MAX_CREDIT, type CallMeta, type Envelope, type PeerInfo } from './envelope-types.js';

/**
 * Decodes one frame body into an envelope, checking its shape. `borrowed`:
 * `body` may lie in a shared read buffer (see {@link decodeItem}).
 * @throws BulkheadError `ERR_BAD_FRAME` for anything that is not a valid envelope.
 */
export function decodeEnvelope(body: Uint8Array, borrowed = false): Envelope {
  // The common small envelope: its elements decoded in place, no array built for them (plain-decode.ts).
  const count = decodePlainElements(body);
  if (count >= 0) {
    try {
      return fromElements(plainElements, count);
    } finally {
      clearPlainElements(count);
    }
  }
  const item = decodeItem(body, borrowed);
  if (!Array.isArray(item)) throw bad('not a non-empty array');
  return fromElements(item as unknown[], item.length);
}

/** The envelope whose wire array's first `n` elements are `a`'s (`a` may be longer: only those are read). */
function fromElements(a: unknown[], n: number): Envelope {
  if (n === 0) throw bad('not a non-empty array');
  switch (a[0]) {
    case KIND.hello:
      expectLength(n, 6, 'hello');
      if (a[1] !== 'service' && a[1] !== 'client') throw bad('hello role must be "service" or "client"');
      return { kind: 'hello', role: a[1], protocol: str(a[2], 'hello protocol'), version: str(a[3], 'hello version'), schemaHash: str(a[4], 'hello schemaHash'), info: obj(a[5], 'hello info') };
    case KIND.call:
      expectLength(n, 5, 'call');
      return { kind: 'call', id: id(a[1]), method: str(a[2], 'call method'), params: a[3], meta: a[4] === null || a[4] === undefined ? null : callMeta(a[4]) };
    case KIND.reply:
      expectLength(n, 3, 'reply');
      return { kind: 'reply', id: id(a[1]), result: a[2] };
    case KIND.error: {
      expectLength(n, 3, 'error');
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
      expectLength(n, 4, 'event');
      return { kind: 'event', callId: a[1] === 0 ? 0 : id(a[1]), name: str(a[2], 'event name'), payload: a[3] };
    case KIND.cancel:
      expectLength(n, 3, 'cancel');
      if (a[2] !== 'cancelled' && a[2] !== 'deadline') throw bad('cancel reason must be "cancelled" or "deadline"');
      return { kind: 'cancel', id: id(a[1]), reason: a[2] };
    case KIND.goodbye:
      expectLength(n, 2, 'goodbye');
      return { kind: 'goodbye', reason: str(a[1], 'goodbye reason') };
    case KIND.activity: {
      expectLength(n, 2, 'activity');
      const t = a[1];
      if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > MAX_CALL_ID) throw bad('activity transactions must be a non-negative integer');
      return { kind: 'activity', transactions: t };
    }
    case KIND.peer: {
      expectLength(n, 3, 'peer');
      const range = a[1];
      if (typeof range !== 'number' || !Number.isInteger(range) || range < 1 || range >= 2 ** 32 / ID_RANGE_SIZE) throw bad('peer range must be an integer from 1 to 4095');
      return { kind: 'peer', range, peer: a[2] === null ? null : peerInfo(a[2]) };
    }
    case KIND.item:
      expectLength(n, 3, 'item');
      return { kind: 'item', id: id(a[1]), value: a[2] };
    case KIND.credit: {
      expectLength(n, 3, 'credit');
      const items = a[2];
      if (typeof items !== 'number' || !Number.isInteger(items) || items < 1 || items > MAX_CREDIT) throw bad(`credit items must be an integer from 1 to ${MAX_CREDIT}`);
      return { kind: 'credit', id: id(a[1]), items };
    }
    case KIND.end:
      expectLength(n, 2, 'end');
      return { kind: 'end', id: id(a[1]) };
    default:
      // Never String() a decoded map: an own "toString" key would make that throw a TypeError.
      throw bad(`unknown message kind ${typeof a[0] === 'number' ? String(a[0]) : `of type ${describeType(a[0])}`}`);
  }
}

function bad(what: string) {
  return bulkheadError('ERR_BAD_FRAME', `Invalid envelope: ${what}. The peer is not speaking the bulkhead wire format (docs/wire.md).`);
}

function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Uint8Array) return 'byte string';
  return typeof v;
}

function expectLength(length: number, n: number, kind: string): void {
  if (length !== n) throw bad(`${kind} must have ${n} elements, has ${length}`);
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
