/**
 * A daemon client's direct channel (docs/wire.md, "Hand-off"): the socket the
 * daemon handed over, spoken to with an ordinary {@link RpcClient} (the helper
 * is the peer, so its error codes are not trusted as a broker's), and the
 * daemon connection kept open beside it as the channel's lifeline. The
 * daemon says why a channel ends there (`{ t: "end", error }`) before it
 * shuts the channel down; a lifeline that closes ends the channel too.
 * @module
 */
import { Socket } from 'node:net';
import { RpcClient, type RpcClientHooks } from '../connection/rpc-client.js';
import { BulkheadError, bulkheadError, isErrorCode, type BulkheadErrorCode } from '../errors.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import { FramedChannel } from '../wire/framed-channel.js';
import { HandshakeReader } from './handshake-io.js';
import { resumeReads } from './handoff-receive.js';

/**
 * How long a client whose channel closed waits for the daemon to say why on
 * the lifeline, in ms, before it reports a plain interruption. The daemon
 * writes the reason before it shuts the channel down, so this is a bound,
 * not a delay anyone waits in the normal case.
 */
export const LIFELINE_GRACE_MS = 2000;

/** Longest wait for a lifeline message: as long as a timer can wait (the connection lives that long). */
const LIFELINE_WAIT_MS = 2 ** 31 - 1;

/** What a direct channel tells its endpoint. */
export interface DirectClientHooks extends Pick<RpcClientHooks, 'broadcast' | 'eventError'> {
  /**
   * The channel ended; its calls in flight already rejected with `error`.
   * `ERR_INTERRUPTED`: the helper went away (the next call re-brokers);
   * anything else: the daemon withdrew the client's right to the service.
   * Undefined: a clean end (the client closed it).
   */
  ended(error: BulkheadError | undefined): void;
  /**
   * The helper is stopping (it said goodbye): new calls must go to a new
   * channel. This one closes itself once its calls in flight are answered.
   */
  retiring(): void;
}

/** A client's direct channel and its lifeline. */
export class DirectClient {
  readonly rpc: RpcClient;
  private reason: BulkheadError | undefined;
  private finished = false;
  private closing = false;
  private retired = false;

  /**
   * @param lifeline - the daemon connection the hand-off came on, held (see handoff-receive.ts)
   * @param fd - the client's end of the channel, owned from now on
   */
  constructor(private readonly lifeline: Socket, fd: number, protocol: CompiledProtocol, service: string, private readonly hooks: DirectClientHooks) {
    const socket = new Socket({ fd, readable: true, writable: true });
    const channel = new FramedChannel(socket);
    this.rpc = new RpcClient(channel, protocol, {
      broadcast: hooks.broadcast,
      eventError: hooks.eventError,
      activity: (busy) => {
        if (!busy && this.retired) this.close();
      },
    }, { service });
    channel.attach({
      envelope: (e, body) => {
        this.rpc.receive(e, body.length);
        if (e.kind === 'goodbye') this.retire();
      },
      closed: (error) => {
        if (this.finished) return;
        if (this.closing) return this.finish(undefined);
        // The daemon's reason is on its way (or the lifeline closes): wait for it, within a bound.
        const fallback = error ?? this.rpc.peerError ?? bulkheadError('ERR_INTERRUPTED', `The direct channel to ${service} closed while calls were in flight; the next call connects again.`, { service });
        setTimeout(() => this.finish(this.reason ?? fallback), LIFELINE_GRACE_MS).unref();
      },
    });
    resumeReads(lifeline);
    const reader = new HandshakeReader(lifeline);
    const listen = (): void => {
      reader.next(LIFELINE_WAIT_MS).then((message) => {
        if (message['t'] === 'end') {
          this.reason = endError(message['error']);
          this.finish(this.reason);
        } else {
          listen();
        }
      }, () => {
        if (this.reason !== undefined || this.closing) return this.finish(this.reason);
        // Closed without a word: the daemon is gone (or closing), and its authority with it.
        const lost = bulkheadError('ERR_INVALIDATED', `The connection to the daemon closed; the direct channel to ${service} ended with it. Open a new connection once the daemon runs.`, { service, cause: this.rpc.peerError?.code ?? 'ERR_INTERRUPTED' });
        this.finish(this.rpc.peerError ?? lost);
      });
    };
    listen();
  }

  /** The helper's goodbye: no new calls here; close once the calls in flight are answered. */
  private retire(): void {
    if (this.retired || this.finished) return;
    this.retired = true;
    this.hooks.retiring();
    if (!this.rpc.isBusy) this.close();
  }

  /** Ends the channel from the client's side: goodbye to the helper, and the lifeline closes. */
  close(): void {
    if (this.finished || this.closing) return;
    this.closing = true;
    if (this.rpc.channel.open) this.rpc.channel.end('client closing');
    this.lifeline.end();
  }

  private finish(error: BulkheadError | undefined): void {
    if (this.finished) return;
    this.finished = true;
    this.lifeline.destroy();
    this.rpc.channel.destroy();
    // Calls in flight were interrupted whatever ended the channel, unless the daemon named a sharper reason.
    const callError = error === undefined || error.code === 'ERR_INVALIDATED' ? bulkheadError('ERR_INTERRUPTED', `The direct channel closed while the call was in flight (${error?.code ?? 'closed'}).`, error === undefined ? {} : { cause: error.code }) : error;
    this.rpc.interrupt(callError);
    this.hooks.ended(error);
  }
}

/** The error the daemon sent with `end`, as a typed error (an unknown code reads as an interruption). */
function endError(value: unknown): BulkheadError {
  const e = (typeof value === 'object' && value !== null ? value : {}) as { code?: unknown; message?: unknown; data?: unknown };
  const code: BulkheadErrorCode = isErrorCode(e.code) ? e.code : 'ERR_INTERRUPTED';
  const data = typeof e.data === 'object' && e.data !== null ? e.data as Record<string, unknown> : {};
  return new BulkheadError(code, typeof e.message === 'string' ? e.message : 'The daemon ended the direct channel.', data);
}
