/**
 * One daemon client with a direct channel to its service (docs/wire.md,
 * "Hand-off"): the daemon made a socketpair, passed one end to the client
 * with its `ok` and hands the other to the helper, which then answers the
 * client itself. The daemon is out of the message path but keeps authority:
 *
 * - it holds its own copy of the helper's end, so `shutdown(2)` on it ends the
 *   channel for both sides at once, whatever the helper does;
 * - the client's daemon connection stays open as the channel's lifeline: the
 *   daemon writes one `{ t: "end", error }` there before it ends a channel
 *   (helper exit → `ERR_INTERRUPTED`, the service failed or was removed →
 *   `ERR_INVALIDATED`, revocation → `ERR_CERT_REVOKED`, removed from
 *   `clients` → `ERR_NOT_PERMITTED`), and the client closing it ends the channel;
 * - the session is a route of the service (no frames go through it): the
 *   supervisor's interruptions and invalidation reach it, and the in-flight
 *   count the helper reports for the channel shows in `bulkhead ps`.
 * The custody of the helper's end and the route are shared with
 * helper-to-helper channels (lib/broker/helper-end-route.ts); the lifeline is
 * this module's own.
 * @module
 */
import type { Socket } from 'node:net';
import { bulkheadError, isBulkheadError, type BulkheadError } from '../errors.js';
import { describeExit, exitData, type ExitInfo } from '../broker/exit-report.js';
import { socketDescriptor } from '../broker/fd-passing.js';
import type { HandoffPipe } from '../broker/handoff-pipe.js';
import { HelperEndRoute } from '../broker/helper-end-route.js';
import type { RoutableService } from '../broker/route.js';
import type { PeerInfo } from '../wire/envelope.js';
import { encodeItem } from '../wire/codec.js';
import { encodeFrame } from '../wire/frame-decoder.js';
import { writeHandshake } from './handshake-io.js';
import { forDaemonClient } from './client-facing-error.js';

/** The helper a channel is handed to, as the session needs it. */
export interface HandoffHelper {
  readonly pid: number | undefined;
  /** The helper's hand-off pipe; undefined when it cannot take channels. */
  readonly handoff: HandoffPipe | undefined;
  readonly exited: Promise<ExitInfo>;
}

/** The service side: a route for lifecycle, and its helper (launched on demand). */
export interface DirectHost extends RoutableService {
  /** Launches the helper when none runs; rejects with the launch failure. */
  acquire(): Promise<unknown>;
  /** The running helper, if any. */
  readonly process: HandoffHelper | undefined;
}

/** How a {@link DirectSession.start} went. */
export type HandoffStart = 'direct' | 'not-sent' | 'broken';

/** A client's direct channel to one service, daemon side. */
export class DirectSession extends HelperEndRoute {
  /** Why the channel will end if its helper goes first (a reload that withdraws the client replaces the helper too). */
  private announced: BulkheadError | undefined;

  /**
   * @throws BulkheadError the service's failure, or ERR_BACKPRESSURE when it has no route left
   */
  constructor(
    private readonly socket: Socket,
    private readonly host: DirectHost,
    peer: PeerInfo,
    /** Told once, when the channel ended; `error` is what the client was told (undefined: a clean end). */
    private readonly onEnd: (error: BulkheadError | undefined) => void,
  ) {
    super(host, peer);
  }

  /**
   * Sends `ok` with the client's end of a new channel and starts handing the
   * other end to the helper. `"not-sent"`: nothing reached the client (it may
   * still be routed); `"broken"`: the connection cannot be used any more.
   */
  start(ok: Record<string, unknown>): HandoffStart {
    const clientSocket = socketDescriptor(this.socket);
    // A write libuv still holds would land after ours: only an idle socket can carry the descriptor.
    if (clientSocket === undefined || this.socket.writableLength > 0) return this.abandon('not-sent');
    const [helperEnd, clientEnd] = this.fds.socketPair();
    const frame = encodeFrame(encodeItem(ok));
    const sent = this.fds.send(clientSocket, frame, clientEnd);
    this.fds.close(clientEnd); // the message in flight holds it now
    if (sent !== frame.length) {
      this.fds.close(helperEnd);
      return this.abandon(sent <= 0 ? 'not-sent' : 'broken');
    }
    this.keepHelperEnd(helperEnd);
    // After the hand-off the client sends nothing here; its end of this connection ends the channel.
    this.socket.on('data', () => this.end(bulkheadError('ERR_BAD_FRAME', 'Protocol violation: a client sent bytes on its daemon connection after the hand-off.')));
    this.socket.on('error', () => undefined); // 'close' follows
    this.socket.on('close', () => this.end());
    this.socket.resume();
    void this.bind();
    return 'direct';
  }

  /**
   * Names the reason this channel is about to end for (undefined: no longer),
   * so an interruption on the way there reports it instead.
   */
  announce(reason: BulkheadError | undefined): void {
    this.announced = reason;
  }

  /** Ends the channel now (idempotent): the client learns `error` first, then both ends see the channel close. */
  end(reason?: BulkheadError): void {
    if (!this.markEnded()) return;
    const error = reason?.code === 'ERR_INTERRUPTED' && this.announced !== undefined ? this.announced : reason;
    // The helper's stderr (and the server's paths in it) stays on the daemon's host.
    if (error !== undefined && this.socket.writable) writeHandshake(this.socket, { t: 'end', error: forDaemonClient(error, this.host.service).toJSON() });
    this.socket.end();
    this.release();
    this.onEnd(error);
  }

  private abandon(result: HandoffStart): HandoffStart {
    this.markEnded();
    this.release(); // nothing was handed over: this only closes the route
    return result;
  }

  /** Launches the helper if needed and gives it its end. */
  private async bind(): Promise<void> {
    try {
      await this.host.acquire();
      const helper = this.host.process;
      if (this.hasEnded()) return;
      if (helper === undefined) throw bulkheadError('ERR_INTERRUPTED', `${this.host.service} exited before the channel was handed to it; call again.`, { service: this.host.service });
      if (helper.handoff === undefined) {
        throw bulkheadError('ERR_INTERRUPTED', `${this.host.service}'s helper cannot take direct channels; call again (the daemon routes this service from now on).`, { service: this.host.service, reason: 'no-handoff' });
      }
      const handing = this.handOff(helper.handoff, (error) => this.end(error));
      void helper.exited.then((info) => this.end(interruption(this.host.service, helper.pid, info)));
      // The helper's reason for closing (a client that stopped reading) goes to the log and the client's lifeline.
      await handing;
    } catch (err) {
      this.end(isBulkheadError(err) ? err : bulkheadError('ERR_INTERRUPTED', `${this.host.service}: the channel could not be handed over (${(err as Error).message}); call again.`));
    }
  }
}

/** What a direct client is told when its helper exits: the same words a routed call gets. */
function interruption(service: string, pid: number | undefined, info: ExitInfo): BulkheadError {
  return bulkheadError('ERR_INTERRUPTED', `${service} (pid ${pid ?? '?'}) ${describeExit(info)}; calls in flight on the direct channel were lost, the next call relaunches it.`, { service, ...exitData(info) });
}
