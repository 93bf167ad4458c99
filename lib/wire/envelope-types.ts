/**
 * What an envelope is: every frame body is one CBOR array whose first element is
 * the message kind as a small integer ({@link KIND}). In memory an envelope is a
 * discriminated union on a string `kind`. The wire numbers, the id ranges and
 * limits, and the envelope types live here; encoding is envelope.ts's, decoding
 * envelope-decode.ts's. See docs/wire.md for the byte-level spec.
 * @module
 */
import type { SerializedError } from '../errors.js';

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

/** Largest number of items one credit message may grant. */
export const MAX_CREDIT = 65536;

/** Largest call id; ids wrap back to 1 after it. */
export const MAX_CALL_ID = 0xffffffff;

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
