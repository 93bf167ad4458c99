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
      // The channel says when a write brought the backlog under the mark (or when it closed).
      this.channel.onBacklogAtMost(EVENT_BACKLOG.highWaterBytes - 1, this.release);
    }
    return this.waiting.promise;
  }

  /** The channel closed: nobody will read, so nobody waits. */
  close(): void {
    this.release();
  }

  private readonly release = (): void => {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.resolve();
  };
}
