/**
 * A client's handle to one service (NSXPCConnection's role): typed calls,
 * events, and the two lifecycle signals — `interrupted` (the helper died;
 * the next call relaunches it) and `invalidated` (the service can never be
 * reached through this handle again).
 * @module
 */
import { bulkheadError, type BulkheadError } from '../errors.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import type { AcceptsOf, AnyProtocol, EventName, EventPayload, MethodName, ParamsOf, ProtocolShape, ResultOf, YieldsOf } from '../protocol/types.js';
import { Emitter, type Disposable } from '../util/emitter.js';
import { describeNonPlain, newPlainTally } from '../wire/codec.js';
import type { CallMeta } from '../wire/envelope.js';
import { currentTraceparent, isInertSpan, startClientSpan, untracedCall } from './trace-context.js';
import { abortError, type CallOwner, type RpcClient, type RpcStream } from './rpc-client.js';
import { StreamCall } from './stream-call.js';

/** Options of one call. */
export interface CallOptions {
  /**
   * Milliseconds before the call fails with ERR_DEADLINE (counted from the
   * call, including any on-demand launch). The service's handler sees its
   * `ctx.signal` abort.
   * @default the connection's `timeoutMs` (none unless set)
   */
  timeoutMs?: number;
  /** Aborting it fails the call with ERR_CANCELLED and aborts the handler's `ctx.signal`. @default none: only the deadline or close ends the call early */
  signal?: AbortSignal;
  /**
   * W3C `traceparent` the call carries to the service (`ctx.traceparent`).
   * @default the running handler's trace, else the active OpenTelemetry span's (lib/connection/trace-context.ts)
   */
  traceparent?: string;
}

/** Options of one stream call: {@link CallOptions} plus the caller's items. */
export interface StreamOptions<I = unknown> extends CallOptions {
  /**
   * Items to send to the service, for a method that declares `accepts`. They
   * are pulled only as the service's credit allows (a slow service holds the
   * iterable back); when it ends, the service's `ctx.input` ends.
   * @default none (the input is empty)
   */
  input?: AsyncIterable<I> | Iterable<I>;
}

/**
 * A client to send a call on; `launched`, when the call rides with a launch's hello: that launch, which the caller
 * awaits before it hands back the call's outcome, so that it sees what it saw before (the service running after a
 * first reply; a failed launch settled, and counted, before its next call may launch again).
 */
export interface CallClient {
  rpc: RpcClient;
  launched?: Promise<unknown>;
}

/** What a connection needs from whoever supplies helpers (the broker). */
export interface ServiceEndpoint {
  /** Service name. */
  readonly service: string;
  /** The service's protocol, as the broker loaded it. */
  readonly protocol: CompiledProtocol;
  /** The running helper's client when it is ready now (the fast path). */
  current(): RpcClient | undefined;
  /** Launches the helper if needed; resolves once it is ready. Rejects with a coded error. */
  acquire(): Promise<RpcClient>;
  /**
   * Like {@link ServiceEndpoint.acquire}, for a call about to be sent: may resolve with a helper that is still
   * launching once the broker's hello is on its channel, so the call rides with it (lib/broker/early-call.ts).
   * The client then takes no answer before the helper's hello matched; a launch that fails rejects the call.
   */
  acquireForCall?(): Promise<CallClient>;
  /** Metadata to send with every call (e.g. the verified peer). */
  readonly callMeta: CallMeta | undefined;
  /** The connection closed and wants no more signals. */
  detach(connection: Connection<ProtocolShape>): void;
}

/**
 * `[name, payload]` of any event of protocol `P`, as a union over its event
 * names, so checking `name` narrows `payload`.
 */
export type AnyEventOf<P extends ProtocolShape> = { [E in EventName<P>]: [name: E, payload: EventPayload<P, E>] }[EventName<P>];

/**
 * Lifecycle events of a {@link Connection}, for `conn.on(name, listener)`.
 * A protocol's own events are not among them: listen with `conn.onEvent(name, ...)`
 * (typed by the protocol) or to `event` (every event); any other name does not compile.
 */
export interface ConnectionEvents<P extends ProtocolShape = AnyProtocol> {
  /** The service emitted an event (already validated against the protocol). */
  event: AnyEventOf<P>;
  /** The helper died or stopped; calls in flight failed with this ERR_INTERRUPTED error. The next call relaunches it. */
  interrupted: [error: BulkheadError];
  /** The service can never be reached through this connection again. */
  invalidated: [error: BulkheadError];
  /** An event from the service failed validation (ERR_INVALID_RESULT) and was dropped. */
  error: [error: BulkheadError];
}

/** Connection options. */
export interface ConnectionOptions {
  /**
   * Default deadline for every call on this connection, in ms.
   * @default undefined (no deadline)
   */
  timeoutMs?: number;
}

/** The keys of {@link ConnectionOptions}: `connect()` refuses any other (a typo such as `timeout`). */
export const CONNECT_OPTION_NAMES = ['timeoutMs'] as const satisfies readonly (keyof ConnectionOptions)[];

/** A client's handle to one service. Create with `broker.connect(name)`. */
export class Connection<P extends ProtocolShape = AnyProtocol> extends Emitter<ConnectionEvents<P>> implements CallOwner {
  private state: 'open' | 'closing' | 'closed' | 'invalidated' = 'open';
  private endError: BulkheadError | undefined;
  private inFlightCount = 0;
  private idleWaiters: Array<() => void> = [];
  private readonly defaultTimeoutMs: number | undefined;
  /** The last method {@link Connection.call} found in the protocol and not a stream method. */
  private lastCallable: string | undefined;
  private lastCallableIn: CompiledProtocol | undefined;

  /** @internal Created by the broker. */
  constructor(private readonly endpoint: ServiceEndpoint, options: ConnectionOptions = {}) {
    super();
    if (options.timeoutMs !== undefined) checkTimeout(options.timeoutMs, 'timeoutMs');
    this.defaultTimeoutMs = options.timeoutMs;
  }

  /** Service name. */
  get service(): string {
    return this.endpoint.service;
  }

  /** True until close(), destroy() or invalidation. */
  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Calls made on this connection and not yet settled. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /**
   * Calls a method. The first call launches the helper if it is not running.
   * Rejects with a {@link BulkheadError}: ERR_UNKNOWN_METHOD, ERR_INVALID_PARAMS,
   * ERR_INVALID_RESULT, ERR_SERVICE_ERROR, ERR_DEADLINE, ERR_CANCELLED,
   * ERR_INTERRUPTED, ERR_INVALIDATED, ERR_LAUNCH_FAILED, ERR_BACKPRESSURE or ERR_CLOSED.
   */
  call<M extends MethodName<P>>(method: M, params: ParamsOf<P, M>, options: CallOptions = {}): Promise<ResultOf<P, M>> {
    if (this.state !== 'open') return Promise.reject(this.unusableError());
    const protocol = this.endpoint.protocol;
    // A protocol's methods never change: the last method found callable in this protocol needs no second look
    // (the protocol is compared too, in case an endpoint ever answers with another one, e.g. after a reload).
    if (method !== this.lastCallable || protocol !== this.lastCallableIn) {
      if (!protocol.hasMethod(method)) {
        return Promise.reject(bulkheadError('ERR_UNKNOWN_METHOD', `${protocol.name} has no method "${method}"; methods: ${protocol.methodNames().join(', ')}.`, { method }));
      }
      if (protocol.isStream(method)) {
        return Promise.reject(bulkheadError('ERR_INVALID_OPTION', `${protocol.name}.${method} is a stream method (it declares "yields" or "accepts"); call it with stream().`, { method }));
      }
      this.lastCallable = method;
      this.lastCallableIn = protocol;
    }
    const tally = newPlainTally();
    const problem = describeNonPlain(params, tally);
    if (problem !== undefined) {
      return Promise.reject(bulkheadError('ERR_INVALID_PARAMS', `${protocol.name}.${method}: params hold ${problem}; send JSON-like data or byte strings.`, { method, part: 'params' }));
    }
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    if (options.timeoutMs !== undefined) {
      try {
        checkTimeout(options.timeoutMs, 'options.timeoutMs');
      } catch (err) {
        return Promise.reject(err);
      }
    }
    this.inFlightCount++;
    const noLargeBytes = tally.large === 0;
    // Most calls carry no trace: then no span and no second look at the global OpenTelemetry registry (trace-context.ts).
    const span = untracedCall(options.traceparent) ? undefined : startClientSpan(currentTraceparent(options.traceparent), { protocol: protocol.name, service: this.service, method });
    const meta = span?.traceparent === undefined ? this.endpoint.callMeta : { ...this.endpoint.callMeta, traceparent: span.traceparent };
    const rpc = this.endpoint.current();
    const result = rpc !== undefined
      ? rpc.call(method, params, { timeoutMs, signal: options.signal, owner: this, meta, noLargeBytes })
      : this.callAfterLaunch(method, params, timeoutMs, options.signal, meta);
    if (span === undefined || isInertSpan(span)) {
      // No span to end: no closures per call.
      result.then(this.settled, this.settled);
      return result;
    }
    result.then(() => {
      span.end();
      this.settled();
    }, (err: unknown) => {
      span.end((err as { code?: string }).code ?? 'ERR_SERVICE_ERROR');
      this.settled();
    });
    return result;
  }

  /**
   * Calls a stream method (one that declares `yields` and/or `accepts`).
   * Returns at once; iterate it for the items the service yields, each
   * validated on receipt, and read `.result` for the final value. The service
   * is held back by flow control while the items are not read. A failure ends
   * the iteration with a {@link BulkheadError} (the same codes as call(), and
   * ERR_INVALID_RESULT for an item that fails its schema, with `data.index`);
   * `break` cancels the call.
   * @example
   * ```ts
   * const lines = conn.stream('tail', { file }, { timeoutMs: 60_000 });
   * for await (const line of lines) console.log(line);
   * const uploaded = conn.stream('upload', { name }, { input: chunks() });
   * console.log(await uploaded.result);
   * ```
   */
  stream<M extends MethodName<P>>(method: M, params: ParamsOf<P, M>, options: StreamOptions<AcceptsOf<P, M>> = {}): StreamCall<YieldsOf<P, M>, ResultOf<P, M>> {
    const started = this.startStream(method, params, options);
    const stream = new StreamCall<YieldsOf<P, M>, ResultOf<P, M>>(started);
    this.inFlightCount++;
    stream.result.then(this.settled, this.settled);
    return stream;
  }

  private async startStream(method: string, params: unknown, options: StreamOptions): Promise<RpcStream> {
    if (this.state !== 'open') throw this.unusableError();
    const protocol = this.endpoint.protocol;
    if (!protocol.hasMethod(method)) {
      throw bulkheadError('ERR_UNKNOWN_METHOD', `${protocol.name} has no method "${method}"; methods: ${protocol.methodNames().join(', ')}.`, { method });
    }
    if (!protocol.isStream(method)) {
      throw bulkheadError('ERR_INVALID_OPTION', `${protocol.name}.${method} is not a stream method (it declares neither "yields" nor "accepts"); use call().`, { method });
    }
    const problem = describeNonPlain(params);
    if (problem !== undefined) {
      throw bulkheadError('ERR_INVALID_PARAMS', `${protocol.name}.${method}: params hold ${problem}; send JSON-like data or byte strings.`, { method, part: 'params' });
    }
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    if (options.timeoutMs !== undefined) checkTimeout(options.timeoutMs, 'options.timeoutMs');
    const rpcOptions = { signal: options.signal, owner: this, meta: this.endpoint.callMeta, input: options.input };
    const current = this.endpoint.current();
    if (current !== undefined) return current.stream(method, params, { ...rpcOptions, timeoutMs });
    const begun = performance.now();
    const rpc = await waitWithin(this.endpoint.acquire(), timeoutMs, options.signal, () => bulkheadError('ERR_DEADLINE', `${this.service}.${method}: the helper did not become ready within ${timeoutMs} ms; raise timeoutMs.`, { method, timeoutMs }), method, this.service);
    // The connection may have been destroyed or invalidated during the launch.
    if (!this.takesWork()) throw this.unusableError();
    const remaining = timeoutMs === undefined ? undefined : Math.max(0, timeoutMs - (performance.now() - begun));
    return rpc.stream(method, params, { ...rpcOptions, timeoutMs: remaining });
  }

  /**
   * Listens for one event of the protocol, typed by its name.
   * @returns a Disposable that removes the listener
   */
  onEvent<E extends EventName<P>>(name: E, listener: (payload: EventPayload<P, E>) => void): Disposable {
    return this.on('event', (...[eventName, payload]: AnyEventOf<P>) => {
      if (eventName === name) listener(payload as EventPayload<P, E>);
    });
  }

  /** Stops new calls, waits for this connection's calls to settle, then detaches. Idempotent. */
  async close(): Promise<void> {
    if (this.state === 'open') this.state = 'closing';
    if (this.inFlightCount > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.finish();
  }

  /** Fails this connection's calls now (with `error` or ERR_CLOSED) and detaches. Idempotent. */
  destroy(error?: BulkheadError): void {
    if (this.state === 'closed') return;
    const reason = error ?? bulkheadError('ERR_CLOSED', `Connection to ${this.service} was destroyed; open a new one with broker.connect().`);
    if (this.state !== 'invalidated') this.endError = reason;
    this.state = this.state === 'invalidated' ? 'invalidated' : 'closing';
    this.endpoint.current()?.abandonOwnedBy(this, reason);
    this.finish();
  }

  /** `await using conn = broker.connect(...)` closes it at scope end. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal The service's helper died or stopped. */
  notifyInterrupted(error: BulkheadError): void {
    if (this.state === 'open' || this.state === 'closing') this.emit('interrupted', error);
  }

  /** @internal The service can never be reached again through this connection. */
  notifyInvalidated(error: BulkheadError): void {
    if (this.state === 'closed' || this.state === 'invalidated') return;
    this.state = 'invalidated';
    this.endError = error;
    this.emit('invalidated', error);
  }

  /** @internal A broadcast event of the service. */
  deliverEvent(name: string, payload: unknown): void {
    if (this.state === 'open' || this.state === 'closing') this.emit('event', ...([name, payload] as AnyEventOf<P>));
  }

  /** @internal An event failed validation. */
  deliverError(error: BulkheadError): void {
    if (this.state === 'open' || this.state === 'closing') this.emit('error', error);
  }

  private readonly settled = (): void => {
    this.inFlightCount--;
    if (this.inFlightCount === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  };

  private finish(): void {
    if (this.state === 'closed') return;
    const wasInvalidated = this.state === 'invalidated';
    if (!wasInvalidated) this.state = 'closed';
    this.endError ??= bulkheadError('ERR_CLOSED', `Connection to ${this.service} is closed; open a new one with broker.connect().`);
    this.endpoint.detach(this);
    this.removeAllListeners();
  }

  /** True while calls already started may still go out (open, or closing with calls in flight). */
  private takesWork(): boolean {
    return this.state === 'open' || this.state === 'closing';
  }

  private unusableError(): BulkheadError {
    return this.endError ?? bulkheadError('ERR_CLOSED', `Connection to ${this.service} is closing; open a new one with broker.connect().`);
  }

  /** Slow path: wait for an on-demand launch, counting it against the deadline and the signal. */
  private async callAfterLaunch(method: string, params: unknown, timeoutMs: number | undefined, signal: AbortSignal | undefined, meta: CallMeta | undefined): Promise<unknown> {
    const started = performance.now();
    const acquired = this.endpoint.acquireForCall?.() ?? this.endpoint.acquire().then((rpc): CallClient => ({ rpc }));
    const { rpc, launched } = await waitWithin(acquired, timeoutMs, signal, () => bulkheadError('ERR_DEADLINE', `${this.service}.${method}: the helper did not become ready within ${timeoutMs} ms; raise timeoutMs.`, { method, timeoutMs }), method, this.service);
    if (this.state !== 'open' && this.state !== 'closing') throw this.unusableError();
    const remaining = timeoutMs === undefined ? undefined : Math.max(0, timeoutMs - (performance.now() - started));
    const call = rpc.call(method, params, { timeoutMs: remaining, signal, owner: this, meta });
    if (launched === undefined) return call;
    // Rode with the launch's hello: its outcome is handed back once that launch settled (a deadline or cancel at once).
    return call.then(async (value) => {
      await launched.catch(() => undefined);
      return value;
    }, async (err: unknown) => {
      const code = (err as { code?: string }).code;
      if (code !== 'ERR_DEADLINE' && code !== 'ERR_CANCELLED') await launched.catch(() => undefined);
      throw err;
    });
  }
}

function checkTimeout(value: number, name: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 2 ** 31 - 1) {
    throw bulkheadError('ERR_INVALID_OPTION', `${name} must be a number of milliseconds from 0 to 2^31-1, got ${String(value)}.`, { option: name });
  }
}

/** Awaits `promise`, but gives up on the deadline or the signal. */
function waitWithin<T>(promise: Promise<T>, timeoutMs: number | undefined, signal: AbortSignal | undefined, deadlineError: () => BulkheadError, method: string, service: string): Promise<T> {
  if (timeoutMs === undefined && signal === undefined) return promise;
  if (signal?.aborted) return Promise.reject(abortError(signal, method, service));
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => done(() => reject(abortError(signal!, method, service)));
    const done = (settle: () => void) => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      settle();
    };
    if (timeoutMs !== undefined) timer = setTimeout(() => done(() => reject(deadlineError())), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    promise.then((value) => done(() => resolve(value)), (err: unknown) => done(() => reject(err)));
  });
}
