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
 *   in-flight count the target reports for it shows in status (both shared
 *   with a daemon client's direct channel: helper-end-route.ts);
 * - either helper exiting ends it (the target's exit interrupts the caller's
 *   calls in flight; the caller's exit closes the target's end).
 * @module
 */
import { bulkheadError, isBulkheadError, type BulkheadError } from '../errors.js';
import type { ExitInfo } from './exit-report.js';
import type { HandoffPipe } from './handoff-pipe.js';
import { HelperEndRoute } from './helper-end-route.js';
import type { RoutableService } from './route.js';

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
export class PeerChannel extends HelperEndRoute {
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
    // The calling service, as the broker knows it: what the target sees as `ctx.peer`.
    super(host, Object.freeze({ name: caller.service, ...(caller.helper.pid === undefined ? {} : { pid: caller.helper.pid }) }));
  }

  /**
   * Launches the target if needed and hands both ends over, answering the
   * caller's request `req` (a channel, `routed`, or the refusal).
   */
  async open(req: number): Promise<PeerOpenResult> {
    const { pipe } = this.caller;
    try {
      await this.host.acquire();
      const helper = this.host.process;
      if (this.hasEnded()) throw bulkheadError('ERR_INTERRUPTED', `The channel to ${this.target} was closed while it was being made; call again.`, { service: this.target });
      if (helper?.takesChannels === false) {
        // The target's runtime takes no channels: the broker routes this caller's calls to it.
        this.end();
        pipe.routed(req, this.target);
        return { kind: 'routed' };
      }
      // No helper, or one whose hand-off pipe is gone: it exited.
      const hostPipe = helper?.handoff;
      if (helper === undefined || hostPipe === undefined) throw bulkheadError('ERR_INTERRUPTED', `${this.target} exited before the channel was handed to it; call again.`, { service: this.target });
      const [hostEnd, callerEnd] = this.fds.socketPair();
      this.keepHelperEnd(hostEnd);
      void helper.exited.then(() => this.end());
      void this.caller.helper.exited.then(() => this.end());
      try {
        await this.handOff(hostPipe, () => this.end(), { events: false });
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
    if (!this.markEnded()) return;
    this.release();
    this.caller.pipe.close(this.id);
    this.onEnd(this);
  }
}
