/**
 * Decoding an envelope: one frame body in, a checked {@link Envelope} out, or a
 * typed `ERR_BAD_FRAME`. Every element is checked before it becomes part of an
 * envelope (ids in range, strings where strings belong, maps that are maps).
 * See docs/wire.md, section 4.
 * @module
 */
import { bulkheadError } from '../errors.js';
import { decodeItem } from './codec.js';
import { closePlain, nextPlainElement, openPlainArray } from './plain-decode.js';
import { ID_RANGE_SIZE, KIND, MAX_CALL_ID, MAX_CREDIT, type CallMeta, type Envelope, type PeerInfo } from './envelope-types.js';

/**
 * Decodes one frame body into an envelope, checking its shape. `borrowed`:
 * `body` may lie in a shared read buffer (see {@link decodeItem}).
 * @throws BulkheadError `ERR_BAD_FRAME` for anything that is not a valid envelope.
 */
export function decodeEnvelope(body: Uint8Array, borrowed = false): Envelope {
  // The common small envelope: its elements decoded one by one into locals, no array built for them (plain-decode.ts).
  const count = openPlainArray(body);
  if (count >= 0) {
    const e0 = count > 0 ? nextPlainElement() : undefined;
    const e1 = count > 1 ? nextPlainElement() : undefined;
    const e2 = count > 2 ? nextPlainElement() : undefined;
    const e3 = count > 3 ? nextPlainElement() : undefined;
    const e4 = count > 4 ? nextPlainElement() : undefined;
    const e5 = count > 5 ? nextPlainElement() : undefined;
    // No envelope has more than 6 elements; the rest is walked only to check the body (its length check fails it).
    for (let i = 6; i < count; i++) nextPlainElement();
    if (closePlain()) return fromElements(count, e0, e1, e2, e3, e4, e5);
    // Not plain after all: as before (the same walk again, then the scan and cbor-x).
  }
  const item = decodeItem(body, borrowed);
  if (!Array.isArray(item)) throw bad('not a non-empty array');
  const a = item as unknown[];
  return fromElements(a.length, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/** The envelope of a wire array of `n` elements whose first six are `a0` to `a5` (undefined past its end). */
function fromElements(n: number, a0: unknown, a1: unknown, a2: unknown, a3: unknown, a4: unknown, a5: unknown): Envelope {
  if (n === 0) throw bad('not a non-empty array');
  switch (a0) {
    case KIND.hello:
      expectLength(n, 6, 'hello');
      if (a1 !== 'service' && a1 !== 'client') throw bad('hello role must be "service" or "client"');
      return { kind: 'hello', role: a1, protocol: str(a2, 'hello protocol'), version: str(a3, 'hello version'), schemaHash: str(a4, 'hello schemaHash'), info: obj(a5, 'hello info') };
    case KIND.call:
      expectLength(n, 5, 'call');
      return { kind: 'call', id: id(a1), method: str(a2, 'call method'), params: a3, meta: a4 === null || a4 === undefined ? null : callMeta(a4) };
    case KIND.reply:
      expectLength(n, 3, 'reply');
      return { kind: 'reply', id: id(a1), result: a2 };
    case KIND.error: {
      expectLength(n, 3, 'error');
      const errorId = a1 === 0 ? 0 : id(a1);
      const e = obj(a2, 'error body');
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
      return { kind: 'event', callId: a1 === 0 ? 0 : id(a1), name: str(a2, 'event name'), payload: a3 };
    case KIND.cancel:
      expectLength(n, 3, 'cancel');
      if (a2 !== 'cancelled' && a2 !== 'deadline') throw bad('cancel reason must be "cancelled" or "deadline"');
      return { kind: 'cancel', id: id(a1), reason: a2 };
    case KIND.goodbye:
      expectLength(n, 2, 'goodbye');
      return { kind: 'goodbye', reason: str(a1, 'goodbye reason') };
    case KIND.activity: {
      expectLength(n, 2, 'activity');
      const t = a1;
      if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > MAX_CALL_ID) throw bad('activity transactions must be a non-negative integer');
      return { kind: 'activity', transactions: t };
    }
    case KIND.peer: {
      expectLength(n, 3, 'peer');
      const range = a1;
      if (typeof range !== 'number' || !Number.isInteger(range) || range < 1 || range >= 2 ** 32 / ID_RANGE_SIZE) throw bad('peer range must be an integer from 1 to 4095');
      return { kind: 'peer', range, peer: a2 === null ? null : peerInfo(a2) };
    }
    case KIND.item:
      expectLength(n, 3, 'item');
      return { kind: 'item', id: id(a1), value: a2 };
    case KIND.credit: {
      expectLength(n, 3, 'credit');
      const items = a2;
      if (typeof items !== 'number' || !Number.isInteger(items) || items < 1 || items > MAX_CREDIT) throw bad(`credit items must be an integer from 1 to ${MAX_CREDIT}`);
      return { kind: 'credit', id: id(a1), items };
    }
    case KIND.end:
      expectLength(n, 2, 'end');
      return { kind: 'end', id: id(a1) };
    default:
      // Never String() a decoded map: an own "toString" key would make that throw a TypeError.
      throw bad(`unknown message kind ${typeof a0 === 'number' ? String(a0) : `of type ${describeType(a0)}`}`);
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
