/**
 * One direct channel between two helpers (docs/wire.md, "Helper-to-helper
 * hand-off"): the broker made a socketpair, handed one end to the target
 * service's helper (with the caller as its verified peer) and the other to
 * the calling helper, and is out of the message path. It keeps authority:
 *
 * - it holds its own copy of the target's end, so `shutdown(2)` on it ends the
 *   channel for both helpers at once, whatever either does (a reload that
 *   withdraws the right, the target stopped, failed or removed);
 * - the channel is a route of the target service (no frames go through it):
 *   the supervisor's interruptions and invalidation reach it, and the
 *   in-flight count the target reports for it shows in status;
 * - either helper exiting ends it (the target's exit interrupts the caller's
 *   calls in flight; the caller's exit closes the target's end).
 * @module
 */
import { bulkheadError, isBulkheadError, type BulkheadError } from '../errors.js';
import type { PeerInfo } from '../wire/envelope.js';
import type { ExitInfo } from './exit-report.js';
import { requireFdPassing, type FdPassing } from './fd-passing.js';
import { nextChannelId, type HandoffPipe } from './handoff-pipe.js';
import type { RoutableService, RouteTarget } from './route.js';

/** A helper as a peer channel needs it. */
export interface PeerHelper {
  readonly pid: number | undefined;
  /** Its hand-off pipe; undefined when it cannot take channels (or exited). */
  readonly handoff: HandoffPipe | undefined;
  /** Whether its runtime takes channels at all (false: the broker routes to it). */
  readonly takesChannels: boolean;
  readonly exited: Promise<ExitInfo>;
}

/** The target service: a route for lifecycle, and its helper (launched on demand). */
export interface PeerHost extends RoutableService {
  /** Launches the helper when none runs; rejects with the launch failure. */
  acquire(): Promise<unknown>;
  /** The running helper, if any. */
  readonly process: PeerHelper | undefined;
}

/** How {@link PeerChannel.open} ended: a channel, the routed path, or a refusal. */
export type PeerOpenResult = { kind: 'direct' } | { kind: 'routed' } | { kind: 'refused'; error: BulkheadError };

/** A direct channel from `caller` to `host`, broker side. */
export class PeerChannel implements RouteTarget {
  readonly range: number;
  readonly id = nextChannelId();
  private readonly fds: FdPassing;
  /** The broker's copy of the target's end: its authority over the channel. */
  private hostEnd: number | undefined;
  private hostPipe: HandoffPipe | undefined;
  private inFlight = 0;
  private ended = false;

  /**
   * @param target - the target's service name, as the caller asked for it
   * @throws BulkheadError the target's failure, or ERR_BACKPRESSURE when it has no route left
   */
  constructor(
    readonly host: PeerHost,
    readonly target: string,
    readonly caller: { service: string; helper: PeerHelper; pipe: HandoffPipe },
    /** Told once, when the channel ended. */
    private readonly onEnd: (channel: PeerChannel) => void,
  ) {
    this.fds = requireFdPassing();
    this.peer = Object.freeze({ name: caller.service, ...(caller.helper.pid === undefined ? {} : { pid: caller.helper.pid }) });
    this.range = host.openRoute(this);
  }

  /** The calling service, as the broker knows it: what the target sees as `ctx.peer`. */
  readonly peer: PeerInfo;

  /**
   * Launches the target if needed and hands both ends over, answering the
   * caller's request `req` (a channel, `routed`, or the refusal).
   */
  async open(req: number): Promise<PeerOpenResult> {
    const { pipe } = this.caller;
    try {
      await this.host.acquire();
      const helper = this.host.process;
      if (this.ended) throw bulkheadError('ERR_INTERRUPTED', `The channel to ${this.target} was closed while it was being made; call again.`, { service: this.target });
      if (helper === undefined) throw bulkheadError('ERR_INTERRUPTED', `${this.target} exited before the channel was handed to it; call again.`, { service: this.target });
      if (!helper.takesChannels) {
        // The target's runtime takes no channels: the broker routes this caller's calls to it.
        this.end();
        pipe.routed(req, this.target);
        return { kind: 'routed' };
      }
      const hostPipe = helper.handoff;
      if (hostPipe === undefined) throw bulkheadError('ERR_INTERRUPTED', `${this.target} exited before the channel was handed to it; call again.`, { service: this.target });
      const [hostEnd, callerEnd] = this.fds.socketPair();
      this.hostEnd = hostEnd;
      this.hostPipe = hostPipe;
      void helper.exited.then(() => this.end());
      void this.caller.helper.exited.then(() => this.end());
      try {
        await hostPipe.handOff(this.id, hostEnd, this.peer, {
          inFlight: (count) => {
            this.inFlight = count;
          },
          closed: () => this.end(),
        }, { events: false });
        if (!this.live) throw bulkheadError('ERR_INTERRUPTED', `${this.target} exited while the channel was handed to it; call again.`, { service: this.target });
        await pipe.giveOutbound(req, this.id, this.target, callerEnd, { inFlight: () => undefined, closed: () => this.end() });
      } finally {
        this.fds.close(callerEnd); // the caller has its copy now (or never will)
      }
      return { kind: 'direct' };
    } catch (err) {
      const error = isBulkheadError(err) ? err : bulkheadError('ERR_INTERRUPTED', `${this.target}: the channel could not be handed over (${(err as Error).message}); call again.`, { service: this.target });
      this.end();
      pipe.refuse(req, this.target, error);
      return { kind: 'refused', error };
    }
  }

  /** Ends the channel now (idempotent): both helpers see it close. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.hostEnd !== undefined) {
      this.fds.shutdown(this.hostEnd);
      this.fds.close(this.hostEnd);
      this.hostEnd = undefined;
    }
    this.hostPipe?.close(this.id);
    this.caller.pipe.close(this.id);
    this.host.closeRoute(this.range, []);
    this.onEnd(this);
  }

  /** True until the channel ended. */
  get live(): boolean {
    return !this.ended;
  }

  /** @inheritdoc */
  get pendingCount(): number {
    return this.ended ? 0 : this.inFlight;
  }

  /** @inheritdoc */
  deliver(): void {
    // No call of this channel goes through the broker.
  }

  /** @inheritdoc */
  broadcast(): void {
    // Service-wide events are for the service's clients, not for services calling it.
  }

  /** @inheritdoc */
  interrupted(): void {
    // Before the hand-off a failed launch reaches open() with its own code; after, the target's exit ends the channel.
    if (this.hostPipe !== undefined) this.end();
  }

  /** @inheritdoc */
  invalidated(): void {
    this.end();
  }
}
