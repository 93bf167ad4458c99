/**
 * The calling side of one channel: call ids, the pending-call table,
 * deadlines, cancellation, a bounded number of calls in flight (the rest
 * queue, up to a bound), result and event validation on receipt, and the
 * hello check. One RpcClient lives exactly as long as one helper process.
 * @module
 */
import { bulkheadError, type BulkheadError } from '../errors.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import type { CallMeta, Envelope, HelloEnvelope } from '../wire/envelope.js';
import { ID_RANGE_SIZE } from '../wire/envelope.js';
import type { FramedChannel } from '../wire/framed-channel.js';
import { fromWireError } from './remote-error.js';
import { judgePeerHello } from '../protocol/hello-compat.js';
import { CreditGate, ItemInbox } from './stream-flow.js';
import { describeNonPlain } from '../wire/codec.js';

/** Who receives the events a service emits while handling a call. */
export interface CallOwner {
  /** A validated event tied to one of this owner's calls. */
  deliverEvent(name: string, payload: unknown): void;
  /** An event tied to one of this owner's calls failed validation. */
  deliverError(error: BulkheadError): void;
}

/** Per-call options for {@link RpcClient.call}. */
export interface RpcCallOptions {
  /** Milliseconds until the call fails with ERR_DEADLINE. */
  timeoutMs?: number | undefined;
  /** Aborting it fails the call with ERR_CANCELLED (or the signal's BulkheadError reason). */
  signal?: AbortSignal | undefined;
  /** Receives events the service emits for this call. */
  owner?: CallOwner | undefined;
  /** Extra metadata (e.g. verified peer) sent with the call. */
  meta?: CallMeta | undefined;
}

/** Limits of an {@link RpcClient}. */
export interface RpcClientOptions {
  /**
   * Calls sent and not yet answered; further calls wait in a queue.
   * @default 1024
   */
  maxInFlight?: number;
  /**
   * Calls waiting for an in-flight slot; one more fails with ERR_BACKPRESSURE.
   * @default 65536
   */
  maxQueued?: number;
  /**
   * Bytes that may wait to be written to the peer (our outbox plus the
   * socket's buffer) when a call is sent; past it the call fails at once with
   * ERR_BACKPRESSURE. Bounds the memory held for a peer that stopped reading
   * (a hung helper), whatever happens to the calls' deadlines: at most this
   * plus one frame.
   * @default unbounded
   */
  maxQueuedBytes?: number;
  /**
   * The service's name, for `data.service` of the errors its calls reject with
   * (a service is registered under a name; its protocol has another).
   * @default the protocol's name
   */
  service?: string;
  /**
   * The call-id range this client uses (ids `range * ID_RANGE_SIZE` up to the
   * next range); a daemon assigns one per routed client.
   * @default 0 (the broker's own range)
   */
  idRange?: number;
  /**
   * The peer is a broker (daemon), trusted to send any bulkhead error code;
   * otherwise a service's non-service codes become ERR_SERVICE_ERROR.
   * @default false
   */
  trustPeerCodes?: boolean;
  /**
   * Treat the channel as ready without a hello (a helper's outbound channel,
   * where the broker checks each call's target instead).
   * @default false
   */
  skipHello?: boolean;
}

/** Defaults of {@link RpcClientOptions}. */
export const RPC_CLIENT_DEFAULTS = { maxInFlight: 1024, maxQueued: 65536 } as const;

/** Events of the RpcClient that are not tied to a call. */
export interface RpcClientHooks {
  /** A validated event for every client of the service (callId 0). */
  broadcast(name: string, payload: unknown): void;
  /** An event that failed validation, or an event for no known call. */
  eventError(error: BulkheadError): void;
  /**
   * The helper went from idle to busy or back: busy while a call is in
   * flight or queued, or a transaction (ctx.keepAlive) is open. Optional.
   */
  activity?(busy: boolean): void;
  /** A call went out to the peer with this id (for call metrics). Optional. */
  sent?(id: number, method: string): void;
}

interface PendingCall {
  id: number;
  method: string;
  params: unknown;
  meta: CallMeta | undefined;
  resolve: (value: unknown) => void;
  reject: (error: BulkheadError) => void;
  owner: CallOwner | undefined;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** False while waiting in the queue. */
  sent: boolean;
  /** Items the service yields (a `yields` method). */
  inbox: ItemInbox | undefined;
  /** Credit for the caller's input items (an `accepts` method). */
  gate: CreditGate | undefined;
  /** The caller's input items, pumped once the call is sent. */
  input: AsyncIterable<unknown> | undefined;
}

/** Per-stream options for {@link RpcClient.stream}. */
export interface RpcStreamOptions extends RpcCallOptions {
  /** Items to send to the service (an `accepts` method). */
  input?: AsyncIterable<unknown> | Iterable<unknown> | undefined;
}

/** A stream in progress, as {@link RpcClient.stream} returns it. */
export interface RpcStream {
  /** Settles with the method's final value (`null` when it declares no result), or the stream's error. */
  readonly result: Promise<unknown>;
  /** The next item the service yielded (done after the last); throws the stream's error. */
  next(): Promise<IteratorResult<unknown>>;
  /** The caller stops reading: the call is cancelled (the handler's ctx.signal aborts), unless already settled. */
  cancel(): void;
  /** Items received and not yet read. */
  readonly buffered: number;
}

/** Calling side of one channel. */
export class RpcClient {
  /** Resolves with the service's hello once it matched; rejects with ERR_PROTOCOL_MISMATCH or the close reason. */
  readonly ready: Promise<HelloEnvelope>;
  private readonly pending = new Map<number, PendingCall>();
  private readonly queue: PendingCall[] = [];
  private readonly maxInFlight: number;
  private readonly maxQueued: number;
  private readonly maxQueuedBytes: number | undefined;
  private nextId: number;
  private readonly firstId: number;
  private readonly trustPeerCodes: boolean;
  private readonly lastId: number;
  private inFlightCount = 0;
  private interruption: BulkheadError | undefined;
  private settleReady!: { resolve(hello: HelloEnvelope): void; reject(err: BulkheadError): void };
  private isReady = false;
  private transactions = 0;
  private busy = false;
  /** The service speaks another, compatible version of the protocol (its hello said so). */
  private peerEvolved = false;
  /** Last connection-level error the service sent (id 0), e.g. before it closed. */
  peerError: BulkheadError | undefined;
  /** The service's name, for `data.service` of the errors calls reject with. */
  private readonly service: string;

  constructor(
    readonly channel: FramedChannel,
    readonly protocol: CompiledProtocol,
    private readonly hooks: RpcClientHooks,
    options: RpcClientOptions = {},
  ) {
    this.maxInFlight = options.maxInFlight ?? RPC_CLIENT_DEFAULTS.maxInFlight;
    this.maxQueued = options.maxQueued ?? RPC_CLIENT_DEFAULTS.maxQueued;
    this.maxQueuedBytes = options.maxQueuedBytes;
    this.trustPeerCodes = options.trustPeerCodes ?? false;
    this.service = options.service ?? protocol.name;
    const range = options.idRange ?? 0;
    this.firstId = Math.max(1, range * ID_RANGE_SIZE);
    this.lastId = (range + 1) * ID_RANGE_SIZE - 1;
    this.nextId = this.firstId;
    this.ready = new Promise((resolve, reject) => {
      this.settleReady = { resolve, reject };
    });
    // Nobody may be waiting yet; the rejection is observed through acquire().
    this.ready.catch(() => {});
    if (options.skipHello === true) {
      this.isReady = true;
      this.settleReady.resolve({ kind: 'hello', role: 'service', protocol: this.protocol.name, version: this.protocol.version, schemaHash: this.protocol.hash, info: {} });
    }
  }

  /** Sends our hello. Call once, right after attaching the channel. */
  sendHello(info: Record<string, unknown>): void {
    const p = this.protocol;
    this.channel.send({ kind: 'hello', role: 'client', protocol: p.name, version: p.version, schemaHash: p.hash, info });
  }

  /** Calls answered or queued but not settled. */
  get inFlight(): number {
    return this.inFlightCount + this.queue.length;
  }

  /** True once the service's hello matched and until the client is interrupted. */
  get usable(): boolean {
    return this.isReady && this.interruption === undefined;
  }

  /**
   * Makes one call. Never pends forever: it settles with the reply, an error
   * from the service, ERR_DEADLINE, ERR_CANCELLED, ERR_BACKPRESSURE, or the
   * interruption error when the channel goes away.
   */
  call(method: string, params: unknown, options: RpcCallOptions = {}): Promise<unknown> {
    const refused = this.refusal(method, options.signal);
    if (refused !== undefined) return Promise.reject(refused);
    return new Promise((resolve, reject) => {
      const call: PendingCall = {
        id: 0, method, params, meta: options.meta, resolve, reject,
        owner: options.owner, timer: undefined, signal: options.signal, onAbort: undefined, sent: false,
        inbox: undefined, gate: undefined, input: undefined,
      };
      this.start(call, options);
    });
  }

  /**
   * Starts a stream call (a method that `yields` and/or `accepts` items).
   * Items are validated on receipt; an invalid one ends the stream with
   * ERR_INVALID_RESULT naming its index. Ends like {@link RpcClient.call}.
   */
  stream(method: string, params: unknown, options: RpcStreamOptions = {}): RpcStream {
    const kind = this.protocol.streamOf(method);
    let call: PendingCall | undefined;
    const result = new Promise<unknown>((resolve, reject) => {
      call = {
        id: 0, method, params, meta: options.meta, resolve, reject,
        owner: options.owner, timer: undefined, signal: options.signal, onAbort: undefined, sent: false,
        inbox: undefined, gate: undefined, input: undefined,
      };
    });
    // The items' consumer sees the error; an unread result must not become an unhandled rejection.
    result.catch(() => {});
    const c = call!;
    if (kind.yields) c.inbox = new ItemInbox((n) => this.channel.send({ kind: 'credit', id: c.id, items: n }));
    let failed: BulkheadError | undefined;
    if (kind.accepts) {
      c.gate = new CreditGate();
      try {
        c.input = toAsyncIterable(options.input ?? []);
      } catch (err) {
        failed = err as BulkheadError;
      }
    }
    failed ??= this.refusal(method, options.signal);
    if (failed !== undefined) this.finishStream(c, failed);
    else this.start(c, options);
    return {
      result,
      get buffered() {
        return c.inbox?.size ?? 0;
      },
      next: () => c.inbox !== undefined ? c.inbox.next() : result.then(() => ({ value: undefined, done: true })),
      cancel: () => {
        c.inbox?.discard();
        this.abandon(c, 'cancelled', bulkheadError('ERR_CANCELLED', `${this.protocol.name}.${method}: the caller stopped reading the stream.`, { method }));
      },
    };
  }

  /** Why a new call cannot start now, if it cannot. */
  private refusal(method: string, signal: AbortSignal | undefined): BulkheadError | undefined {
    if (this.interruption !== undefined) return this.interruption;
    if (signal?.aborted) return abortError(signal, method, this.protocol.name);
    if (this.inFlightCount >= this.maxInFlight && this.queue.length >= this.maxQueued) {
      return bulkheadError('ERR_BACKPRESSURE', `${this.protocol.name}: ${this.maxQueued} calls are already waiting for one of ${this.maxInFlight} in-flight slots; await earlier calls or raise maxInFlight/maxQueued.`, { maxInFlight: this.maxInFlight, maxQueued: this.maxQueued });
    }
    return this.unreadBacklog();
  }

  /** Settles a stream call that never went out. */
  private finishStream(call: PendingCall, error: BulkheadError): void {
    call.inbox?.finish(error);
    call.gate?.close();
    call.reject(error);
  }

  /** Arms the call's deadline and signal, then sends it or queues it. */
  private start(call: PendingCall, options: RpcCallOptions): void {
    const { method } = call;
    const signal = options.signal;
    if (options.timeoutMs !== undefined) {
      const timeoutMs = options.timeoutMs;
      call.timer = setTimeout(() => this.abandon(call, 'deadline', bulkheadError('ERR_DEADLINE', `${this.protocol.name}.${method} did not answer within ${timeoutMs} ms; raise timeoutMs or make the handler faster.`, { method, timeoutMs })), timeoutMs);
    }
    if (signal !== undefined) {
      call.onAbort = () => this.abandon(call, 'cancelled', abortError(signal, method, this.protocol.name));
      signal.addEventListener('abort', call.onAbort, { once: true });
    }
    if (this.inFlightCount < this.maxInFlight) this.send(call);
    else this.queue.push(call);
    if (!this.busy) this.updateActivity();
  }

  /** Handles one envelope from the channel. */
  receive(envelope: Envelope): void {
    switch (envelope.kind) {
      case 'reply': {
        const call = this.pending.get(envelope.id);
        if (call === undefined) return; // late answer to a cancelled call
        const invalid = this.protocol.check('result', call.method, envelope.result);
        if (invalid === undefined) this.settle(call).resolve(envelope.result);
        else this.settle(call).reject(invalid);
        return;
      }
      case 'item':
        this.receiveItem(envelope.id, envelope.value);
        return;
      case 'credit':
        this.pending.get(envelope.id)?.gate?.grant(envelope.items);
        return;
      case 'error': {
        const error = fromWireError(envelope.error, this.service, this.trustPeerCodes);
        if (envelope.id === 0) {
          this.peerError = error;
          if (!this.isReady) this.settleReady.reject(error);
          return;
        }
        const call = this.pending.get(envelope.id);
        if (call !== undefined) this.settle(call).reject(error);
        return;
      }
      case 'event':
        this.receiveEvent(envelope.callId, envelope.name, envelope.payload);
        return;
      case 'hello':
        this.receiveHello(envelope);
        return;
      case 'goodbye':
        return; // the close that follows does the work
      case 'activity':
        this.transactions = envelope.transactions;
        this.updateActivity();
        return;
      case 'call':
      case 'cancel':
      case 'peer':
      case 'end':
        // A service never calls its client; treat it as a broken peer.
        this.channel.fail(bulkheadError('ERR_BAD_FRAME', `${this.protocol.name}: a service sent a "${envelope.kind}" message, which only clients may send.`));
        return;
    }
  }

  /**
   * Fails every pending and queued call with `error` and refuses new ones.
   * Idempotent: only the first error counts.
   */
  interrupt(error: BulkheadError): void {
    if (this.interruption !== undefined) return;
    this.interruption = error;
    if (!this.isReady) this.settleReady.reject(error);
    const calls = [...this.pending.values(), ...this.queue];
    this.pending.clear();
    this.queue.length = 0;
    this.inFlightCount = 0;
    for (const call of calls) {
      this.clearCall(call);
      call.inbox?.finish(error);
      call.gate?.close();
      call.reject(error);
    }
  }

  /** Fails the calls of one owner (a closing connection) with `error`, telling the service to cancel them. */
  abandonOwnedBy(owner: CallOwner, error: BulkheadError): void {
    for (const call of [...this.pending.values(), ...this.queue]) {
      if (call.owner === owner) this.abandon(call, 'cancelled', error);
    }
  }

  private receiveHello(hello: HelloEnvelope): void {
    if (this.isReady) return;
    const verdict = judgePeerHello(this.protocol, 'client', hello, 'Make the helper serve() the protocol its manifest names, or evolve the protocol compatibly (docs/protocols.md, "Versioning").');
    if (!verdict.ok) {
      this.settleReady.reject(verdict.error);
      this.channel.fail(verdict.error);
      return;
    }
    this.peerEvolved = verdict.evolved;
    this.isReady = true;
    this.settleReady.resolve(hello);
  }

  private receiveItem(id: number, value: unknown): void {
    const call = this.pending.get(id);
    if (call === undefined) return; // its call already settled or was cancelled
    const inbox = call.inbox;
    if (inbox === undefined) {
      this.abandon(call, 'cancelled', bulkheadError('ERR_INVALID_RESULT', `${this.protocol.name}.${call.method} sent a stream item, but the method does not declare "yields".`, { part: 'yields', method: call.method }));
      return;
    }
    const index = inbox.received;
    const invalid = this.protocol.check('yields', call.method, value);
    if (invalid !== undefined) {
      const error = bulkheadError('ERR_INVALID_RESULT', invalid.message.replace('an item of', `item ${index} of`), { ...invalid.data, index });
      // The items before it were valid: the consumer gets them, then this error.
      inbox.finish(error);
      this.abandon(call, 'cancelled', error);
      return;
    }
    if (!inbox.push(value)) {
      this.channel.fail(bulkheadError('ERR_BAD_FRAME', `${this.protocol.name}.${call.method}: the service sent a stream item without credit; it ignores flow control (docs/wire.md).`));
    }
  }

  /** Sends the caller's input items as credit allows, then `end`. */
  private async pumpInput(call: PendingCall): Promise<void> {
    const gate = call.gate!;
    const id = call.id;
    const live = () => this.pending.get(id) === call;
    const iterator = call.input![Symbol.asyncIterator]();
    let finished = false;
    let index = 0;
    try {
      for (;;) {
        if (!gate.canSend) await gate.ready();
        if (!live()) return;
        const next = await iterator.next();
        if (!live()) return;
        if (next.done === true) {
          finished = true;
          this.channel.send({ kind: 'end', id });
          return;
        }
        const problem = describeNonPlain(next.value);
        if (problem !== undefined) {
          this.abandon(call, 'cancelled', bulkheadError('ERR_INVALID_PARAMS', `${this.protocol.name}.${call.method}: input item ${index} holds ${problem}; send JSON-like data or byte strings.`, { method: call.method, part: 'accepts', index }));
          return;
        }
        gate.sent(this.channel.sendSized({ kind: 'item', id, value: next.value }));
        index++;
      }
    } catch (err) {
      const error = isCoded(err) ? err : bulkheadError('ERR_CANCELLED', `${this.protocol.name}.${call.method}: the input iterable threw (${err instanceof Error ? err.message : String(err)}); the call was cancelled.`, { method: call.method, index }, err);
      this.abandon(call, 'cancelled', error);
    } finally {
      if (!finished) void Promise.resolve(iterator.return?.()).catch(() => undefined);
    }
  }

  private receiveEvent(callId: number, name: string, payload: unknown): void {
    const owner = callId === 0 ? undefined : this.pending.get(callId)?.owner;
    if (callId !== 0 && owner === undefined) return; // its call already settled or was cancelled
    // A newer, compatible service may emit events this client's version does not know: not an error.
    if (this.peerEvolved && !this.protocol.hasEvent(name)) return;
    const error = this.protocol.hasEvent(name)
      ? this.protocol.check('event', name, payload)
      : bulkheadError('ERR_INVALID_RESULT', `${this.protocol.name}: the service emitted event "${name}", which its protocol does not declare.`, { part: 'event', event: name });
    if (owner !== undefined) {
      if (error === undefined) owner.deliverEvent(name, payload);
      else owner.deliverError(error);
    } else if (error === undefined) this.hooks.broadcast(name, payload);
    else this.hooks.eventError(error);
  }

  /** ERR_BACKPRESSURE when more than maxQueuedBytes wait for the peer to read them, else undefined. */
  private unreadBacklog(): BulkheadError | undefined {
    if (this.maxQueuedBytes === undefined) return undefined;
    const waiting = this.channel.writableLength;
    if (waiting <= this.maxQueuedBytes) return undefined;
    return bulkheadError('ERR_BACKPRESSURE', `${this.protocol.name}: ${waiting} bytes are already waiting for the service to read them (limit ${this.maxQueuedBytes}); it is slow or stuck. Retry later, or raise maxQueuedBytes.`, { buffered: waiting, maxQueuedBytes: this.maxQueuedBytes });
  }

  private send(call: PendingCall): void {
    const unread = this.unreadBacklog();
    if (unread !== undefined) {
      // Not sent: the slot stays free and the next queued call meets the same check.
      this.clearCall(call);
      call.reject(unread);
      return;
    }
    let id = this.nextId;
    while (this.pending.has(id)) id = id >= this.lastId ? this.firstId : id + 1;
    this.nextId = id >= this.lastId ? this.firstId : id + 1;
    call.id = id;
    call.sent = true;
    this.pending.set(id, call);
    this.inFlightCount++;
    try {
      this.hooks.sent?.(id, call.method);
      this.channel.send({ kind: 'call', id, method: call.method, params: call.params, meta: call.meta ?? null });
    } catch (err) {
      // Too large to send: only this call fails; the connection is untouched.
      this.settle(call).reject(err as BulkheadError);
      return;
    }
    call.inbox?.open();
    if (call.input !== undefined) void this.pumpInput(call);
  }

  /** Removes a call from the tables, frees its slot, and returns it for settling. */
  private settle(call: PendingCall): PendingCall {
    if (call.sent) {
      this.pending.delete(call.id);
      this.inFlightCount--;
      while (this.inFlightCount < this.maxInFlight) {
        const next = this.queue.shift();
        if (next === undefined) break;
        this.send(next);
      }
    } else {
      const index = this.queue.indexOf(call);
      if (index >= 0) this.queue.splice(index, 1);
    }
    this.clearCall(call);
    if (this.inFlightCount === 0) this.updateActivity();
    if (call.inbox !== undefined || call.gate !== undefined) return endStreamOnSettle(call);
    return call;
  }

  /** Open transactions the helper reported. */
  get openTransactions(): number {
    return this.transactions;
  }

  /** True while a call is in flight or queued, or a transaction is open. */
  get isBusy(): boolean {
    return this.busy;
  }

  private updateActivity(): void {
    const busy = this.inFlightCount + this.queue.length + this.transactions > 0;
    if (busy === this.busy) return;
    this.busy = busy;
    this.hooks.activity?.(busy);
  }

  private abandon(call: PendingCall, reason: 'cancelled' | 'deadline', error: BulkheadError): void {
    const live = call.sent ? this.pending.get(call.id) === call : this.queue.includes(call);
    if (!live) return;
    const wasSent = call.sent;
    this.settle(call).reject(error);
    if (wasSent) this.channel.send({ kind: 'cancel', id: call.id, reason });
  }

  private clearCall(call: PendingCall): void {
    if (call.timer !== undefined) clearTimeout(call.timer);
    if (call.onAbort !== undefined) call.signal!.removeEventListener('abort', call.onAbort);
    call.timer = undefined;
    call.onAbort = undefined;
  }
}

/**
 * Wraps a stream call's resolve/reject so that settling also ends its items:
 * the iterator finishes after the queued items (or throws the error), and the
 * input pump stops.
 */
function endStreamOnSettle(call: PendingCall): PendingCall {
  const { resolve, reject } = call;
  return {
    ...call,
    resolve: (value) => {
      call.inbox?.finish();
      call.gate?.close();
      resolve(value ?? null);
    },
    reject: (error) => {
      call.inbox?.finish(error);
      call.gate?.close();
      reject(error);
    },
  };
}

function isCoded(err: unknown): err is BulkheadError {
  return typeof err === 'object' && err !== null && (err as Error).name === 'BulkheadError' && typeof (err as { code?: unknown }).code === 'string';
}

/** An iterable (sync or async) as an async iterable. */
function toAsyncIterable(input: AsyncIterable<unknown> | Iterable<unknown>): AsyncIterable<unknown> {
  if (typeof (input as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') return input as AsyncIterable<unknown>;
  if (typeof (input as Iterable<unknown>)[Symbol.iterator] === 'function') {
    const iterable = input as Iterable<unknown>;
    return {
      [Symbol.asyncIterator]: () => {
        const iterator = iterable[Symbol.iterator]();
        return {
          next: () => Promise.resolve(iterator.next()),
          return: () => Promise.resolve(iterator.return?.() ?? { value: undefined, done: true }),
        };
      },
    };
  }
  throw bulkheadError('ERR_INVALID_OPTION', 'options.input must be an iterable or async iterable of items.', { option: 'input' });
}

/** The error for an aborted signal: its reason when that is already a BulkheadError, else ERR_CANCELLED. */
export function abortError(signal: AbortSignal, method: string, service: string): BulkheadError {
  const reason: unknown = signal.reason;
  if (typeof reason === 'object' && reason !== null && typeof (reason as { code?: unknown }).code === 'string' && (reason as Error).name === 'BulkheadError') {
    return reason as BulkheadError;
  }
  return bulkheadError('ERR_CANCELLED', `${service}.${method} was cancelled by the caller's AbortSignal.`, { method });
}
