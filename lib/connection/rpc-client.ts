/**
 * The calling side of one channel: call ids, the pending-call table,
 * deadlines, cancellation, a bounded number of calls in flight (the rest
 * queue, up to a bound), result and event validation on receipt, and the
 * hello check. One RpcClient lives exactly as long as one helper process.
 * Its options and hooks are in rpc-client-options.ts, one call's record in
 * pending-call.ts, the stream items' side in client-streams.ts.
 * @module
 */
import { bulkheadError, type BulkheadError } from '../errors.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import type { Envelope, HelloEnvelope } from '../wire/envelope.js';
import { ID_RANGE_SIZE } from '../wire/envelope.js';
import type { FramedChannel } from '../wire/framed-channel.js';
import { fromWireError } from './remote-error.js';
import { ClientHello } from './client-hello.js';
import { callQueueFull } from './call-gate.js';
import { CreditGate, ItemInbox } from './stream-flow.js';
import { RPC_CLIENT_DEFAULTS, type CallOwner, type RpcCallOptions, type RpcClientHooks, type RpcClientOptions, type RpcStream, type RpcStreamOptions } from './rpc-client-options.js';
import { abortError, disarm, endStreamOnSettle, newPendingCall, toAsyncIterable, type PendingCall } from './pending-call.js';
import { pumpStreamInput, receiveStreamItem, type StreamPort } from './client-streams.js';
import { CallTable } from '../util/call-table.js';

export { RPC_CLIENT_DEFAULTS, abortError };
export type { CallOwner, RpcCallOptions, RpcClientHooks, RpcClientOptions, RpcStream, RpcStreamOptions };

/** Calling side of one channel. */
export class RpcClient {
  /** Resolves with the service's hello once it matched; rejects with ERR_PROTOCOL_MISMATCH or the close reason. */
  readonly ready: Promise<HelloEnvelope>;
  /** Calls sent and not settled, by id (a CallTable, not a Map: see lib/util/call-table.ts). */
  private readonly pending = new CallTable<PendingCall>();
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
  private readonly hello: ClientHello;
  private transactions = 0;
  private busy = false;
  /** Last connection-level error the service sent (id 0), e.g. before it closed. */
  peerError: BulkheadError | undefined;
  /** The service's name, for `data.service` of the errors calls reject with. */
  private readonly service: string;
  /** What the stream functions (client-streams.ts) may do to this client. */
  private readonly streamPort: StreamPort;

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
    this.hello = new ClientHello(protocol);
    this.ready = this.hello.promise;
    if (options.skipHello === true) this.hello.assume();
    this.streamPort = {
      channel,
      protocol,
      isLive: (call) => this.pending.get(call.id) === call,
      cancel: (call, error) => this.abandon(call, 'cancelled', error),
    };
  }

  /** Sends our hello. Call once, right after attaching the channel. */
  sendHello(info: Record<string, unknown>): void {
    const p = this.protocol;
    this.channel.send({ kind: 'hello', role: 'client', protocol: p.name, version: p.version, schemaHash: p.hash, info });
    this.helloSent = true;
  }

  /**
   * True once our hello is on the channel: a call sent now reaches the service behind it, and the service
   * runs no call before it judged that hello (the broker's first call may ride with it: lib/broker/early-call.ts).
   */
  helloSent = false;

  /** Calls answered or queued but not settled. */
  get inFlight(): number {
    return this.inFlightCount + this.queue.length;
  }

  /** True once the service's hello matched and until the client is interrupted. */
  get usable(): boolean {
    return this.hello.done && this.interruption === undefined;
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
      this.start(newPendingCall(method, params, options, resolve, reject), options);
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
      call = newPendingCall(method, params, options, resolve, reject);
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
      return callQueueFull(this.protocol.name, { maxInFlight: this.maxInFlight, maxQueued: this.maxQueued });
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

  /**
   * Handles one envelope from the channel; `bodyBytes` is the length of the
   * frame body it came in (stream flow control counts it).
   */
  receive(envelope: Envelope, bodyBytes: number): void {
    // A call may go out before the service's hello arrived (our hello first); its answer is taken only after that hello matched.
    if (!this.hello.done && (envelope.kind === 'reply' || envelope.kind === 'item' || (envelope.kind === 'error' && envelope.id !== 0))) {
      const error = bulkheadError('ERR_PROTOCOL_MISMATCH', `${this.protocol.name}: the service answered a call before its hello; it does not speak bulkhead's handshake. Make its entry call serve().`, { kind: envelope.kind });
      this.interrupt(error);
      this.channel.fail(error);
      return;
    }
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
        this.receiveItem(envelope.id, envelope.value, bodyBytes);
        return;
      case 'credit':
        this.pending.get(envelope.id)?.gate?.grant(envelope.items);
        return;
      case 'error': {
        const error = fromWireError(envelope.error, this.service, this.trustPeerCodes);
        if (envelope.id === 0) {
          this.peerError = error;
          this.hello.fail(error);
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
        this.hello.receive(envelope, this.channel);
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
    this.hello.fail(error);
    const calls = [...this.pending.valuesInOrder(), ...this.queue];
    this.pending.clear();
    this.queue.length = 0;
    this.inFlightCount = 0;
    for (const call of calls) {
      disarm(call);
      call.inbox?.finish(error);
      call.gate?.close();
      call.reject(error);
    }
  }

  /** Fails the calls of one owner (a closing connection) with `error`, telling the service to cancel them. */
  abandonOwnedBy(owner: CallOwner, error: BulkheadError): void {
    for (const call of [...this.pending.valuesInOrder(), ...this.queue]) {
      if (call.owner === owner) this.abandon(call, 'cancelled', error);
    }
  }

  private receiveItem(id: number, value: unknown, bodyBytes: number): void {
    const call = this.pending.get(id);
    if (call === undefined) return; // its call already settled or was cancelled
    receiveStreamItem(this.streamPort, call, value, bodyBytes);
  }

  private receiveEvent(callId: number, name: string, payload: unknown): void {
    const owner = callId === 0 ? undefined : this.pending.get(callId)?.owner;
    if (callId !== 0 && owner === undefined) return; // its call already settled or was cancelled
    // A newer, compatible service may emit events this client's version does not know: not an error.
    const known = this.protocol.hasEvent(name);
    if (!known && this.hello.evolved) return;
    const error = known
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
      disarm(call);
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
      this.channel.send({ kind: 'call', id, method: call.method, params: call.params, meta: call.meta ?? null }, call.noLargeBytes);
    } catch (err) {
      // Too large to send: only this call fails; the connection is untouched.
      this.settle(call).reject(err as BulkheadError);
      return;
    }
    call.inbox?.open();
    if (call.input !== undefined) void pumpStreamInput(this.streamPort, call);
  }

  /** Removes a call from the tables, frees its slot, and returns it for settling. */
  private settle(call: PendingCall): PendingCall {
    if (call.sent) {
      this.pending.delete(call.id);
      this.inFlightCount--;
      // (No shift() of an empty queue: a builtin call per settled call.)
      while (this.queue.length > 0 && this.inFlightCount < this.maxInFlight) this.send(this.queue.shift()!);
    } else {
      const index = this.queue.indexOf(call);
      if (index >= 0) this.queue.splice(index, 1);
    }
    disarm(call);
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

}
