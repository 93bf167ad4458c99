/**
 * Pacing for a reader that is slower than its writer, on one channel.
 *
 * A writer (the daemon routing a helper's answers, or a helper answering a
 * direct client) may produce faster than its peer reads. Cutting the peer off
 * as soon as its backlog passes a hard bound punishes a reader that is merely
 * slow; buffering without bound lets a reader that stopped grow the writer's
 * memory. So, while more than a high-water mark waits for the peer, the
 * channel is *held*: the owner holds back what feeds it ({@link BacklogWatchOptions.hold},
 * e.g. stops reading the helper) and promise-level producers wait
 * ({@link BacklogWatch.room}, which `emit()` awaits). Once the backlog falls
 * below half the mark, it is released. A peer that, while held, reads less
 * than half the mark in `stallMs` has stopped reading (a peer that reads
 * slowly but steadily through a deep backlog has not): the watch calls
 * {@link BacklogWatchOptions.stalled}, which cuts it off with ERR_BACKPRESSURE
 * ({@link stalledReaderError}), so a stalled peer delays its writer by at most `stallMs`.
 * The channel's hard bound (`maxBufferedBytes`) still holds meanwhile.
 *
 * The channel tells the watch when a frame left its backlog above the mark
 * ({@link FramedChannel.observeBacklog}); below the mark a send costs one comparison.
 * It also tells it when the backlog fell below half the mark
 * ({@link FramedChannel.onBacklogAtMost}, at the completion of a write), so a
 * held channel costs nothing until its peer reads.
 * @module
 */
import { bulkheadError, type BulkheadError } from '../errors.js';
import { untrustedPeerBacklog, type BacklogObserver, type FramedChannel } from './framed-channel.js';

/** How long a client may keep its backlog above the high-water mark before it is cut off, in ms. */
export const CLIENT_STALL_MS = 2000;

/**
 * The backlog above which a daemon client holds back its writer (the daemon
 * routing to it, or the helper serving its direct channel): half the hard
 * bound of an untrusted peer's backlog ({@link untrustedPeerBacklog}), at most 512 KiB.
 */
export function clientHighWater(maxFrameBytes: number): number {
  return Math.min(512 * 1024, Math.floor(untrustedPeerBacklog(maxFrameBytes) / 2));
}

/** The error a stalled reader is cut off with (the same words on the routed and the direct path). */
export function stalledReaderError(waiting: number, stallMs: number, highWaterBytes: number): BulkheadError {
  return bulkheadError('ERR_BACKPRESSURE', `The client stopped reading: ${waiting} bytes have waited for it for ${stallMs} ms, so the connection was closed. Read replies and events as they come.`, { buffered: waiting, limit: highWaterBytes });
}

/** What a {@link BacklogWatch} does. */
export interface BacklogWatchOptions {
  /** Backlog in bytes above which the channel is held. */
  highWaterBytes: number;
  /** How long the backlog may stay above the mark before the peer counts as stalled, in ms. */
  stallMs: number;
  /** The backlog passed the mark: hold back what feeds the channel. @default nothing (producers await {@link BacklogWatch.room}) */
  hold?(): void;
  /** The backlog fell below half the mark, the channel closed, or the peer stalled: let go again. Called once per hold. */
  release?(): void;
  /** The peer read less than half the mark in `stallMs` while `waiting` bytes waited: cut it off. Called after release. */
  stalled(waiting: number, stallMs: number): void;
  /** The timers the stall windows run on (tests pass their own). @default Node's */
  timers?: WatchTimers;
}

/** The timer functions a {@link BacklogWatch} uses. */
export interface WatchTimers {
  /** Calls `fn` once after `ms`: the end of a stall window. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels what setTimeout returned. */
  clearTimeout(handle: unknown): void;
  /** Calls `fn` every `ms`: a progress sample. */
  setInterval(fn: () => void, ms: number): unknown;
  /** Cancels what setInterval returned. */
  clearInterval(handle: unknown): void;
}

const NODE_TIMERS: WatchTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
};

const RESOLVED = Promise.resolve();

/** How often per stall window a held channel's progress is sampled. */
const SAMPLES_PER_WINDOW = 8;

/** Bytes libuv still has to write to the kernel for the channel's socket; undefined for other streams. */
function kernelQueue(channel: FramedChannel): number | undefined {
  const handle = (channel.stream as { _handle?: { writeQueueSize?: unknown } | null })._handle;
  const size = handle?.writeQueueSize;
  return typeof size === 'number' ? size : undefined;
}

/** Holds one channel's writer back while its peer's backlog is high; see the module docs. */
export class BacklogWatch implements BacklogObserver {
  readonly highWaterBytes: number;
  private holding = false;
  private disposed = false;
  private stallTimer: unknown;
  /** The channel will call {@link BacklogWatch.check} when the backlog falls (FramedChannel.onBacklogAtMost). */
  private releaseAwaited = false;
  private waiters: Array<() => void> = [];
  /** Bytes the peer read in the current stall window (a lower bound, see {@link BacklogWatch.sample}). */
  private progress = 0;
  private lastTaken = 0;
  private lastQueued = 0;
  private sampler: unknown;
  private readonly timers: WatchTimers;

  /** Starts watching `channel` (it tells the watch when its backlog passes the mark). */
  constructor(private readonly channel: FramedChannel, private readonly options: BacklogWatchOptions) {
    this.highWaterBytes = options.highWaterBytes;
    this.timers = options.timers ?? NODE_TIMERS;
    channel.observeBacklog(this);
  }

  /** True while the backlog is (or was last seen) above the mark and has not fallen below half of it. */
  get held(): boolean {
    return this.holding;
  }

  /** Resolves at once when not held, else once released (the backlog halved, the channel closed, or the peer was cut off). */
  room(): Promise<void> {
    if (!this.holding) return RESOLVED;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** @internal The channel queued a frame with more than the mark waiting. */
  over(): void {
    if (this.holding || this.disposed || this.channel.writableLength <= this.highWaterBytes) return;
    this.holding = true;
    this.options.hold?.();
    this.channel.stream.once('close', this.closed);
    this.startWindow();
    this.awaitRelease();
  }

  /** Gives the peer `stallMs` to read half the mark. */
  private startWindow(): void {
    this.progress = 0;
    this.lastTaken = this.channel.bytesTaken;
    this.lastQueued = kernelQueue(this.channel) ?? 0;
    this.stallTimer = this.timers.setTimeout(this.judge, this.options.stallMs);
    this.sampler ??= this.timers.setInterval(this.sample, Math.max(1, Math.floor(this.options.stallMs / SAMPLES_PER_WINDOW)));
  }

  /**
   * Adds what the peer read since the last sample. A stream write is only
   * acknowledged once all of it went to the kernel (a burst flushed after
   * 'drain' can be megabytes in one write), so for a socket the write in
   * flight is followed through libuv's queue: it shrinks as the peer reads.
   * Node runs one write at a time, so a write that completed since the last
   * sample finished what was queued then.
   */
  private readonly sample = (): void => {
    const taken = this.channel.bytesTaken;
    const queued = kernelQueue(this.channel);
    if (queued === undefined) this.progress += Math.max(0, taken - this.lastTaken);
    else if (taken > this.lastTaken) this.progress += this.lastQueued;
    else this.progress += Math.max(0, this.lastQueued - queued);
    this.lastTaken = taken;
    this.lastQueued = queued ?? 0;
  };

  private readonly judge = (): void => {
    this.stallTimer = undefined;
    if (!this.holding) return;
    this.sample();
    // Still reading, however deep its backlog: another window.
    if (this.progress >= this.highWaterBytes / 2) return this.startWindow();
    const waiting = this.channel.writableLength;
    this.letGo();
    this.options.stalled(waiting, this.options.stallMs);
  };

  /** Lets go and stops watching (the session ended). Idempotent. */
  dispose(): void {
    this.disposed = true;
    this.channel.observeBacklog(undefined);
    this.letGo();
  }

  private letGo(): void {
    if (this.stallTimer !== undefined) this.timers.clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    if (this.sampler !== undefined) this.timers.clearInterval(this.sampler);
    this.sampler = undefined;
    if (!this.holding) return;
    this.holding = false;
    this.channel.stream.off('close', this.closed);
    this.options.release?.();
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }

  private readonly closed = (): void => this.letGo();

  /** Asks the channel to say when the backlog fell to half the mark (once per hold; it also says so when it closes). */
  private awaitRelease(): void {
    if (this.releaseAwaited) return;
    this.releaseAwaited = true;
    this.channel.onBacklogAtMost(Math.floor(this.highWaterBytes / 2), this.check);
  }

  /** The channel's backlog is at most half the mark, or it closed. */
  private readonly check = (): void => {
    this.releaseAwaited = false;
    this.letGo();
  };
}
