/**
 * What a caller hands an RpcClient and gets back from it: per-call and
 * per-stream options, the client's limits and their defaults, the hooks it
 * reports to, and the shape of a stream in progress. Kept apart from the
 * client's engine (rpc-client.ts) so the contract reads on one page.
 * @module
 */
import type { BulkheadError } from '../errors.js';
import type { CallMeta } from '../wire/envelope.js';

/** Who receives the events a service emits while handling a call. */
export interface CallOwner {
  /** A validated event tied to one of this owner's calls. */
  deliverEvent(name: string, payload: unknown): void;
  /** An event tied to one of this owner's calls failed validation. */
  deliverError(error: BulkheadError): void;
}

/** Per-call options for {@link RpcClient.call}. */
export interface RpcCallOptions {
  /** Milliseconds until the call fails with ERR_DEADLINE. */
  timeoutMs?: number | undefined;
  /** Aborting it fails the call with ERR_CANCELLED (or the signal's BulkheadError reason). */
  signal?: AbortSignal | undefined;
  /** Receives events the service emits for this call. */
  owner?: CallOwner | undefined;
  /** Extra metadata (e.g. verified peer) sent with the call. */
  meta?: CallMeta | undefined;
  /**
   * The caller's describeNonPlain walk of the params found no byte string of
   * LARGE_BYTES_THRESHOLD or more, so encoding skips the search for one.
   */
  noLargeBytes?: boolean | undefined;
}

/** Limits of an {@link RpcClient}. */
export interface RpcClientOptions {
  /**
   * Calls sent and not yet answered; further calls wait in a queue.
   * @default 1024
   */
  maxInFlight?: number;
  /**
   * Calls waiting for an in-flight slot; one more fails with ERR_BACKPRESSURE.
   * @default 65536
   */
  maxQueued?: number;
  /**
   * Bytes that may wait to be written to the peer (our outbox plus the
   * socket's buffer) when a call is sent; past it the call fails at once with
   * ERR_BACKPRESSURE. Bounds the memory held for a peer that stopped reading
   * (a hung helper), whatever happens to the calls' deadlines: at most this
   * plus one frame.
   * @default unbounded
   */
  maxQueuedBytes?: number;
  /**
   * The service's name, for `data.service` of the errors its calls reject with
   * (a service is registered under a name; its protocol has another).
   * @default the protocol's name
   */
  service?: string;
  /**
   * The call-id range this client uses (ids `range * ID_RANGE_SIZE` up to the
   * next range); a daemon assigns one per routed client.
   * @default 0 (the broker's own range)
   */
  idRange?: number;
  /**
   * The peer is a broker (daemon), trusted to send any bulkhead error code;
   * otherwise a service's non-service codes become ERR_SERVICE_ERROR.
   * @default false
   */
  trustPeerCodes?: boolean;
  /**
   * Treat the channel as ready without a hello (a helper's outbound channel,
   * where the broker checks each call's target instead).
   * @default false
   */
  skipHello?: boolean;
}

/** Defaults of {@link RpcClientOptions}. */
export const RPC_CLIENT_DEFAULTS = { maxInFlight: 1024, maxQueued: 65536 } as const;

/** Events of the RpcClient that are not tied to a call. */
export interface RpcClientHooks {
  /** A validated event for every client of the service (callId 0). */
  broadcast(name: string, payload: unknown): void;
  /** An event that failed validation, or an event for no known call. */
  eventError(error: BulkheadError): void;
  /**
   * The helper went from idle to busy or back: busy while a call is in
   * flight or queued, or a transaction (ctx.keepAlive) is open. Optional.
   */
  activity?(busy: boolean): void;
  /** A call went out to the peer with this id (for call metrics). Optional. */
  sent?(id: number, method: string): void;
}

/** Per-stream options for {@link RpcClient.stream}. */
export interface RpcStreamOptions extends RpcCallOptions {
  /** Items to send to the service (an `accepts` method). */
  input?: AsyncIterable<unknown> | Iterable<unknown> | undefined;
}

/** A stream in progress, as {@link RpcClient.stream} returns it. */
export interface RpcStream {
  /** Settles with the method's final value (`null` when it declares no result), or the stream's error. */
  readonly result: Promise<unknown>;
  /** The next item the service yielded (done after the last); throws the stream's error. */
  next(): Promise<IteratorResult<unknown>>;
  /** The caller stops reading: the call is cancelled (the handler's ctx.signal aborts), unless already settled. */
  cancel(): void;
  /** Items received and not yet read. */
  readonly buffered: number;
}
