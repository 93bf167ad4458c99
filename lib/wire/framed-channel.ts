/**
 * A framed, envelope-level view of one byte stream (the fd-3 socketpair, or a
 * Unix socket in daemon mode). It owns the stream: a frame or envelope error
 * makes it send a best-effort `error` (id 0) to the peer and destroy the stream.
 * @module
 */
import type { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { bulkheadError, type BulkheadError } from '../errors.js';
import { decodeEnvelope, encodeEnvelope, type Envelope } from './envelope.js';
import { FrameDecoder } from './frame-decoder.js';
import { releaseIfUnviewed } from './body-pool.js';
import type { FramedChannelOptions } from './channel-options.js';
import { FramedSendSide } from './framed-send-side.js';
import { asFrameError } from './frame-error.js';
import { readFramesIntoOwnBuffers, readWaitingNow } from './socket-reads.js';
import { sharedRead } from './shared-read-buffers.js';

export { untrustedPeerBacklog, type BacklogObserver, type FramedChannelOptions } from './channel-options.js';

/** Receives what arrives on a channel. Set once by the channel's owner. */
export interface ChannelHandler {
  /**
   * One decoded envelope, with the frame body it came from (for forwarding without re-encoding).
   * `body` may be a view of a read buffer that the next read overwrites: it is valid during this call;
   * to keep it longer, keep `keptBody(body)` (socket-reads.ts); `sendRaw` does that itself. Never keep `body` itself: one of ≥ 16 KiB that held no byte string goes back to the pool when this call returns (body-pool.ts) and would read as empty.
   */
  envelope(envelope: Envelope, body: Buffer): void;
  /** Bytes arrived (once per read, or when the kernel completed a large body, before the envelopes they complete): a sign of life that costs nothing per frame. */
  read?(): void;
  /** The channel closed; `error` says why when it was not a clean end. Called once. */
  closed(error: BulkheadError | undefined): void;
}

/**
 * Envelope-level duplex over a byte stream. This file is the receive side and the close; sending (send, sendRaw,
 * sendFrame, the flush, backpressure, onBacklogAtMost) is {@link FramedSendSide}'s (framed-send-side.ts).
 */
export class FramedChannel extends FramedSendSide {
  private readonly decoder: FrameDecoder;
  private handler: ChannelHandler | undefined;
  private ownBuffers = false;

  constructor(stream: Duplex, options: FramedChannelOptions = {}) {
    super(stream, options);
    this.decoder = new FrameDecoder(this.maxFrameBytes);
  }

  /**
   * Installs the receiver and starts reading. Nothing is read before this, so no envelope can arrive without a handler.
   * The handler keeps an envelope's `body` only through `keptBody`/`sendRaw`: see {@link ChannelHandler.envelope}.
   */
  attach(handler: ChannelHandler): void {
    if (this.handler !== undefined) throw new Error('FramedChannel.attach called twice');
    this.handler = handler;
    const stream = this.stream;
    // A socket reads into our buffers (no allocation per read, large bodies filled by the kernel); other streams emit 'data'.
    const reads = { chunk: (buffer: Buffer, n: number, sized: boolean) => this.onData(buffer, !sized, n, sized), body: (body: Buffer) => this.closedReported || this.deliverRead(body), failed: (err: unknown) => this.closedReported || this.fail(asFrameError(err)) };
    this.ownBuffers = readFramesIntoOwnBuffers(stream, this.decoder, reads);
    if (this.ownBuffers) {
      // What a handshake or a warm-up left in the stream's buffer comes first.
      for (let chunk = stream.read() as Buffer | null; chunk !== null && !this.closedReported; chunk = stream.read() as Buffer | null) this.onData(chunk);
    } else {
      stream.on('data', (chunk: Buffer) => this.onData(chunk));
    }
    // A stream handed over after a handshake was paused explicitly; 'data' alone would not resume it.
    stream.resume();
    stream.on('error', (err: NodeJS.ErrnoException) => {
      // EPIPE/ECONNRESET are how a dead peer looks; report them as a plain close.
      this.reportClosed(err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : bulkheadError('ERR_INTERRUPTED', `Channel failed: ${err.message}`, { errno: err.code }));
    });
    stream.on('close', () => this.reportClosed(undefined));
    // The peer closed its side; we have nothing more to say either.
    stream.on('end', () => stream.end());
    if (stream.destroyed) this.reportClosed(undefined);
  }

  /**
   * Reads what the socket's descriptor `fd` holds right now, synchronously, and delivers it as a read would: a cold
   * helper's first read, before the event loop's first turn ({@link readWaitingNow}). Only while this channel reads
   * into its own buffers and before libuv read anything from the socket.
   */
  readWaiting(fd: number): void {
    if (!this.ownBuffers || this.closedReported) return;
    const buffer = sharedRead();
    const n = readWaitingNow(fd, buffer);
    if (n > 0) this.onData(buffer, true, n);
  }

  /** True when the stream is a socket that reads into this channel's buffers (socket-reads.ts), false when it emits 'data'. */
  get readsIntoOwnBuffers(): boolean { return this.ownBuffers; }

  /**
   * Sends goodbye but keeps both directions open: the peer finishes its work,
   * answers, and closes. (The broker stops a helper this way.)
   */
  sayGoodbye(reason: string): void {
    if (this.open) this.send({ kind: 'goodbye', reason });
  }

  /** Sends goodbye and ends the stream; the peer sees a clean close. */
  end(reason: string): void {
    if (!this.open) return;
    this.send({ kind: 'goodbye', reason });
    this.ended = true;
    this.flush(true);
    this.stream.end();
  }

  /** Sends a best-effort connection-level error, then destroys the stream. */
  fail(error: BulkheadError): void {
    if (this.open) {
      this.flush(true);
      this.stream.write(encodeEnvelope({ kind: 'error', id: 0, error: error.toJSON() }));
      this.ended = true;
      this.stream.end();
      // Give the error frame a chance to flush, but never wait on a peer that does not read.
      setImmediate(() => this.stream.destroy());
    }
    this.reportClosed(error);
  }

  /** Destroys the stream now. */
  destroy(): void {
    this.stream.destroy();
    this.reportClosed(undefined);
  }

  /**
   * The first `end` bytes of `chunk` arrived. `shared`: `chunk` is a read buffer that the next read overwrites (socket-reads.ts).
   * `own`: `chunk` is a sized read's fresh memory, which the decoder may keep collecting a body in (frame-decoder.ts).
   * Its bodies are not copied out: each is decoded from where it lies (a frame with byte strings, whose
   * values would be views of it, from a copy), and whoever keeps a body keeps `keptBody` of it (sendRaw does).
   */
  private onData(chunk: Buffer, shared = false, end = chunk.length, own = false): void {
    if (this.closedReported) return;
    this.handler!.read?.();
    let bodies: Buffer[];
    try {
      bodies = this.decoder.push(chunk, end, own);
    } catch (err) {
      this.fail(asFrameError(err));
      return;
    }
    this.deliver(bodies, shared);
  }

  /** A body the kernel filled: its last read. */
  private deliverRead(body: Buffer): void {
    this.handler!.read?.();
    this.deliver([body]);
  }

  private deliver(bodies: Buffer[], shared = false): void {
    for (const body of bodies) {
      let envelope: Envelope;
      try {
        // `shared`: the body may be a view of the shared buffer (a frame spread over reads has a body of its own).
        envelope = decodeEnvelope(body, shared);
      } catch (err) {
        this.fail(asFrameError(err));
        return;
      }
      this.handler!.envelope(envelope, body);
      releaseIfUnviewed(body); // decoded into fresh values, kept by nobody: back to the pool (body-pool.ts)
      if (this.closedReported) return; // the handler may have closed the channel
    }
    // An oversize header that followed these frames in the same chunk.
    const oversize = this.decoder.error;
    if (oversize !== undefined) this.fail(oversize);
  }

  private reportClosed(error: BulkheadError | undefined): void {
    if (this.closedReported) return;
    this.closedReported = true;
    // Nobody will read: whoever waits for the backlog to fall waits no more (first: a throwing handler must not strand them).
    this.wrote();
    this.handler?.closed(error);
  }
}
