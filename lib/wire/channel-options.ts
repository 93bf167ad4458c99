/**
 * The options of a FramedChannel and what it tells a backlog watch (split from
 * framed-channel.ts, which re-exports them, to keep it under the file cap).
 * @module
 */
/** Options of a FramedChannel (framed-channel.ts). */
export interface FramedChannelOptions {
  /**
   * Largest frame body accepted from the peer, in bytes.
   * @default 16 MiB (DEFAULT_MAX_FRAME_BYTES, frame-decoder.ts)
   */
  maxFrameBytes?: number;
  /**
   * Bytes that may wait for a peer that is not reading. Past this, the channel
   * fails with `ERR_BACKPRESSURE` (the peer is told why, then cut off) instead
   * of buffering without bound. Set it where the peer is untrusted (daemon
   * clients, a helper's outbound side).
   * @default unbounded (the owner bounds what it sends, e.g. maxInFlight)
   */
  maxBufferedBytes?: number;
}

/**
 * The backlog an untrusted peer may leave unread (`maxBufferedBytes`): two
 * whole frames plus 1 MiB of small ones, so one large answer never trips it.
 */
export function untrustedPeerBacklog(maxFrameBytes: number): number {
  return 2 * maxFrameBytes + 1024 * 1024;
}

/** Told when a frame leaves more than `highWaterBytes` waiting for the peer (a `BacklogWatch`, backlog-watch.ts). */
export interface BacklogObserver {
  /** Backlog in bytes above which {@link BacklogObserver.over} is called. */
  readonly highWaterBytes: number;
  /** A frame was queued with more than the mark waiting. */
  over(): void;
}
