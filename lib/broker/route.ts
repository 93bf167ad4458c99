/**
 * A route: one daemon client's share of a helper's channel. The client's
 * calls use ids in the route's range, so the broker forwards their frames to
 * the helper and the helper's answers back byte for byte, checking only the
 * envelope.
 * @module
 */
import { bulkheadError, type BulkheadError } from '../errors.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import type { Envelope, PeerInfo } from '../wire/envelope.js';

/** The client side of a route, as the supervisor sees it. */
export interface RouteTarget {
  /** The verified peer whose calls use this route. */
  readonly peer: PeerInfo;
  /** A reply, error or event for one of this route's calls. `body` is valid only during the call: keep `keptBody(body)`. */
  deliver(envelope: Envelope, body: Buffer): void;
  /** An event the service sent to every client. `body` is valid only during the call: keep `keptBody(body)`. */
  broadcast(body: Buffer): void;
  /**
   * A helper of the service exited: `ids` are this route's calls it held
   * (handed to it, not answered); they fail with `error`. Calls still waiting
   * for a launch are not among them (the launch's outcome answers them).
   */
  interrupted(error: BulkheadError, ids: readonly number[]): void;
  /** The service can never be reached again. */
  invalidated(error: BulkheadError): void;
  /** Calls of this route sent to the helper and not yet answered. */
  readonly pendingCount: number;
}

/**
 * A service as routes see it: what a daemon session or a helper's outbound
 * router needs to open a route and forward frames (the supervisor implements it).
 */
export interface RoutableService {
  /** Service name. */
  readonly service: string;
  /** The protocol it serves. */
  readonly protocol: CompiledProtocol;
  /** Absolute path of its protocol file. */
  readonly protocolFile: string;
  /**
   * Opens a route for `target`; returns its id range.
   * @throws BulkheadError the failure when the service is failed, ERR_BACKPRESSURE when all ranges are taken
   */
  openRoute(target: RouteTarget): number;
  /** Closes a route: its calls still in the helper are cancelled. */
  closeRoute(range: number, pendingIds: Iterable<number>): void;
  /**
   * Forwards a call or cancel frame body of a route to the helper, launching it on demand;
   * `call` (id and method of a call) lets the helper time it for metrics. `body` is valid only during the call (it may
   * lie in a shared read buffer): an implementation that keeps it keeps `keptBody(body)`.
   */
  forward(range: number, body: Buffer, call?: { id: number; method: string }): Promise<void>;
}

/** The refusal of a call (routed or a direct channel) from `caller` to a service its manifest's `connects` does not list. */
export function notInConnects(caller: string, target: string): BulkheadError {
  return bulkheadError('ERR_NOT_PERMITTED', `Service ${caller} may not call ${target}; add "${target}" to its manifest's connects.`, { caller, target });
}
