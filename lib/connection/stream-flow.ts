/**
 * Credit-based flow control for stream items (HTTP/2 and gRPC windows, counted
 * in items with a byte cap). The receiving end of one direction of a stream
 * holds an {@link ItemInbox}: it opens a window of {@link STREAM_WINDOW}.items
 * credits and, as its consumer takes items, gives them back in `credit`
 * messages. The sending end holds a {@link CreditGate}: it advances its
 * producer only while it holds a credit and has less than
 * {@link STREAM_WINDOW}.bytes unacknowledged. So, whatever the speed
 * difference, one direction of one stream never has more than
 * `items` items, nor more than `bytes` plus one item, between producer and
 * consumer.
 * @module
 */
import { bulkheadError, type BulkheadError } from '../errors.js';

/** Flow-control window of one direction of one stream. */
export const STREAM_WINDOW = {
  /** Items the receiver lets the sender have outstanding (its first credit). */
  items: 256,
  /** Bytes (frame bodies) the sender keeps unacknowledged at most, plus one item. */
  bytes: 4 * 1024 * 1024,
} as const;

/**
 * Receiving side of one direction of a stream: a queue of items the peer
 * sent, consumed by one reader, with the credit it gives back.
 */
export class ItemInbox {
  private readonly queue: unknown[] = [];
  private waiter: { resolve(r: IteratorResult<unknown>): void; reject(e: BulkheadError): void } | undefined;
  private done = false;
  private error: BulkheadError | undefined;
  /** Items taken by the consumer and not yet given back as credit. */
  private consumed = 0;
  /** Credits the peer holds: granted and not yet used by an item. */
  private outstanding = 0;
  /** Items received so far (the next item's index). */
  received = 0;

  /** @param grant - sends a credit message for `n` items */
  constructor(private readonly grant: (n: number) => void, private readonly window: number = STREAM_WINDOW.items) {}

  /** Opens the window: the peer may send `window` items. */
  open(): void {
    this.outstanding = this.window;
    this.grant(this.window);
  }

  /** Items waiting for the consumer. */
  get size(): number {
    return this.queue.length;
  }

  /** True once the stream ended (cleanly or not) and the queue is empty. */
  get closed(): boolean {
    return this.done && this.queue.length === 0;
  }

  /**
   * One item from the peer. Returns false when the peer sent it without a
   * credit (a peer that ignores flow control; the owner fails the stream).
   */
  push(value: unknown): boolean {
    if (this.done) return true; // late item after the end: dropped
    if (this.outstanding <= 0) return false;
    this.outstanding--;
    this.received++;
    const waiter = this.waiter;
    if (waiter !== undefined) {
      this.waiter = undefined;
      this.took();
      waiter.resolve({ value, done: false });
    } else this.queue.push(value);
    return true;
  }

  /**
   * No more items will come: `error` (if any) is thrown to the consumer after
   * the items already queued. Idempotent: the first end counts.
   */
  finish(error?: BulkheadError): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    const waiter = this.waiter;
    if (waiter === undefined) return;
    this.waiter = undefined;
    if (error !== undefined) waiter.reject(error);
    else waiter.resolve({ value: undefined, done: true });
  }

  /** Drops what is queued (the consumer went away) and ends. */
  discard(error?: BulkheadError): void {
    this.queue.length = 0;
    this.finish(error);
  }

  /** The next item, once there is one; rejects with the stream's error at its end. */
  next(): Promise<IteratorResult<unknown>> {
    if (this.queue.length > 0) {
      const value = this.queue.shift();
      this.took();
      return Promise.resolve({ value, done: false });
    }
    if (this.done) return this.error !== undefined ? Promise.reject(this.error) : Promise.resolve({ value: undefined, done: true });
    if (this.waiter !== undefined) return Promise.reject(bulkheadError('ERR_INVALID_OPTION', 'A stream is read by one consumer at a time: await each next() before the next one.'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /**
   * The consumer took one item. Credit goes back in batches of half a window,
   * or at once when the queue ran dry (the consumer is about to wait, and the
   * sender may be held by its byte cap rather than by items).
   */
  private took(): void {
    this.consumed++;
    if (this.done) return;
    if (this.consumed >= this.window / 2 || this.queue.length === 0) {
      const n = this.consumed;
      this.consumed = 0;
      this.outstanding += n;
      this.grant(n);
    }
  }
}

/**
 * Sending side of one direction of a stream: may the producer be advanced?
 * Credits come from the peer; bytes are counted here, with this end's own
 * frame sizes, and released in order as the peer's credits acknowledge items.
 */
export class CreditGate {
  private credit = 0;
  /** Sizes of the items sent and not yet acknowledged, oldest first. */
  private readonly sizes: number[] = [];
  private head = 0;
  private bytes = 0;
  private waiter: (() => void) | undefined;
  private closed = false;

  constructor(private readonly maxBytes: number = STREAM_WINDOW.bytes) {}

  /** True when one more item may go now. */
  get canSend(): boolean {
    return this.closed || (this.credit > 0 && this.bytes < this.maxBytes);
  }

  /** Items sent and not yet acknowledged. */
  get unacknowledged(): number {
    return this.sizes.length - this.head;
  }

  /** Resolves once {@link CreditGate.canSend} (or the gate closed). */
  ready(): Promise<void> {
    if (this.canSend) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** The peer granted `n` credits; those beyond the first window acknowledge items in order. */
  grant(n: number): void {
    this.credit += n;
    const acked = Math.min(n, this.sizes.length - this.head);
    for (let i = 0; i < acked; i++) this.bytes -= this.sizes[this.head++]!;
    if (this.head > 1024 && this.head * 2 > this.sizes.length) {
      this.sizes.splice(0, this.head);
      this.head = 0;
    }
    this.wake();
  }

  /** One item of `size` bytes went out. */
  sent(size: number): void {
    this.credit--;
    this.sizes.push(size);
    this.bytes += size;
  }

  /** The stream ended: wake the producer so it sees that and stops. */
  close(): void {
    this.closed = true;
    this.wake();
  }

  private wake(): void {
    if (this.waiter !== undefined && this.canSend) {
      const resolve = this.waiter;
      this.waiter = undefined;
      resolve();
    }
  }
}
