/**
 * The answering side of one channel, used by a helper's runtime: checks the
 * client's hello, validates params before a handler runs, gives each handler
 * a context (verified peer, AbortSignal, emit), turns throws into coded
 * errors, and honours cancel. Results are validated by the receiver.
 * What a handler sees of its call is in handler-context.ts; how its throw is
 * serialized, in handler-error.ts.
 * @module
 */
import { isTraceparent, runInTrace, tracing } from './trace-context.js';
import { bulkheadError, type BulkheadError, type SerializedError } from '../errors.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import { describeNonPlain, newPlainTally } from '../wire/codec.js';
import { ID_RANGE_SIZE, type CallEnvelope, type Envelope, type PeerInfo } from '../wire/envelope.js';
import type { FramedChannel } from '../wire/framed-channel.js';
import { CreditGate, ItemInbox, refusalText } from './stream-flow.js';
import { EventPressure } from './event-pressure.js';
import { judgePeerHello } from '../protocol/hello-compat.js';
import { RunningCall, type Handler, type HandlerContext } from './handler-context.js';
import { serializeHandlerError } from './handler-error.js';
import type { CallGate, GatedServer } from './call-gate.js';
import type { RpcServerHooks, RpcServerOptions } from './rpc-server-options.js';
import { CallTable } from '../util/call-table.js';
import { TransactionCount } from './transaction-count.js';

export type { Handler, HandlerContext, RpcServerHooks, RpcServerOptions };

/** The peer a call is attributed to when the broker did not name one: the embedding app. */
export const MAIN_APP_PEER: PeerInfo = Object.freeze({ name: 'main-app' });

/** Answering side of one channel. */
export class RpcServer implements GatedServer {
  private readonly running = new CallTable<RunningCall>();
  private helloSeen = false;
  private readonly helloInfo: Record<string, unknown>;
  private readonly answerHello: boolean;
  private draining = false;
  private drainWaiters: Array<() => void> = [];
  private readonly exposeStacks: boolean;
  /** Open transactions, told to the broker (transaction-count.ts). */
  private readonly transactions: TransactionCount;
  /** Peers bound to call-id ranges by the broker (daemon mode). */
  private readonly peers = new Map<number, PeerInfo>();
  private readonly pressure: EventPressure;
  private readonly fixedPeer: PeerInfo | undefined;
  private readonly sharedTransaction: (() => () => void) | undefined;
  private readonly maxInFlight: number;
  private readonly gate: CallGate | undefined;
  /** @internal Calls of this channel waiting in the gate's queue (the gate keeps the count). */
  queuedHere = 0;

  constructor(
    readonly channel: FramedChannel,
    readonly protocol: CompiledProtocol,
    private readonly handlers: Readonly<Record<string, Handler>>,
    private readonly hooks: RpcServerHooks,
    options: RpcServerOptions = {},
  ) {
    this.exposeStacks = options.exposeStacks ?? false;
    this.fixedPeer = options.peer === undefined ? undefined : Object.freeze({ ...options.peer });
    this.sharedTransaction = options.openTransaction;
    this.transactions = new TransactionCount(channel);
    this.maxInFlight = options.maxInFlight ?? Number.POSITIVE_INFINITY;
    this.gate = options.gate;
    this.pressure = new EventPressure(channel, options.backlog);
    channel.attach({ envelope: (e, body) => this.receive(e, body.length), closed: (err) => this.onClosed(err) });
    this.helloInfo = { ...options.helloInfo, pid: process.pid };
    this.answerHello = options.answerHello ?? false;
    if (!this.answerHello) this.sendHello(false);
  }

  private sendHello(withDocument: boolean): void {
    const p = this.protocol;
    this.channel.send({ kind: 'hello', role: 'service', protocol: p.name, version: p.version, schemaHash: p.hash, info: withDocument ? { ...this.helloInfo, document: p.document } : this.helloInfo });
  }

  /** Handlers currently running. */
  get inFlight(): number {
    return this.running.size;
  }

  /** Sends an event to every client of this service; paced like ctx.emit() (see {@link EventPressure}). */
  broadcast(name: string, payload: unknown): Promise<void> {
    return this.sendEvent(0, name, payload);
  }

  /**
   * Opens a transaction; the broker does not idle-exit the helper while any is
   * open. Returns the (idempotent) release function.
   */
  openTransaction(): () => void {
    return this.sharedTransaction !== undefined ? this.sharedTransaction() : this.transactions.open();
  }

  /**
   * Re-sends the open transaction count: the helper runtime's heartbeat, the
   * proof for the broker's watchdog that this event loop still runs.
   */
  heartbeat(): void {
    this.transactions.report();
  }

  /** Resolves once no handler is running. */
  drained(): Promise<void> {
    if (this.running.size === 0 && this.queuedHere === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private receive(envelope: Envelope, bodyBytes: number): void {
    switch (envelope.kind) {
      case 'call':
        if (!this.helloSeen) return this.protocolViolation('a call arrived before hello');
        this.startCall(envelope);
        return;
      case 'cancel': {
        if (this.queuedHere > 0 && this.gate!.withdraw(this, envelope.id)) return this.hooks.callDropped?.(envelope.id);
        this.running.get(envelope.id)?.abort(envelope.reason === 'deadline'
          ? bulkheadError('ERR_DEADLINE', 'The caller\'s deadline passed.')
          : bulkheadError('ERR_CANCELLED', 'The caller cancelled the call.'));
        return;
      }
      case 'hello': {
        const verdict = judgePeerHello(this.protocol, 'service', envelope, 'Make the manifest\'s protocol and the helper\'s serve() agree.');
        if (!verdict.ok) return this.channel.fail(verdict.error);
        this.helloSeen = true;
        if (this.answerHello) this.sendHello(verdict.evolved);
        this.hooks.helloSeen?.();
        return;
      }
      case 'goodbye':
        this.draining = true;
        this.hooks.goodbye();
        return;
      case 'error':
        return; // a connection-level error from the broker; the close follows
      case 'peer':
        if (this.fixedPeer !== undefined) return this.protocolViolation('a client sent a "peer" message; on a direct channel the broker named the peer at hand-off');
        if (envelope.peer === null) this.peers.delete(envelope.range);
        else this.peers.set(envelope.range, Object.freeze({ ...envelope.peer }));
        return;
      case 'item':
        this.receiveItem(envelope.id, envelope.value, bodyBytes);
        return;
      case 'credit':
        this.running.get(envelope.id)?.gate?.grant(envelope.items);
        return;
      case 'end':
        this.running.get(envelope.id)?.inbox?.finish();
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
    this.hooks.callStarted?.(id);
    if (this.running.size + this.queuedHere >= this.maxInFlight) {
      return this.sendError(id, bulkheadError('ERR_BACKPRESSURE', `More than ${this.maxInFlight} calls in flight on this channel; await earlier calls.`, { limit: this.maxInFlight }).toJSON());
    }
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
    // The helper's service-wide bound (call-gate.ts): past it the call waits, or is refused.
    if (this.gate === undefined || this.gate.admit(this, call, handler)) this.runAdmitted(call, handler);
  }

  /** @internal The gate starts a call it queued here, its slot taken: startCall checked its id, but the client may have reused it meanwhile. */
  runQueued(call: CallEnvelope, handler: Handler): void {
    if (this.running.has(call.id)) {
      this.gate!.release();
      return this.protocolViolation(`call id ${call.id} is already in flight`);
    }
    this.runAdmitted(call, handler);
  }

  /** Runs a call past every check (startCall's, and the gate's when there is one). */
  private runAdmitted(call: CallEnvelope, handler: Handler): void {
    const { id, method } = call;
    const traceparent = isTraceparent(call.meta?.traceparent) ? call.meta.traceparent : undefined;
    // The broker's own range (0) never has a peer entry (a "peer" names ranges 1 and up): no Map lookup per call.
    const peer = this.fixedPeer ?? (id < ID_RANGE_SIZE ? undefined : this.peers.get(Math.floor(id / ID_RANGE_SIZE))) ?? MAIN_APP_PEER;
    const running = new RunningCall(this, id, method, peer, call.meta?.timeoutMs, traceparent);
    this.running.set(id, running);
    const stream = this.protocol.isStream(method) ? this.protocol.streamOf(method) : undefined;
    if (stream?.accepts === true) {
      const inbox = new ItemInbox((n) => this.channel.send({ kind: 'credit', id, items: n }));
      running.inbox = inbox;
      inbox.open();
    }
    if (stream?.yields === true) running.gate = new CreditGate();
    let result: unknown;
    try {
      const invoke = () => (handler as (p: unknown, c: HandlerContext) => unknown)(call.params, running);
      // Only when there is a trace to carry on (or OpenTelemetry to report to): the plain path stays plain.
      result = tracing(traceparent)
        ? runInTrace(`${this.protocol.name}/${method}`, traceparent, { 'rpc.system': 'bulkhead', 'rpc.method': method }, (span) => {
          running.span = span;
          return invoke();
        })
        : invoke();
    } catch (err) {
      this.finish(running, undefined, err);
      return;
    }
    if (running.gate !== undefined) {
      void this.pumpItems(running, result);
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
  emitFor(running: RunningCall, name: string, payload: unknown): Promise<void> {
    if (this.running.get(running.id) !== running) {
      throw bulkheadError('ERR_CLOSED', `ctx.emit("${name}") after the call settled; use the service's broadcast emit instead.`);
    }
    return this.sendEvent(running.id, name, payload);
  }

  /** Streams of calls running now (for leak checks). */
  get openStreams(): number {
    let n = 0;
    for (const running of this.running.valuesInOrder()) if (running.gate !== undefined || running.inbox !== undefined) n++;
    return n;
  }

  /** An input item from the caller, in a frame body of `bodyBytes`: validated, then queued for ctx.input. */
  private receiveItem(id: number, value: unknown, bodyBytes: number): void {
    const running = this.running.get(id);
    if (running === undefined) return; // the call settled; late items are dropped
    const inbox = running.inbox;
    if (inbox === undefined) return this.protocolViolation(`call id ${id} was sent a stream item, but its method does not declare "accepts"`);
    const index = inbox.received;
    const invalid = this.protocol.check('accepts', running.method, value);
    if (invalid !== undefined) {
      const error = bulkheadError('ERR_INVALID_PARAMS', invalid.message.replace(/: /, `: input item ${index}: `), { ...invalid.data, index });
      this.failCall(running, error);
      return;
    }
    const refused = inbox.push(value, bodyBytes);
    if (refused !== undefined) this.protocolViolation(`call id ${id} was sent a stream item ${refusalText(refused)}`);
  }

  /**
   * Runs a `yields` handler's generator: one item per credit, so the
   * generator is not advanced while the caller has not asked for more.
   */
  private async pumpItems(running: RunningCall, produced: unknown): Promise<void> {
    const gate = running.gate!;
    const iterable = produced as Partial<AsyncIterable<unknown>> | null | undefined;
    const open = iterable?.[Symbol.asyncIterator];
    if (typeof open !== 'function') {
      this.finish(running, undefined, new Error('A method that declares "yields" needs an async generator handler (async function*), or one that returns an async iterable.'));
      return;
    }
    const iterator = open.call(iterable);
    const live = () => this.running.get(running.id) === running && !running.aborted;
    let index = 0;
    try {
      for (;;) {
        if (!gate.canSend) await gate.ready();
        if (!live()) break;
        const next = await iterator.next();
        if (!live()) break;
        if (next.done === true) {
          this.finish(running, next.value ?? null, undefined);
          return;
        }
        const tally = newPlainTally(), problem = describeNonPlain(next.value, tally);
        if (problem !== undefined) {
          this.failCall(running, { code: 'ERR_SERVICE_ERROR', message: `Item ${index} yielded by the handler holds ${problem}; items must be JSON-like data or byte strings.`, data: { remoteCode: 'ERR_INVALID_RESULT', index } });
          break;
        }
        gate.sent(this.channel.sendSized({ kind: 'item', id: running.id, value: next.value }, tally.large === 0));
        index++;
      }
    } catch (err) {
      // The generator threw (or an item was too large for a frame): that ends the stream with the error.
      this.finish(running, undefined, err ?? new Error('handler threw with no reason'));
      return;
    }
    // Stopped early (cancel, deadline, a bad item): run the generator's finally blocks.
    try {
      await iterator.return?.(undefined);
    } catch {
      // A generator that throws from its finally while being stopped: nobody is left to tell.
    }
    this.finish(running, undefined, running.abortReason ?? new Error('stream stopped'));
  }

  /** Fails a running call now with `error` (sent as is) and aborts its handler. */
  private failCall(running: RunningCall, error: SerializedError | BulkheadError): void {
    if (this.running.get(running.id) !== running) return;
    const serialized = 'toJSON' in error && typeof error.toJSON === 'function' ? error.toJSON() : error as SerializedError;
    if (!running.aborted) this.sendError(running.id, serialized);
    running.abort(bulkheadError('ERR_CANCELLED', `The call failed: ${serialized.message}`));
    this.finish(running, undefined, undefined);
  }

  private finish(running: RunningCall, value: unknown, error: unknown): void {
    const id = running.id;
    if (this.running.get(id) !== running) return;
    this.running.delete(id);
    this.gate?.release();
    running.span?.end(error === undefined ? undefined : typeof (error as { code?: unknown }).code === 'string' ? (error as { code: string }).code : 'ERR_SERVICE_ERROR');
    // The caller has given up (cancel or deadline): it ignores answers, so send none.
    if (!running.aborted) {
      if (error !== undefined) this.sendError(id, serializeHandlerError(error, this.exposeStacks));
      else {
        const tally = newPlainTally(), problem = describeNonPlain(value, tally);
        if (problem === undefined) this.sendReply(id, value, tally.large === 0);
        else this.sendError(id, { code: 'ERR_SERVICE_ERROR', message: `The handler returned ${problem}; results must be JSON-like data or byte strings.`, data: { remoteCode: 'ERR_INVALID_RESULT' } });
      }
    } else this.hooks.callDropped?.(id);
    if (this.running.size === 0 && this.queuedHere === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  private sendEvent(callId: number, name: string, payload: unknown): Promise<void> {
    const tally = newPlainTally(), problem = describeNonPlain(payload, tally);
    if (problem !== undefined) throw bulkheadError('ERR_INVALID_RESULT', `Event "${name}" holds ${problem}; event payloads must be JSON-like data or byte strings.`, { part: 'event', event: name });
    this.pressure.check(name);
    this.channel.send({ kind: 'event', callId, name, payload }, tally.large === 0);
    return this.pressure.room();
  }

  private sendReply(id: number, result: unknown, noLargeBytes: boolean): void {
    try {
      this.channel.send({ kind: 'reply', id, result }, noLargeBytes);
      this.hooks.callSettled?.(id, null);
    } catch (err) {
      // The result is too large for one frame: tell the caller instead of dropping the call.
      this.sendError(id, (err as BulkheadError).toJSON());
    }
  }

  private sendError(id: number, error: SerializedError): void {
    this.channel.send({ kind: 'error', id, error });
    this.hooks.callSettled?.(id, error.code);
  }

  /** @internal The gate's refusal of call `id`. */
  refuseCall(id: number, error: BulkheadError): void {
    this.sendError(id, error.toJSON());
  }

  private onClosed(error: BulkheadError | undefined): void {
    const reason = bulkheadError('ERR_INTERRUPTED', 'The broker connection closed.');
    this.gate?.drop(this);
    for (const running of this.running.valuesInOrder()) running.abort(reason);
    this.pressure.close();
    this.hooks.closed(error);
  }
}
