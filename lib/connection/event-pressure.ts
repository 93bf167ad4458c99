/**
 * Backpressure for events a service emits (`ctx.emit()`, the broadcast
 * `emit()`): events are not tied to credits, so they are paced by the
 * channel itself. emit() returns a promise that resolves at once while less
 * than {@link EVENT_BACKLOG}.highWaterBytes wait to be written, and otherwise
 * once the peer has read enough; an emitter that awaits it goes at its
 * reader's pace. One that does not await is stopped by a hard bound,
 * {@link EVENT_BACKLOG}.maxBytes, with ERR_BACKPRESSURE.
 * @module
 */
import { bulkheadError } from '../errors.js';
import type { BacklogWatch } from '../wire/backlog-watch.js';
import type { FramedChannel } from '../wire/framed-channel.js';

/** How much an emitting service may leave waiting for its reader. */
export const EVENT_BACKLOG = {
  /** Bytes waiting to be written above which emit()'s promise waits for the reader. */
  highWaterBytes: 1024 * 1024,
  /** Bytes waiting above which emit() throws ERR_BACKPRESSURE instead of buffering more. */
  maxBytes: 32 * 1024 * 1024,
} as const;

const RESOLVED = Promise.resolve();

/** Paces one channel's events. */
export class EventPressure {
  private waiting: { promise: Promise<void>; resolve(): void } | undefined;
  private listening = false;

  /** `watch`: a direct client's pacing (backlog-watch.ts); while it holds the channel, emit() waits for it. */
  constructor(private readonly channel: FramedChannel, private readonly watch?: BacklogWatch) {}

  /**
   * Call before sending an event.
   * @throws BulkheadError `ERR_BACKPRESSURE` past the hard bound
   */
  check(name: string): void {
    const waiting = this.channel.writableLength;
    if (waiting > EVENT_BACKLOG.maxBytes) {
      throw bulkheadError('ERR_BACKPRESSURE', `Event "${name}" not sent: ${waiting} bytes of events are already waiting for a reader (limit ${EVENT_BACKLOG.maxBytes}). Await emit() so the helper goes at its reader's pace.`, { buffered: waiting, limit: EVENT_BACKLOG.maxBytes, event: name });
    }
  }

  /** After sending: resolves now when the backlog is small, else once it shrank below the high-water mark. */
  room(): Promise<void> {
    if (this.watch?.held === true) return this.watch.room();
    if (this.channel.writableLength < EVENT_BACKLOG.highWaterBytes || !this.channel.open) return RESOLVED;
    if (this.waiting === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.waiting = { promise, resolve };
      // The backlog may be in the channel's outbox, and a stream that takes it whole on the next
      // tick never needs a 'drain': look again once it was flushed.
      setImmediate(this.recheck);
    }
    if (!this.listening) {
      this.listening = true;
      // The channel's own drain listener flushes its outbox first; check after it ran.
      this.channel.stream.on('drain', () => process.nextTick(this.recheck));
    }
    return this.waiting.promise;
  }

  /** The channel closed: nobody will read, so nobody waits. */
  close(): void {
    this.release();
  }

  private readonly recheck = (): void => {
    if (this.channel.writableLength < EVENT_BACKLOG.highWaterBytes || !this.channel.open) this.release();
  };

  private release(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.resolve();
  }
}
