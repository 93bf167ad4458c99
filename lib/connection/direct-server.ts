/**
 * The helper's side of direct channels (docs/wire.md, "Hand-off"): the
 * broker passes the helper one end of a connected socket per client over the
 * hand-off pipe, with the peer it verified; the helper answers that client on
 * it with an ordinary {@link RpcServer} whose every call is attributed to that
 * peer (a `peer` message on the channel is a protocol violation: the client
 * cannot name itself). The helper reports its counts back on the same pipe,
 * so `bulkhead ps` still shows calls and calls in flight, and, batched, the
 * calls' durations and error codes for the broker's metrics (call-meter.ts).
 * The manifest's maxInFlight / maxQueued bind these channels through the
 * runtime's call gate (call-gate.ts), passed in the server options.
 *
 * The pipe (helper-pipe.ts) is Node's own IPC channel, so a helper needs no
 * FFI to receive descriptors.
 * @module
 */
import { Socket } from 'node:net';
import type { PeerInfo } from '../wire/envelope.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../wire/frame-decoder.js';
import { FramedChannel, type FramedChannelOptions } from '../wire/framed-channel.js';
import { RpcServer, type RpcServerHooks, type RpcServerOptions } from './rpc-server.js';
import { callsObserved, onPipeMessage, openHelperPipe, sendOnPipe } from './helper-pipe.js';
import { broadcastTo, closeReport, directClientBacklog, paceDirectClient } from './direct-pace.js';
import { CallMeter } from './call-meter.js';

/** Makes the server for one direct channel (the runtime passes its protocol and handlers). */
export type DirectServerFactory = (channel: FramedChannel, hooks: RpcServerHooks, options: RpcServerOptions) => RpcServer;

/** Calls one direct client may have running at once (the daemon's bound for a routed client). */
export const MAX_DIRECT_IN_FLIGHT = 1024;

/** How often, at most, the helper sends its counts to the broker, in ms. */
export const TALLY_INTERVAL_MS = 50;

/** Longest peer name accepted from the pipe (the broker's own certificate names are far shorter). */
const MAX_PEER_NAME = 1024;

/** One direct channel the helper serves, and what it has not reported yet. */
interface ServedChannel {
  readonly server: RpcServer;
  /** False for a channel from another helper (`connects`): it gets no service-wide events, as on the routed path. */
  events: boolean;
  /** Calls answered since the last report. */
  answered: number;
  /** The in-flight count last reported. */
  inFlight: number;
  /**
   * Closed: set by the `closed` callback, which then flushes the tally at once; that flush sends its
   * last report and forgets it. So every other reader of `channels` sees open channels only.
   */
  closed: boolean;
}

/** The direct channels a helper serves. */
export class DirectChannels {
  /** By channel id: open channels, and closed ones until their last report went. */
  private readonly channels = new Map<number, ServedChannel>();
  /** Channels open now. */
  private openCount = 0;
  private tallyTimer: NodeJS.Timeout | undefined;
  /** Durations and codes of the calls answered on every direct channel since the last report. */
  private readonly meter = new CallMeter();
  /** Someone observes calls (the broker's `observe` line): from then on calls are timed, not only counted. */
  private timing = callsObserved(); // the broker may have said so before serve() (connect() opens the pipe earlier)
  /** Set once the helper is leaving: resolves {@link DirectChannels.retire} when the last channel closed. */
  private retiring: Array<() => void> | undefined;

  private constructor(
    private readonly makeServer: DirectServerFactory,
    private readonly channelOptions: FramedChannelOptions,
    private readonly serverOptions: RpcServerOptions,
  ) {
    onPipeMessage('channel', (message, handle) => this.receive(message, handle));
    onPipeMessage('close', (message) => this.receive(message, undefined));
    onPipeMessage('observe', () => {
      this.timing = true;
      return false;
    });
  }

  /**
   * Opens the hand-off pipe on `fd` and starts taking channels from it.
   * @returns undefined when this Node cannot open an IPC pipe (the broker then routes this helper's clients)
   */
  static open(fd: number, makeServer: DirectServerFactory, channelOptions: FramedChannelOptions, serverOptions: RpcServerOptions): DirectChannels | undefined {
    if (!openHelperPipe(fd)) return undefined;
    return new DirectChannels(makeServer, channelOptions, serverOptions);
  }

  /** Calls running on direct channels now. */
  get inFlight(): number {
    let n = 0;
    for (const c of this.channels.values()) n += c.server.inFlight;
    return n;
  }

  /** Streams open on direct channels now. */
  get openStreams(): number {
    let n = 0;
    for (const c of this.channels.values()) n += c.server.openStreams;
    return n;
  }

  /** Direct channels open now. */
  get size(): number {
    return this.openCount;
  }

  /** Sends a service-wide event to every direct client (each paced by its own channel); not to calling services. */
  broadcast(name: string, payload: unknown): Array<Promise<void>> {
    const sent: Array<Promise<void>> = [];
    for (const c of this.channels.values()) if (c.events) sent.push(broadcastTo(c.server, name, payload));
    return sent;
  }

  /**
   * The helper is leaving (the broker said goodbye): tells every direct client
   * to send no new calls here (a `goodbye` on its channel; the client connects
   * again for new calls and closes this channel once its calls in flight are
   * answered). Resolves once every direct channel closed; the broker's stop
   * timeout bounds a client that never closes.
   */
  retire(): Promise<void> {
    this.retiring ??= [];
    for (const c of this.channels.values()) sayGoodbye(c.server);
    if (this.openCount === 0) return Promise.resolve();
    return new Promise((resolve) => this.retiring!.push(resolve));
  }

  /** A `channel` (with its socket) or a `close` from the pipe; returns whether the handle was taken. */
  private receive(m: Record<string, unknown>, handle: unknown): boolean {
    const id = m['id'];
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) return false;
    if (m['bulkhead'] === 'channel' && handle instanceof Socket) {
      const peer = peerOf(m['peer']);
      if (peer === undefined || this.channels.has(id)) return false;
      this.accept(id, handle, peer, m['events'] !== false);
      return true;
    }
    if (m['bulkhead'] === 'close') this.channels.get(id)?.server.channel.destroy();
    return false;
  }

  private accept(id: number, socket: Socket, peer: PeerInfo, events: boolean): void {
    socket.unref();
    // The client is untrusted and nobody stands between it and the helper: a slow one is paced and
    // a stalled one cut off as the daemon does for a routed client (direct-pace.ts), its unread
    // backlog is bounded (past it the channel closes with ERR_BACKPRESSURE), and so are its calls in flight.
    const maxFrameBytes = this.channelOptions.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    const channel = new FramedChannel(socket, { ...this.channelOptions, maxBufferedBytes: directClientBacklog(maxFrameBytes) });
    const backlog = paceDirectClient(channel, maxFrameBytes);
    /** When each call in flight on this channel arrived (performance.now()), for its duration. */
    const starts = new Map<number, number>();
    const server = this.makeServer(channel, {
      // A client's goodbye ends its channel only; the helper keeps serving the others.
      goodbye: () => void server.drained().then(() => channel.end('bye')),
      closed: (error) => {
        backlog.dispose();
        const served = this.channels.get(id);
        if (served?.server !== server || served.closed) return;
        served.closed = true;
        this.openCount--;
        this.flushTally(); // its last answers count too
        // Why the helper cut the client off (a stall, a protocol violation), for the daemon's log.
        this.send({ bulkhead: 'closed', id, ...closeReport(error) });
        if (this.openCount === 0 && this.retiring !== undefined) for (const resolve of this.retiring.splice(0)) resolve();
      },
      callStarted: (call) => {
        if (this.timing) starts.set(call, performance.now());
        this.scheduleTally();
      },
      callSettled: (call, code) => {
        const served = this.channels.get(id);
        if (served !== undefined) served.answered++;
        const at = starts.size === 0 ? undefined : starts.get(call);
        if (at === undefined) {
          this.meter.count(code);
        } else {
          starts.delete(call);
          this.meter.record((performance.now() - at) / 1000, code);
        }
        this.scheduleTally();
      },
      callDropped: (call) => starts.delete(call),
    }, { ...this.serverOptions, peer, maxInFlight: MAX_DIRECT_IN_FLIGHT, answerHello: true, backlog });
    this.channels.set(id, { server, events, answered: 0, inFlight: 0, closed: false });
    this.openCount++;
    if (this.retiring !== undefined) sayGoodbye(server);
  }

  /** Counts go at most every TALLY_INTERVAL_MS, one line per channel that changed. */
  private scheduleTally(): void {
    if (this.tallyTimer !== undefined) return;
    this.tallyTimer = setTimeout(() => this.flushTally(), TALLY_INTERVAL_MS);
    this.tallyTimer.unref();
  }

  private flushTally(): void {
    clearTimeout(this.tallyTimer);
    this.tallyTimer = undefined;
    for (const [id, c] of this.channels) {
      // Calls waiting in the gate are in flight for the caller, as in the broker's own count.
      const inFlight = c.closed ? 0 : c.server.inFlight + c.server.queuedHere;
      if (c.answered > 0 || inFlight !== c.inFlight) this.send({ bulkhead: 'tally', id, calls: c.answered, inFlight });
      c.answered = 0;
      c.inFlight = inFlight;
      if (c.closed) this.channels.delete(id);
    }
    const batch = this.meter.take();
    if (batch !== undefined) this.send({ bulkhead: 'calls', ...batch });
  }

  private send(message: Record<string, unknown>): void {
    // The broker may be gone (then fd 3 closes and the helper exits); a lost report is harmless.
    sendOnPipe(message);
  }
}

function sayGoodbye(server: RpcServer): void {
  if (server.channel.open) server.channel.send({ kind: 'goodbye', reason: 'the service is stopping; new calls go to a new channel' });
}

/** The peer the broker named, checked for shape (the pipe is the broker's, but the check is cheap). */
function peerOf(value: unknown): PeerInfo | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const name = v['name'];
  if (typeof name !== 'string' || name === '' || name.length > MAX_PEER_NAME) return undefined;
  const peer: PeerInfo = { name };
  for (const key of ['uid', 'gid', 'pid'] as const) {
    const n = v[key];
    if (n === undefined) continue;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return undefined;
    peer[key] = n;
  }
  return Object.freeze(peer);
}
