/**
 * The half every handed-off channel shares, broker side: custody of the
 * helper's end of the socketpair, and the route it is in its service's route
 * table. Two kinds build on it: a daemon client's direct channel
 * (lib/daemon/direct-session.ts) and a helper-to-helper channel
 * (peer-channel.ts); what differs is the other end (the client's lifeline,
 * the calling helper's pipe), which each keeps to itself.
 *
 * - The broker holds its own copy of the helper's end, so `shutdown(2)` on it
 *   ends the channel for both sides at once, whatever either does.
 * - The channel is a route of the service, yet no frame of it passes the
 *   broker: `deliver` and `broadcast` do nothing (calls, answers and events go
 *   between the two ends), the in-flight count is the helper's own report for
 *   the channel, and the supervisor's interruption and invalidation end it.
 * @module
 */
import type { BulkheadError } from '../errors.js';
import type { PeerInfo } from '../wire/envelope.js';
import { requireFdPassing, type FdPassing } from './fd-passing.js';
import { nextChannelId, type HandoffPipe } from './handoff-pipe.js';
import type { RoutableService, RouteTarget } from './route.js';

/** A channel handed to a service's helper: the broker's custody of its end, and its route. */
export abstract class HelperEndRoute implements RouteTarget {
  readonly range: number;
  /** The channel's id on the hand-off pipes, unique in this broker. */
  readonly id = nextChannelId();
  protected readonly fds: FdPassing;
  /** The broker's copy of the helper's end: its authority over the channel. */
  private helperEnd: number | undefined;
  /** The helper's hand-off pipe, once the end is being handed over. */
  private helperPipe: HandoffPipe | undefined;
  private inFlight = 0;
  private ended = false;

  /**
   * @param routeHost - the service the channel goes to (its route is opened here)
   * @param peer - who is on the other end, as the broker verified it: what the helper sees as `ctx.peer`
   * @throws BulkheadError the service's failure, or ERR_BACKPRESSURE when it has no route left
   */
  constructor(private readonly routeHost: RoutableService, readonly peer: PeerInfo) {
    this.fds = requireFdPassing();
    this.range = routeHost.openRoute(this);
  }

  /** Ends the channel now (idempotent); `reason` is why, for the kinds that tell their other end. */
  abstract end(reason?: BulkheadError): void;

  /** True until the channel ended. */
  get live(): boolean {
    return !this.ended;
  }

  /** True once the channel ended (a method: its answer changes across an await). */
  protected hasEnded(): boolean {
    return this.ended;
  }

  /** True once the helper's end is being (or was) handed to its helper. */
  protected get handedOver(): boolean {
    return this.helperPipe !== undefined;
  }

  /** Takes custody of the helper's end of a new socketpair (closed by {@link HelperEndRoute.release}). */
  protected keepHelperEnd(fd: number): void {
    this.helperEnd = fd;
  }

  /**
   * Hands the kept end to the helper over `pipe`, with {@link HelperEndRoute.peer};
   * the helper's reports of it set the in-flight count, its close calls `closed`.
   */
  protected handOff(pipe: HandoffPipe, closed: (error: BulkheadError | undefined) => void, options: { events?: boolean } = {}): Promise<void> {
    this.helperPipe = pipe;
    return pipe.handOff(this.id, this.helperEnd!, this.peer, {
      inFlight: (count) => {
        this.inFlight = count;
      },
      closed,
    }, options);
  }

  /** Marks the channel ended; false when it already was (the caller then does nothing). */
  protected markEnded(): boolean {
    if (this.ended) return false;
    this.ended = true;
    return true;
  }

  /** Shuts and closes the broker's copy of the helper's end, tells the helper's pipe, and closes the route. */
  protected release(): void {
    if (this.helperEnd !== undefined) {
      this.fds.shutdown(this.helperEnd);
      this.fds.close(this.helperEnd);
      this.helperEnd = undefined;
    }
    this.helperPipe?.close(this.id);
    this.routeHost.closeRoute(this.range, []);
  }

  /** @inheritdoc */
  get pendingCount(): number {
    return this.ended ? 0 : this.inFlight;
  }

  /** @inheritdoc */
  deliver(): void {
    // No call of a handed-off channel goes through the broker.
  }

  /** @inheritdoc */
  broadcast(): void {
    // A daemon client gets service-wide events on the channel from the helper itself; a calling service gets none.
  }

  /** @inheritdoc */
  interrupted(error: BulkheadError): void {
    // Before the hand-off a failed launch reaches the opener with its own code; after, the helper's exit ends the channel.
    if (this.handedOver) this.end(error);
  }

  /** @inheritdoc */
  invalidated(error: BulkheadError): void {
    this.end(error);
  }
}
