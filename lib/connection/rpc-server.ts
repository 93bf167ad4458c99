/**
 * The answering side of one channel, used by a helper's runtime: checks the
 * client's hello, validates params before a handler runs, gives each handler
 * a context (verified peer, AbortSignal, emit), turns throws into coded
 * errors, and honours cancel. Results are validated by the receiver.
 * @module
 */
import { bulkheadError, type BulkheadError, type SerializedError } from '../errors.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import { describeNonPlain } from '../wire/codec.js';
import { ID_RANGE_SIZE, type CallEnvelope, type Envelope, type PeerInfo } from '../wire/envelope.js';
import type { FramedChannel } from '../wire/framed-channel.js';

/** The peer a call is attributed to when the broker did not name one: the embedding app. */
export const MAIN_APP_PEER: PeerInfo = Object.freeze({ name: 'main-app' });

/** What a handler receives besides its params. */
export interface HandlerContext {
  /** Aborts when the caller cancels, its deadline passes, or the helper is stopping. */
  readonly signal: AbortSignal;
  /** Who called, as verified by the broker. */
  readonly peer: PeerInfo;
  /** The caller's timeout in ms, when it set one. */
  readonly timeoutMs: number | undefined;
  /** Sends an event to the caller of this call (validated by the receiver against the protocol). */
  emit(name: string, payload: unknown): void;
  /**
   * Opens a transaction (XPC's os_transaction): while any is open the broker
   * will not stop this helper for being idle, even after the call returns.
   * Call the returned function once the background work is done.
   */
  keepAlive(): () => void;
}

/** A handler: params in, result (or a promise of it) out. */
export type Handler = (params: never, ctx: HandlerContext) => unknown;

/** Hooks the runtime gives the server. */
export interface RpcServerHooks {
  /** The client said goodbye: finish in-flight calls, then exit. */
  goodbye(): void;
  /** The channel closed. */
  closed(error: BulkheadError | undefined): void;
}

/** Options of an {@link RpcServer}. */
export interface RpcServerOptions {
  /** Include handler stack traces in errors sent to callers (never in production). @default false */
  exposeStacks?: boolean;
}

/** Answering side of one channel. */
export class RpcServer {
  private readonly running = new Map<number, RunningCall>();
  private helloSeen = false;
  private draining = false;
  private drainWaiters: Array<() => void> = [];
  private readonly exposeStacks: boolean;
  private transactions = 0;
  /** Peers bound to call-id ranges by the broker (daemon mode). */
  private readonly peers = new Map<number, PeerInfo>();

  constructor(
    readonly channel: FramedChannel,
    readonly protocol: CompiledProtocol,
    private readonly handlers: Readonly<Record<string, Handler>>,
    private readonly hooks: RpcServerHooks,
    options: RpcServerOptions = {},
  ) {
    this.exposeStacks = options.exposeStacks ?? false;
    channel.attach({ envelope: (e) => this.receive(e), closed: (err) => this.onClosed(err) });
    const p = protocol;
    channel.send({ kind: 'hello', role: 'service', protocol: p.name, version: p.version, schemaHash: p.hash, info: { pid: process.pid } });
  }

  /** Handlers currently running. */
  get inFlight(): number {
    return this.running.size;
  }

  /** Sends an event to every client of this service. */
  broadcast(name: string, payload: unknown): void {
    this.sendEvent(0, name, payload);
  }

  /**
   * Opens a transaction; the broker does not idle-exit the helper while any is
   * open. Returns the (idempotent) release function.
   */
  openTransaction(): () => void {
    this.setTransactions(this.transactions + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.setTransactions(this.transactions - 1);
    };
  }

  /**
   * Re-sends the open transaction count: the helper runtime's heartbeat, the
   * proof for the broker's watchdog that this event loop still runs.
   */
  heartbeat(): void {
    this.channel.send({ kind: 'activity', transactions: this.transactions });
  }

  private setTransactions(count: number): void {
    this.transactions = count;
    this.channel.send({ kind: 'activity', transactions: count });
  }

  /** Resolves once no handler is running. */
  drained(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private receive(envelope: Envelope): void {
    switch (envelope.kind) {
      case 'call':
        if (!this.helloSeen) return this.protocolViolation('a call arrived before hello');
        this.startCall(envelope);
        return;
      case 'cancel': {
        this.running.get(envelope.id)?.abort(envelope.reason === 'deadline'
          ? bulkheadError('ERR_DEADLINE', 'The caller\'s deadline passed.')
          : bulkheadError('ERR_CANCELLED', 'The caller cancelled the call.'));
        return;
      }
      case 'hello': {
        const p = this.protocol;
        if (envelope.role !== 'client' || envelope.protocol !== p.name || envelope.version !== p.version || envelope.schemaHash !== p.hash) {
          this.channel.fail(bulkheadError('ERR_PROTOCOL_MISMATCH', `This helper serves ${p.name}@${p.version} (schema ${p.hash.slice(0, 12)}) but the broker expects ${envelope.protocol}@${envelope.version} (schema ${envelope.schemaHash.slice(0, 12)}). Make the manifest's protocol and the helper's serve() agree.`, { expected: envelope.protocol, actual: p.name }));
          return;
        }
        this.helloSeen = true;
        return;
      }
      case 'goodbye':
        this.draining = true;
        this.hooks.goodbye();
        return;
      case 'error':
        return; // a connection-level error from the broker; the close follows
      case 'peer':
        if (envelope.peer === null) this.peers.delete(envelope.range);
        else this.peers.set(envelope.range, Object.freeze({ ...envelope.peer }));
        return;
      case 'reply':
      case 'event':
      case 'activity':
        return this.protocolViolation(`a client sent a "${envelope.kind}" message, which only services send`);
    }
  }

  private protocolViolation(what: string): void {
    this.channel.fail(bulkheadError('ERR_BAD_FRAME', `Protocol violation: ${what}.`));
  }

  private startCall(call: CallEnvelope): void {
    const { id, method } = call;
    if (this.running.has(id)) return this.protocolViolation(`call id ${id} is already in flight`);
    if (this.draining) {
      return this.sendError(id, { code: 'ERR_SERVICE_ERROR', message: `${this.protocol.name} is shutting down; retry the call.`, data: { remoteCode: 'ERR_CLOSED' } });
    }
    const handler = this.protocol.hasMethod(method) && Object.hasOwn(this.handlers, method) ? this.handlers[method] : undefined;
    if (handler === undefined) {
      const declared = this.protocol.hasMethod(method);
      return this.sendError(id, bulkheadError('ERR_UNKNOWN_METHOD', declared
        ? `${this.protocol.name}.${method} is declared but the helper has no handler for it; add it to serve().`
        : `${this.protocol.name} has no method "${method}"; methods: ${this.protocol.methodNames().join(', ')}.`, { method }).toJSON());
    }
    const invalid = this.protocol.check('params', method, call.params);
    if (invalid !== undefined) return this.sendError(id, invalid.toJSON());

    const running = new RunningCall(this, id, this.peers.get(Math.floor(id / ID_RANGE_SIZE)) ?? MAIN_APP_PEER, call.meta?.timeoutMs);
    this.running.set(id, running);
    let result: unknown;
    try {
      result = (handler as (p: unknown, c: HandlerContext) => unknown)(call.params, running);
    } catch (err) {
      this.finish(running, undefined, err);
      return;
    }
    if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
      (result as PromiseLike<unknown>).then(
        (value) => this.finish(running, value, undefined),
        (err: unknown) => this.finish(running, undefined, err ?? new Error('handler rejected with no reason')),
      );
    } else {
      this.finish(running, result, undefined);
    }
  }

  /** @internal ctx.emit of a running call. */
  emitFor(running: RunningCall, name: string, payload: unknown): void {
    if (this.running.get(running.id) !== running) {
      throw bulkheadError('ERR_CLOSED', `ctx.emit("${name}") after the call settled; use the service's broadcast emit instead.`);
    }
    this.sendEvent(running.id, name, payload);
  }

  private finish(running: RunningCall, value: unknown, error: unknown): void {
    const id = running.id;
    if (this.running.get(id) !== running) return;
    this.running.delete(id);
    // The caller has given up (cancel or deadline): it ignores answers, so send none.
    if (!running.aborted) {
      if (error !== undefined) this.sendError(id, this.handlerError(error));
      else {
        const problem = describeNonPlain(value);
        if (problem === undefined) this.sendReply(id, value);
        else this.sendError(id, { code: 'ERR_SERVICE_ERROR', message: `The handler returned ${problem}; results must be JSON-like data or byte strings.`, data: { remoteCode: 'ERR_INVALID_RESULT' } });
      }
    }
    if (this.running.size === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  private handlerError(error: unknown): SerializedError {
    const err = error instanceof Error ? error : new Error(String(error));
    const data: Record<string, unknown> = {};
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') data['remoteCode'] = code;
    const remoteData = (err as { data?: unknown }).data;
    if (remoteData !== undefined) {
      try {
        // A JSON round trip keeps only plain data, so the frame stays decodable.
        const plain = JSON.parse(JSON.stringify(remoteData)) as unknown;
        // Too deep (or otherwise unsendable) data would make the peer drop the whole connection.
        data['remoteData'] = describeNonPlain(plain) === undefined ? plain : '[unserializable]';
      } catch {
        data['remoteData'] = '[unserializable]';
      }
    }
    if (this.exposeStacks && err.stack !== undefined) data['stack'] = err.stack;
    return { code: 'ERR_SERVICE_ERROR', message: err.message, data };
  }

  private sendEvent(callId: number, name: string, payload: unknown): void {
    const problem = describeNonPlain(payload);
    if (problem !== undefined) throw bulkheadError('ERR_INVALID_RESULT', `Event "${name}" holds ${problem}; event payloads must be JSON-like data or byte strings.`, { part: 'event', event: name });
    this.channel.send({ kind: 'event', callId, name, payload });
  }

  private sendReply(id: number, result: unknown): void {
    try {
      this.channel.send({ kind: 'reply', id, result });
    } catch (err) {
      // The result is too large for one frame: tell the caller instead of dropping the call.
      this.sendError(id, (err as BulkheadError).toJSON());
    }
  }

  private sendError(id: number, error: SerializedError): void {
    this.channel.send({ kind: 'error', id, error });
  }

  private onClosed(error: BulkheadError | undefined): void {
    const reason = bulkheadError('ERR_INTERRUPTED', 'The broker connection closed.');
    for (const running of this.running.values()) running.abort(reason);
    this.hooks.closed(error);
  }
}

/**
 * One running handler and its context. The AbortController is created only
 * when the handler reads `ctx.signal`: most handlers never do, and creating
 * one costs more than the rest of the dispatch.
 */
class RunningCall implements HandlerContext {
  private controller: AbortController | undefined;
  private abortReason: BulkheadError | undefined;

  constructor(private readonly server: RpcServer, readonly id: number, readonly peer: PeerInfo, readonly timeoutMs: number | undefined) {}

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.abortReason !== undefined) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  get aborted(): boolean {
    return this.abortReason !== undefined;
  }

  abort(reason: BulkheadError): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }

  emit(name: string, payload: unknown): void {
    this.server.emitFor(this, name, payload);
  }

  keepAlive(): () => void {
    return this.server.openTransaction();
  }
}
