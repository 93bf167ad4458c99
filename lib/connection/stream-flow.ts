/**
 * Credit-based flow control for stream items (HTTP/2 and gRPC windows, counted
 * in items with a byte cap). The receiving end of one direction of a stream
 * holds an {@link ItemInbox}: it opens a window of {@link STREAM_WINDOW}.items
 * credits and, as its consumer takes items, gives them back in `credit`
 * messages. The sending end holds a {@link CreditGate}: it advances its
 * producer only while it holds a credit and has less than
 * {@link STREAM_WINDOW}.bytes unacknowledged. The receiver enforces both
 * (docs/wire.md, "Streams"): one direction of one stream never has more than
 * `items` items, nor more than `bytes` plus one item, between producer and
 * consumer, whatever the speed difference and whatever the peer does.
 * @module
 */
import { bulkheadError, type BulkheadError } from '../errors.js';

/** Flow-control window of one direction of one stream. */
export const STREAM_WINDOW = {
  /** Items the receiver lets the sender have outstanding (its first credit). */
  items: 256,
  /**
   * Bytes (frame bodies) the sender keeps unacknowledged at most, plus one
   * item. A wire constant: receivers cut off a sender that goes past
   * {@link RECEIVER_BYTES_FACTOR} times it.
   */
  bytes: 4 * 1024 * 1024,
} as const;

/**
 * A receiver refuses an item only once the items it received and has not
 * credited back hold this many times the byte window. The slack is for hops
 * that re-encode frames (the broker's routes between helpers give items the
 * route's call id, and a half-precision float comes out as a double, up to
 * 3× the bytes), so a sender that keeps the window is never refused.
 */
export const RECEIVER_BYTES_FACTOR = 4;

/** Why {@link ItemInbox.push} refused an item: the peer ignored flow control. */
export type ItemRefusal = 'credit' | 'bytes';

/** What a refusal means, for the error that cuts the peer off. */
export function refusalText(refusal: ItemRefusal): string {
  return refusal === 'credit'
    ? 'without credit'
    : `while the items it sent and that were not credited back already held ${RECEIVER_BYTES_FACTOR} × ${STREAM_WINDOW.bytes} bytes (${RECEIVER_BYTES_FACTOR} times the stream byte window)`;
}

/**
 * Receiving side of one direction of a stream: a queue of items the peer
 * sent, consumed by one reader, with the credit it gives back.
 */
export class ItemInbox {
  private readonly queue: unknown[] = [];
  /** Frame body sizes of the queued items, in queue order. */
  private readonly queuedSizes: number[] = [];
  private waiter: { resolve(r: IteratorResult<unknown>): void; reject(e: BulkheadError): void } | undefined;
  private done = false;
  private error: BulkheadError | undefined;
  /** Items taken by the consumer and not yet given back as credit. */
  private consumed = 0;
  /** Their frame body bytes. */
  private consumedBytes = 0;
  /** Credits the peer holds: granted and not yet used by an item. */
  private outstanding = 0;
  /** Frame body bytes of the items received and not yet credited back (as they arrived here). */
  private unacknowledgedBytes = 0;
  /** Items received so far (the next item's index). */
  received = 0;

  /**
   * @param grant - sends a credit message for `n` items
   * @param window - the first credit, in items
   * @param maxBytes - the sender's byte cap (this end refuses items past {@link RECEIVER_BYTES_FACTOR} times it)
   */
  constructor(
    private readonly grant: (n: number) => void,
    private readonly window: number = STREAM_WINDOW.items,
    private readonly maxBytes: number = STREAM_WINDOW.bytes,
  ) {}

  /** Opens the window: the peer may send `window` items. */
  open(): void {
    this.outstanding = this.window;
    this.grant(this.window);
  }

  /** Items waiting for the consumer. */
  get size(): number {
    return this.queue.length;
  }

  /** Frame body bytes received and not yet credited back (under `RECEIVER_BYTES_FACTOR × maxBytes` plus one item). */
  get bytesHeld(): number {
    return this.unacknowledgedBytes;
  }

  /** True once the stream ended (cleanly or not) and the queue is empty. */
  get closed(): boolean {
    return this.done && this.queue.length === 0;
  }

  /**
   * One item from the peer, whose frame body was `size` bytes. Returns why it
   * is refused when the peer ignored flow control — sent it without a credit,
   * or while the items it sent and that were not credited back already held
   * {@link RECEIVER_BYTES_FACTOR} × `maxBytes` — and undefined when it is
   * taken. The owner fails the stream on a refusal.
   */
  push(value: unknown, size = 0): ItemRefusal | undefined {
    if (this.done) return undefined; // late item after the end: dropped
    if (this.outstanding <= 0) return 'credit';
    // Our credits reach the sender later, so its count is never below ours but for re-encoding hops (the factor).
    if (this.unacknowledgedBytes >= this.maxBytes * RECEIVER_BYTES_FACTOR) return 'bytes';
    this.outstanding--;
    this.received++;
    this.unacknowledgedBytes += size;
    const waiter = this.waiter;
    if (waiter !== undefined) {
      this.waiter = undefined;
      this.took(size);
      waiter.resolve({ value, done: false });
    } else {
      this.queue.push(value);
      this.queuedSizes.push(size);
    }
    return undefined;
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
    this.queuedSizes.length = 0;
    this.finish(error);
  }

  /** The next item, once there is one; rejects with the stream's error at its end. */
  next(): Promise<IteratorResult<unknown>> {
    if (this.queue.length > 0) {
      const value = this.queue.shift();
      this.took(this.queuedSizes.shift() ?? 0);
      return Promise.resolve({ value, done: false });
    }
    if (this.done) return this.error !== undefined ? Promise.reject(this.error) : Promise.resolve({ value: undefined, done: true });
    if (this.waiter !== undefined) return Promise.reject(bulkheadError('ERR_INVALID_OPTION', 'A stream is read by one consumer at a time: await each next() before the next one.'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /**
   * The consumer took one item of `size` bytes. Credit goes back in batches
   * of half a window of items, as soon as a quarter of the byte cap was taken
   * (large items: the sender refills while the consumer still has some queued,
   * as HTTP/2's window updates do), or at once when the queue ran dry (the
   * consumer is about to wait).
   */
  private took(size: number): void {
    this.consumed++;
    this.consumedBytes += size;
    if (this.done) return;
    if (this.consumed >= this.window / 2 || this.consumedBytes >= this.maxBytes / 4 || this.queue.length === 0) {
      const n = this.consumed;
      this.unacknowledgedBytes -= this.consumedBytes;
      this.consumed = 0;
      this.consumedBytes = 0;
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
