/**
 * A route: one daemon client's share of a helper's channel. The client's
 * calls use ids in the route's range, so the broker forwards their frames to
 * the helper and the helper's answers back byte for byte, checking only the
 * envelope.
 * @module
 */
import type { BulkheadError } from '../errors.js';
import type { Envelope, PeerInfo } from '../wire/envelope.js';

/** The client side of a route, as the supervisor sees it. */
export interface RouteTarget {
  /** The verified peer whose calls use this route. */
  readonly peer: PeerInfo;
  /** A reply, error or event for one of this route's calls. */
  deliver(envelope: Envelope, body: Buffer): void;
  /** An event the service sent to every client. */
  broadcast(body: Buffer): void;
  /** The helper stopped: the route's calls in flight failed with `error`. */
  interrupted(error: BulkheadError): void;
  /** The service can never be reached again. */
  invalidated(error: BulkheadError): void;
  /** Calls of this route sent to the helper and not yet answered. */
  readonly pendingCount: number;
}
