/**
 * What a handler sees of its call: the {@link HandlerContext} contract and
 * RunningCall, the one object per running call that implements it (signal,
 * peer, emit, input, keepAlive) and carries the server's per-call state
 * (trace span, stream inbox and credit). Split from rpc-server.ts, which
 * dispatches calls; this file is what a call *is* while it runs.
 * @module
 */
import type { BulkheadError } from '../errors.js';
import type { PeerInfo } from '../wire/envelope.js';
import type { CreditGate, ItemInbox } from './stream-flow.js';
import type { CallSpan } from './trace-context.js';

/** What a handler receives besides its params. */
export interface HandlerContext {
  /** Aborts when the caller cancels, its deadline passes, or the helper is stopping. */
  readonly signal: AbortSignal;
  /** Who called, as verified by the broker. */
  readonly peer: PeerInfo;
  /** The caller's timeout in ms, when it set one. */
  readonly timeoutMs: number | undefined;
  /**
   * The caller's W3C trace context (`00-<trace id>-<span id>-<flags>`), when it
   * sent one; calls this handler makes carry it on (lib/connection/trace-context.ts).
   */
  readonly traceparent: string | undefined;
  /**
   * Sends an event to the caller of this call (validated by the receiver
   * against the protocol). Resolves at once while little is waiting to be
   * written, later once the channel drained (await it to be slowed to the
   * reader's pace); never rejects.
   * @throws BulkheadError `ERR_BACKPRESSURE` when more than
   *   `EVENT_BACKLOG.maxBytes` (32 MiB) are already waiting (events were emitted
   *   without awaiting emit()), `ERR_CLOSED` after the call settled
   */
  emit(name: string, payload: unknown): Promise<void>;
  /**
   * The caller's input items (a method that declares `accepts`), validated,
   * under flow control: the caller sends more only as this is read. Empty for
   * other methods. Read it once.
   */
  readonly input: AsyncIterable<unknown>;
  /**
   * Opens a transaction (XPC's os_transaction): while any is open the broker
   * will not stop this helper for being idle, even after the call returns.
   * Call the returned function once the background work is done.
   */
  keepAlive(): () => void;
}

/** A handler: params in, result (or a promise of it) out. */
export type Handler = (params: never, ctx: HandlerContext) => unknown;

/** What a RunningCall asks of the server that runs it. */
export interface CallHost {
  /** ctx.emit of a running call. */
  emitFor(running: RunningCall, name: string, payload: unknown): Promise<void>;
  /** ctx.keepAlive: opens a transaction, returns its release function. */
  openTransaction(): () => void;
}

const EMPTY_INPUT: AsyncIterable<unknown> = { [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ value: undefined, done: true }) }) };

/**
 * One running handler and its context. The AbortController is created only
 * when the handler reads `ctx.signal`: most handlers never do, and creating
 * one costs more than the rest of the dispatch.
 */
export class RunningCall implements HandlerContext {
  private controller: AbortController | undefined;
  private reason: BulkheadError | undefined;

  /** The handler's SERVER span, when tracing. */
  span: CallSpan | undefined;
  /** Input items of an `accepts` method. */
  inbox: ItemInbox | undefined;
  /** Credit for the items of a `yields` method. */
  gate: CreditGate | undefined;

  constructor(private readonly server: CallHost, readonly id: number, readonly method: string, readonly peer: PeerInfo, readonly timeoutMs: number | undefined, readonly traceparent: string | undefined) {}

  get input(): AsyncIterable<unknown> {
    const inbox = this.inbox;
    if (inbox === undefined) return EMPTY_INPUT;
    return { [Symbol.asyncIterator]: () => ({ next: () => inbox.next(), return: () => {
      inbox.discard();
      return Promise.resolve({ value: undefined, done: true });
    } }) };
  }

  /** Why the call was aborted, once it was. */
  get abortReason(): BulkheadError | undefined {
    return this.reason;
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.reason !== undefined) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  get aborted(): boolean {
    return this.reason !== undefined;
  }

  abort(reason: BulkheadError): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.inbox?.finish(reason);
    this.gate?.close();
    this.controller?.abort(reason);
  }

  emit(name: string, payload: unknown): Promise<void> {
    return this.server.emitFor(this, name, payload);
  }

  keepAlive(): () => void {
    return this.server.openTransaction();
  }
}
