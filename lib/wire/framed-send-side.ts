/**
 * The send side of a FramedChannel (framed-channel.ts, which extends it): envelopes encoded into the outbox, the
 * end-of-burst flush, backpressure (`maxBufferedBytes`, a backlog observer, 'drain') and the backlog waiters. Split
 * out for the file cap as a base class, so a send costs what it did: the same object, no extra call or object.
 * @module
 */
import { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { bulkheadError, type BulkheadError } from '../errors.js';
import { encodeEnvelopeBody, encodeEnvelopeChunks, placePlainEnvelope, type Envelope } from './envelope.js';
import { DEFAULT_MAX_FRAME_BYTES, FRAME_HEADER_BYTES } from './frame-decoder.js';
import { plainNext, plainSlab } from './plain-encode.js';
import { keepForSending } from './body-pool.js';
import { Outbox } from './outbox.js';
import type { BacklogObserver, FramedChannelOptions } from './channel-options.js';
import { BacklogWaiters } from './backlog-waiters.js';
import { keptBody } from './socket-reads.js';

/** What onBacklogAtMost writes to learn when the writes before it completed. */
const NO_BYTES = Buffer.alloc(0);

/** Resolved: a flush scheduled with its then() runs as a microtask. */
const FLUSH_SOON = Promise.resolve();

/** Frames after which a burst is written at once rather than once the continuations already queued have run. */
const EAGER_FLUSH_FRAMES = 64;

/** The sending half of a FramedChannel (framed-channel.ts), which is what to use. */
export abstract class FramedSendSide {
  /** Largest frame body either end accepts, in bytes. */
  readonly maxFrameBytes: number;
  private readonly maxBufferedBytes: number | undefined;
  /** The channel reported its close (framed-channel.ts reportClosed). */
  protected closedReported = false;
  /** The channel ended its side of the stream. */
  protected ended = false;
  /** Frames sent by one burst, written together by {@link FramedSendSide.flush} (outbox.ts: headers written in place, one copy per small frame). */
  private readonly outbox = new Outbox();
  private flushScheduled = false;
  /** A 'drain' listener will flush the outbox. */
  private drainWaiting = false;
  /** Paces a slow peer (backlog-watch.ts), if the owner set one. */
  private backlogObserver: BacklogObserver | undefined;
  /** Bytes of every frame queued since the channel opened (what the peer took is this minus writableLength). */
  private queuedTotal = 0;
  /** Who waits for the backlog to fall ({@link FramedSendSide.onBacklogAtMost}). */
  private readonly backlogWaiters = new BacklogWaiters();
  /** An empty write with {@link FramedSendSide.wrote} is queued for waiters that came while writes were in flight. */
  private completionAsked = false;

  constructor(readonly stream: Duplex, options: FramedChannelOptions = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.maxBufferedBytes = options.maxBufferedBytes;
  }

  /** Sends a best-effort connection-level error, then destroys the stream (framed-channel.ts). */
  abstract fail(error: BulkheadError): void;

  /** True until the stream is closed or ending. */
  get open(): boolean {
    return !this.closedReported && !this.ended && !this.stream.destroyed;
  }

  /**
   * Tells `observer` whenever a frame is queued with more than its mark
   * waiting (undefined: nobody). Used by `BacklogWatch` (backlog-watch.ts).
   */
  observeBacklog(observer: BacklogObserver | undefined): void {
    this.backlogObserver = observer;
  }

  /**
   * Calls `fn` once, at the first moment at most `bytes` wait for the peer
   * (see {@link FramedSendSide.writableLength}), or when the channel closes.
   * The backlog only falls when a write completes, so that is where it is
   * looked at: while somebody waits, the last write of each flush carries a
   * completion callback. No polling, no 'drain' needed (a stream whose
   * high-water mark is above `bytes` never emits one).
   * The caller looks first: `fn` is not called for a backlog that is already
   * small and has no write in flight.
   */
  onBacklogAtMost(bytes: number, fn: () => void): void {
    if (this.closedReported) {
      fn();
      return;
    }
    this.backlogWaiters.add(bytes, fn);
    // Writes made while nobody waited carry no callback. If the stream still holds some and the
    // outbox nothing (whose flush would carry one), an empty write queued behind them tells us
    // when they completed: a stream completes its writes in order.
    if (!this.completionAsked && this.outbox.count === 0 && this.stream.writableLength > 0 && this.open && !this.stream.writableEnded) {
      this.completionAsked = true;
      this.stream.write(NO_BYTES, this.wrote);
    }
  }

  /** A write completed (or the channel closed): wakes the waiters whose mark the backlog is at or under now. */
  protected readonly wrote = (): void => {
    this.completionAsked = false;
    if (this.backlogWaiters.any) this.backlogWaiters.wake(this.writableLength, this.closedReported);
  };

  /** Bytes the stream took from this channel so far (handed on towards the peer): a slow reader's progress. */
  get bytesTaken(): number {
    return this.queuedTotal - this.writableLength;
  }

  /** Bytes queued for writing, in our outbox and the stream's buffer (backpressure signal). */
  get writableLength(): number {
    return this.stream.writableLength + this.outbox.bytes;
  }

  /**
   * Sends one envelope. Returns false when the stream's buffer is over its
   * high-water mark (the caller should wait for 'drain' before sending more);
   * silently does nothing once the channel is closed. `noLargeBytes`: the
   * caller's describeNonPlain tally found no large byte string in the
   * envelope (see encodeEnvelopeChunks), so encoding skips the search for one.
   * @throws BulkheadError `ERR_FRAME_TOO_LARGE` when the encoded message exceeds
   *   maxFrameBytes (both ends use the same limit); nothing is written, so
   *   only this message fails, not the connection.
   */
  send(envelope: Envelope, noLargeBytes = false): boolean {
    return this.write(envelope, noLargeBytes) > 0;
  }

  /**
   * Like {@link FramedSendSide.send}, but returns the frame body's length in
   * bytes (what stream flow control counts), 0 when the channel is closed.
   * @throws BulkheadError `ERR_FRAME_TOO_LARGE` as send() does
   */
  sendSized(envelope: Envelope, noLargeBytes = false): number {
    return Math.abs(this.write(envelope, noLargeBytes));
  }

  /** Body length when written and under the high-water mark, its negative when over, 0 when closed. */
  private write(envelope: Envelope, noLargeBytes: boolean): number {
    if (!this.open) return 0;
    const placed = noLargeBytes ? placePlainEnvelope(envelope) : -1;
    if (placed >= 0) {
      // A plain frame in plain-encode.ts's slab, queued by its place: a burst's frames leave as one view (outbox.ts).
      const length = this.withinLimit(envelope, placed - FRAME_HEADER_BYTES);
      return this.enqueue(this.outbox.pushSlabFrame(plainSlab, plainNext - placed, plainNext)) ? length : -length;
    }
    if (noLargeBytes) {
      const body = encodeEnvelopeBody(envelope);
      const length = this.withinLimit(envelope, body.length);
      return this.enqueue(this.outbox.pushBody(body)) ? length : -length;
    }
    const { chunks, bodyLength, headerless } = encodeEnvelopeChunks(envelope);
    this.withinLimit(envelope, bodyLength);
    let ok = true;
    if (headerless === true) ok = this.enqueue(this.outbox.pushBody(chunks[0]!));
    else for (const chunk of chunks) ok = this.enqueue(this.outbox.pushRaw(chunk));
    return ok ? bodyLength : -bodyLength;
  }

  private withinLimit(envelope: Envelope, bodyLength: number): number {
    if (bodyLength <= this.maxFrameBytes) return bodyLength;
    throw bulkheadError('ERR_FRAME_TOO_LARGE', `A ${envelope.kind} message encodes to ${bodyLength} bytes; the frame limit is ${this.maxFrameBytes}. Send less data per message or raise maxFrameBytes.`, { declared: bodyLength, limit: this.maxFrameBytes });
  }

  /**
   * Forwards a frame body that was received elsewhere, byte for byte: the
   * broker routes payloads this way without decoding and re-encoding them.
   * `body` is queued as it is (not copied), so it must not change until
   * written; a body that lies in the shared read buffer (another channel's
   * handler got it as a view, see ChannelHandler.envelope) is copied first.
   */
  sendRaw(body: Buffer): boolean {
    if (!this.open) return false;
    const kept = keptBody(body);
    keepForSending(kept);
    return this.enqueue(this.outbox.pushBody(kept));
  }

  /**
   * Sends a frame the caller already encoded and checked (length prefix
   * included, body within maxFrameBytes), without copying it again.
   */
  sendFrame(frame: Buffer): boolean {
    if (!this.open) return false;
    return this.enqueue(this.outbox.pushRaw(frame));
  }

  /** Accounts for `bytes` just queued in the outbox and schedules their write. */
  private enqueue(bytes: number): boolean {
    this.queuedTotal += bytes;
    const waiting = this.writableLength;
    if (this.maxBufferedBytes !== undefined && waiting > this.maxBufferedBytes) {
      // A peer that stopped reading: tell it why and hang up rather than hold its backlog.
      this.outbox.clear();
      this.fail(bulkheadError('ERR_BACKPRESSURE', `The peer stopped reading: ${waiting} bytes were waiting for it (limit ${this.maxBufferedBytes}), so the connection was closed. Read replies and events as they come.`, { buffered: waiting, limit: this.maxBufferedBytes }));
      return false;
    }
    if (this.backlogObserver !== undefined && waiting > this.backlogObserver.highWaterBytes) this.backlogObserver.over();
    if (this.outbox.count >= EAGER_FLUSH_FRAMES && !this.drainWaiting) {
      // A long burst: hand the peer what we have now, so it works while we produce the rest.
      this.flush();
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      // A microtask queued behind the continuations already queued: the frames a burst of them sends (replies
      // resolved by one read) leave in a single write. Not process.nextTick: Node enters JavaScript again
      // from C++ to run the ticks after a callback, while its microtasks run in the checkpoint it makes anyway.
      void FLUSH_SOON.then(this.flushScheduledFrames);
    }
    return this.writableLength < this.stream.writableHighWaterMark;
  }

  private readonly flushScheduledFrames = (): void => this.flush();

  /**
   * Writes the outbox. While the stream is full (a peer that reads slowly or
   * not at all), frames wait here instead, compacted so that a backlog of many
   * small frames costs its bytes, not a heap object per frame; 'drain' writes
   * them. `force` writes now regardless (before closing).
   */
  protected readonly flush = (force = false): void => {
    this.flushScheduled = false;
    if (this.outbox.count === 0 || this.stream.destroyed) return;
    if (!force && this.stream.writableNeedDrain) {
      this.outbox.compact();
      if (!this.drainWaiting) {
        this.drainWaiting = true;
        this.stream.once('drain', () => {
          this.drainWaiting = false;
          this.flush();
        });
      }
      return;
    }
    // Writes still in the stream: these wait behind them, so no view of a shared encoder buffer goes with them (outbox.ts).
    const buffers = this.outbox.take(this.stream.writableLength > 0);
    // The last write's completion is when the backlog fell: onBacklogAtMost's waiters look then. With
    // nobody waiting no callback: Node then makes no object and schedules no tick per write.
    const done = this.backlogWaiters.any ? this.wrote : undefined;
    if (buffers.length === 1) {
      this.stream.write(buffers[0], done);
      return;
    }
    // Joined runs and big buffers (outbox.ts): one writev.
    this.stream.cork();
    const last = buffers.length - 1;
    for (let i = 0; i < last; i++) this.stream.write(buffers[i]);
    this.stream.write(buffers[last], done);
    this.stream.uncork();
  };}
