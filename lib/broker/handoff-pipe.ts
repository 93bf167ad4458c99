/**
 * The broker's side of a helper's hand-off pipe: a Unix socket over which the
 * broker gives the helper one end of each direct channel (a connected socket,
 * passed with `SCM_RIGHTS`), tells it which verified peer is on the other end,
 * and orders a channel closed. The helper reports back what it served.
 *
 * The helper receives with Node's own IPC channel (no FFI in the helper), so
 * the pipe speaks Node's IPC framing: one JSON object per line, and a passed
 * socket travels with the line
 * `{"cmd":"NODE_HANDLE","type":"net.Socket","msg":{...}}`, which the helper's
 * Node acknowledges with `{"cmd":"NODE_HANDLE_ACK"}` (or `NACK` when the
 * descriptor was lost). Like Node's own sender, the next line waits for that
 * acknowledgement, so a line and its descriptor are always read together.
 *
 * What the helper writes is untrusted: lines are bounded (longer ones are
 * dropped unread), parsed as JSON without revivers, and only the exact shapes
 * below are acted on. Docs: docs/wire.md, "Hand-off".
 * @module
 */
import { Socket } from 'node:net';
import { bulkheadError, type BulkheadError } from '../errors.js';
import type { PeerInfo } from '../wire/envelope.js';
import { HELPER_ENV } from '../wire/helper-env.js';
import { loadFdPassing, requireFdPassing, type FdPassing } from './fd-passing.js';
import { DIRECT_CLOSE_CODES, MAX_CLOSE_MESSAGE } from '../connection/direct-pace.js';
import { readCallBatch, type CallBatch } from '../connection/call-meter.js';

/** Longest line read from a helper's hand-off pipe; a longer one is skipped whole. */
export const MAX_HANDOFF_LINE_BYTES = 4096;

/** Hooks of a {@link HandoffPipe}. */
export interface HandoffPipeHooks {
  /** The helper answered `calls` more calls on its direct channels. */
  answered(calls: number): void;
  /** The durations and error codes of calls the helper answered on its direct channels, batched (call-meter.ts). */
  metered?(batch: CallBatch): void;
  /**
   * Whether someone observes calls now (the metrics were rendered, a `call`
   * listener): then the helper is told, once, to time its direct calls too.
   * @default never: the helper counts its direct calls without timing them
   */
  observed?(): boolean;
  /**
   * The helper asks for a direct channel to `service` (one it `connects` to);
   * answer with {@link HandoffPipe.giveOutbound}, `routed` or `refuse`, echoing `req`.
   */
  open?(req: number, service: string): void;
}

/** Longest service name taken from an `open` request (manifest names are far shorter). */
const MAX_SERVICE_NAME = 256;

let nextChannel = 1;

/** The pipes open in this process, for {@link tellPipesIfObserved}. */
const openPipes = new Set<HandoffPipe>();

/**
 * Tells every open pipe's helper to time its direct calls, if its broker's
 * calls are observed now. Called when a broker's metrics are first rendered;
 * a `call` listener or a `bulkhead:call` subscriber has no such moment, so the
 * pipe also looks at each report and hand-off.
 */
export function tellPipesIfObserved(): void {
  for (const pipe of openPipes) pipe.tellIfObserved();
}

/** A channel id unique in this broker: a helper may serve daemon clients and other helpers at once. */
export function nextChannelId(): number {
  return nextChannel++;
}

/** What the helper reports about one direct channel. */
export interface DirectChannelListener {
  /** Calls on this channel the helper has not answered yet (its latest report). */
  inFlight(count: number): void;
  /**
   * The helper closed the channel on its own (the client said goodbye, broke
   * the protocol, or stopped reading); `error` is the helper's reason, one of
   * {@link DIRECT_CLOSE_CODES}, when it gave one.
   */
  closed(error?: BulkheadError): void;
}

interface Pending {
  line: Buffer;
  fd: number | undefined;
  settle?: (error: BulkheadError | undefined) => void;
}

/** One helper's hand-off pipe, broker side. */
export class HandoffPipe {
  private readonly socket: Socket;
  private readonly fds: FdPassing;
  private readonly queue: Pending[] = [];
  /** The hand-off whose descriptor was sent and not acknowledged yet. */
  private awaitingAck: Pending | undefined;
  private partial = '';
  private skipping = false;
  private failure: BulkheadError | undefined;
  private readonly listeners = new Map<number, DirectChannelListener>();
  /** The helper was told that calls are observed (it times its direct calls from then on). */
  private toldObserved = false;

  /**
   * @param fd - the broker's end of the pipe (owned from now on; closed with the pipe)
   * @param service - for messages
   */
  constructor(private readonly fd: number, private readonly service: string, private readonly hooks: HandoffPipeHooks) {
    this.fds = requireFdPassing();
    this.socket = new Socket({ fd, readable: true, writable: false });
    this.socket.setEncoding('utf8');
    this.socket.on('data', (chunk: string) => this.read(chunk));
    this.socket.on('error', () => undefined); // the close below reports it
    this.socket.on('close', () => this.fail(bulkheadError('ERR_INTERRUPTED', `${service}'s hand-off pipe closed (the helper exited).`)));
    // The helper's own lifetime is tracked on fd 3: this pipe never keeps the broker alive.
    this.socket.unref();
    openPipes.add(this);
  }

  /** Sends `{"bulkhead":"observe"}` once, when the broker's calls are observed now. */
  tellIfObserved(): void {
    if (this.toldObserved || this.failure !== undefined || this.hooks.observed?.() !== true) return;
    this.toldObserved = true;
    this.enqueue({ line: Buffer.from('{"bulkhead":"observe"}\n'), fd: undefined });
  }

  /**
   * Gives the helper `fd` (one end of a direct channel) for channel `id`, whose
   * other end is held by `peer`. Resolves once the helper's Node acknowledged
   * it; the caller keeps its own copy of `fd` (it may close or shut it down).
   * @throws BulkheadError `ERR_INTERRUPTED` when the helper is gone or lost the descriptor
   */
  handOff(id: number, fd: number, peer: PeerInfo, listener: DirectChannelListener, options: { events?: boolean } = {}): Promise<void> {
    // `events: false` (a helper calling this one): service-wide events are for clients, not for calling services.
    return this.pass({ bulkhead: 'channel', id, peer, ...(options.events === false ? { events: false } : {}) }, id, fd, listener);
  }

  /**
   * Gives the helper `fd`, its end of direct channel `id` to `service`, in
   * answer to its `open` request `req`. Resolves like {@link HandoffPipe.handOff}.
   */
  giveOutbound(req: number, id: number, service: string, fd: number, listener: DirectChannelListener): Promise<void> {
    return this.pass({ bulkhead: 'outbound', req, id, service }, id, fd, listener);
  }

  /** Answers `open` request `req`: call `service` through the broker (no direct channel). */
  routed(req: number, service: string): void {
    this.enqueue({ line: Buffer.from(`${JSON.stringify({ bulkhead: 'routed', req, service })}\n`), fd: undefined });
  }

  /** Answers `open` request `req` with the reason there is no channel. */
  refuse(req: number, service: string, error: BulkheadError): void {
    this.enqueue({ line: Buffer.from(`${JSON.stringify({ bulkhead: 'refused', req, service, error: error.toJSON() })}\n`), fd: undefined });
  }

  private pass(msg: Record<string, unknown>, id: number, fd: number, listener: DirectChannelListener): Promise<void> {
    // Before the channel: its first call is timed when someone observes calls already.
    this.tellIfObserved();
    this.listeners.set(id, listener);
    const line = Buffer.from(`${JSON.stringify({ cmd: 'NODE_HANDLE', type: 'net.Socket', msg })}\n`);
    return new Promise((resolve, reject) => {
      this.enqueue({ line, fd, settle: (error) => (error === undefined ? resolve() : reject(error)) });
    });
  }

  /** Orders the helper to close channel `id` (the broker also shuts the socket down itself); its reports stop. */
  close(id: number): void {
    if (!this.listeners.delete(id)) return;
    this.enqueue({ line: Buffer.from(`${JSON.stringify({ bulkhead: 'close', id })}\n`), fd: undefined });
  }

  /** Closes the pipe; hand-offs not acknowledged fail. Idempotent. */
  destroy(): void {
    this.fail(bulkheadError('ERR_INTERRUPTED', `${this.service}'s hand-off pipe was closed by the broker.`));
  }

  private enqueue(item: Pending): void {
    if (this.failure !== undefined) {
      item.settle?.(this.failure);
      return;
    }
    this.queue.push(item);
    this.flush();
  }

  private flush(): void {
    while (this.awaitingAck === undefined && this.queue.length > 0 && this.failure === undefined) {
      const item = this.queue.shift()!;
      const sent = this.fds.send(this.fd, item.line, item.fd);
      if (sent !== item.line.length) {
        // A pipe that cannot take a few hundred bytes belongs to a helper that stopped reading it.
        item.settle?.(bulkheadError('ERR_INTERRUPTED', `${this.service} does not read its hand-off pipe (${sent < 0 ? `errno ${-sent}` : 'short write'}).`));
        this.fail(bulkheadError('ERR_INTERRUPTED', `${this.service}'s hand-off pipe is stuck.`));
        return;
      }
      if (item.fd !== undefined) this.awaitingAck = item;
    }
  }

  private read(chunk: string): void {
    let start = 0;
    for (let nl = chunk.indexOf('\n'); nl !== -1; nl = chunk.indexOf('\n', start)) {
      const piece = chunk.slice(start, nl);
      start = nl + 1;
      if (this.skipping) {
        this.skipping = false;
        this.partial = '';
        continue;
      }
      const line = this.partial + piece;
      this.partial = '';
      if (line.length <= MAX_HANDOFF_LINE_BYTES) this.onLine(line);
    }
    if (this.skipping) return;
    this.partial += chunk.slice(start);
    if (this.partial.length > MAX_HANDOFF_LINE_BYTES) {
      this.partial = '';
      this.skipping = true;
    }
  }

  private onLine(line: string): void {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      return; // not ours to understand; the helper only hurts its own reports
    }
    if (typeof message !== 'object' || message === null) return;
    const m = message as Record<string, unknown>;
    if (m['cmd'] === 'NODE_HANDLE_ACK' || m['cmd'] === 'NODE_HANDLE_NACK') {
      const item = this.awaitingAck;
      this.awaitingAck = undefined;
      item?.settle?.(m['cmd'] === 'NODE_HANDLE_ACK' ? undefined : bulkheadError('ERR_INTERRUPTED', `${this.service} did not receive the channel's descriptor.`));
      this.flush();
      return;
    }
    // The helper runtime's reports travel as Node IPC messages too: {"bulkhead":"tally",...}.
    if (m['bulkhead'] === 'calls') {
      const batch = readCallBatch(m);
      if (batch !== undefined) this.hooks.metered?.(batch);
      // Observation that began without a render (a `call` listener) reaches the helper here.
      this.tellIfObserved();
      return;
    }
    if (m['bulkhead'] === 'open') {
      const service = m['service'];
      if (isCount(m['req']) && typeof service === 'string' && service.length <= MAX_SERVICE_NAME) this.hooks.open?.(m['req'], service);
      return;
    }
    const id = m['id'];
    if (!isCount(id)) return;
    if (m['bulkhead'] === 'tally' && isCount(m['calls']) && isCount(m['inFlight'])) {
      // A report for a channel already closed still counts its calls (they were answered).
      this.hooks.answered(m['calls']);
      this.listeners.get(id)?.inFlight(m['inFlight']);
    } else if (m['bulkhead'] === 'closed') {
      const listener = this.listeners.get(id);
      this.listeners.delete(id);
      listener?.closed(reportedClose(m['code'], m['message']));
    }
  }

  private fail(error: BulkheadError): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    openPipes.delete(this);
    this.awaitingAck?.settle?.(error);
    this.awaitingAck = undefined;
    for (const item of this.queue.splice(0)) item.settle?.(error);
    this.socket.destroy(); // closes the fd
  }
}

/** A hand-off pipe made for a helper about to be spawned. */
export interface PreparedHandoff {
  /** The child's end: pass it in the spawn's stdio at index `env[HANDOFF_FD]`, then call {@link PreparedHandoff.spawned}. */
  childFd: number;
  /** The helper's environment plus the variable naming that fd. */
  env: Record<string, string>;
  /** After spawn (whether or not it succeeded): closes the broker's copy of the child's end, returns the pipe. */
  spawned(hooks: HandoffPipeHooks): HandoffPipe;
}

/**
 * Makes a hand-off pipe for a helper whose spawn stdio already has `stdioLength`
 * entries (its end goes next). Undefined where fd passing is unavailable.
 */
export function prepareHandoff(service: string, env: Record<string, string>, stdioLength: number): PreparedHandoff | undefined {
  const fds = loadFdPassing();
  if ('problem' in fds) return undefined;
  const [brokerEnd, childFd] = fds.socketPair();
  return {
    childFd,
    env: { ...env, [HELPER_ENV.handoffFd]: String(stdioLength) },
    spawned: (hooks) => {
      // The child has its copy now (or none: spawn threw); ours would keep the pipe open after it exits.
      fds.close(childFd);
      return new HandoffPipe(brokerEnd, service, hooks);
    },
  };
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** The reason a helper gave for closing a channel, if it is one a helper may give (the log keeps it). */
function reportedClose(code: unknown, message: unknown): BulkheadError | undefined {
  if (typeof code !== 'string' || !(DIRECT_CLOSE_CODES as readonly string[]).includes(code)) return undefined;
  const text = typeof message === 'string' ? message.slice(0, MAX_CLOSE_MESSAGE) : 'The helper closed the direct channel.';
  return bulkheadError(code as (typeof DIRECT_CLOSE_CODES)[number], text);
}
