/**
 * The helper's service-wide call gate: one bound on the handlers running at
 * once across every channel the helper serves (the broker's fd 3, which
 * carries its own and routed calls, and every direct channel: daemon clients
 * and calling services), from the manifest's `maxInFlight` / `maxQueued`.
 * The broker bounds the calls it sends; only the helper sees the calls that
 * reach it over direct channels, so only the helper can hold the manifest's
 * promise for all of them.
 *
 * Semantics are the broker's (rpc-client.ts): a call that finds
 * `maxInFlight` handlers running waits in one FIFO queue; one more call than
 * `maxQueued` waiting fails at once with `ERR_BACKPRESSURE`
 * (`data: { maxInFlight, maxQueued }`). A queued call the caller cancels (or
 * whose deadline passes) leaves the queue without an answer, like a running
 * call that is aborted. A slot is held until the handler settles: a handler
 * that ignores its abort signal still counts as running.
 *
 * The hot path is one compare and two counter updates per call; the queue is
 * touched only past the bound.
 * @module
 */
import { bulkheadError, type BulkheadError } from '../errors.js';
import type { CallEnvelope } from '../wire/envelope.js';
import type { Handler } from './handler-context.js';

/** What the gate needs of a server whose calls it admits (RpcServer). */
export interface GatedServer {
  /** Calls of this server waiting in the gate's queue (kept by the gate; the server counts them against its own bound). */
  queuedHere: number;
  /** Starts a call the gate queued; its slot is already taken (the server checks that its id is still free). */
  runQueued(call: CallEnvelope, handler: Handler): void;
  /** Answers `id` with the gate's refusal. */
  refuseCall(id: number, error: BulkheadError): void;
}

interface Waiting {
  server: GatedServer;
  call: CallEnvelope;
  handler: Handler;
}

/** The manifest's limits, as the broker passes them to the helper. */
export interface CallGateLimits {
  /** Handlers that may run at once across the helper's channels (≥ 1). */
  maxInFlight: number;
  /** Calls that may wait for a slot (≥ 0). */
  maxQueued: number;
}

/**
 * The refusal of a call that finds `maxInFlight` calls running and `maxQueued`
 * waiting: the same error from the caller's queue (rpc-client.ts) and the helper's gate.
 */
export function callQueueFull(service: string, limits: CallGateLimits): BulkheadError {
  const { maxInFlight, maxQueued } = limits;
  return bulkheadError('ERR_BACKPRESSURE', `${service}: ${maxQueued} calls are already waiting for one of ${maxInFlight} in-flight slots; await earlier calls or raise maxInFlight/maxQueued.`, { maxInFlight, maxQueued });
}

/** One bound on the calls a helper runs at once, shared by every channel it serves. */
export class CallGate {
  /** Handlers running now (slots taken). */
  running = 0;
  readonly maxInFlight: number;
  readonly maxQueued: number;
  private queue: Waiting[] = [];
  /** Index of the queue's first live entry (a cheap FIFO without shifting). */
  private head = 0;
  private pumping = false;
  /** Calls the gate refused since it was made (for tests and the runtime). */
  refused = 0;

  constructor(limits: CallGateLimits, private readonly service: string) {
    this.maxInFlight = limits.maxInFlight;
    this.maxQueued = limits.maxQueued;
  }

  /**
   * The gate from the limits the broker passed in the helper's environment,
   * or undefined when it passed none (an older broker: per-channel bounds only).
   */
  static fromEnvironment(inFlight: string | undefined, queued: string | undefined, service: string): CallGate | undefined {
    // Number('') is 0: an unset or empty maxInFlight gives no gate, an unset or empty maxQueued 0.
    const maxInFlight = Number(inFlight ?? '');
    const maxQueued = Number(queued ?? '');
    if (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1) return undefined;
    return new CallGate({ maxInFlight, maxQueued: Number.isSafeInteger(maxQueued) && maxQueued >= 0 ? maxQueued : 0 }, service);
  }

  /** Calls waiting for a slot now. */
  get queued(): number {
    return this.queue.length - this.head;
  }

  /**
   * A call arrived (validated) on `server`: true when it may run now (its slot
   * is taken; call {@link CallGate.release} when its handler settles); false
   * when the gate queued it (it starts through `server.runQueued`) or refused it.
   */
  admit(server: GatedServer, call: CallEnvelope, handler: Handler): boolean {
    if (this.running < this.maxInFlight) {
      this.running++;
      return true;
    }
    if (this.queued >= this.maxQueued) {
      this.refused++;
      server.refuseCall(call.id, callQueueFull(this.service, this));
      return false;
    }
    this.queue.push({ server, call, handler });
    server.queuedHere++;
    return false;
  }

  /** A handler that held a slot settled: the slot goes to the first waiting call, if any. */
  release(): void {
    this.running--;
    // A queued call whose handler settles at once releases again from in here: the loop takes it (no recursion).
    if (this.pumping || this.head === this.queue.length) return;
    this.pumping = true;
    try {
      while (this.running < this.maxInFlight && this.head < this.queue.length) {
        const next = this.queue[this.head]!;
        this.queue[this.head++] = undefined as unknown as Waiting; // let it go
        this.compact();
        this.running++;
        next.server.queuedHere--;
        next.server.runQueued(next.call, next.handler);
      }
    } finally {
      this.pumping = false;
    }
  }

  /**
   * The caller cancelled call `id` of `server` (or its deadline passed):
   * removes it from the queue. Returns false when it is not queued (running, or unknown).
   */
  withdraw(server: GatedServer, id: number): boolean {
    if (server.queuedHere === 0) return false;
    for (let i = this.head; i < this.queue.length; i++) {
      const w = this.queue[i]!;
      if (w.server === server && w.call.id === id) {
        this.queue.splice(i, 1);
        server.queuedHere--;
        return true;
      }
    }
    return false;
  }

  /** `server`'s channel closed: its queued calls go (nobody waits for their answers). */
  drop(server: GatedServer): void {
    if (server.queuedHere === 0) return;
    this.queue = this.queue.slice(this.head).filter((w) => w.server !== server);
    this.head = 0;
    server.queuedHere = 0;
  }

  private compact(): void {
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}
