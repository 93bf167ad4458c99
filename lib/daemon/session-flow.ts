/**
 * Backpressure from a daemon client back to its service's helper.
 *
 * The daemon reads a helper as fast as the helper writes and fans replies and
 * events out to its clients. Without this, a client that reads more slowly
 * than the helper writes (a burst of events, a busy client) piles up a backlog
 * in the daemon until the hard bound cuts it off, although it is reading. So,
 * while one client's socket holds more than a high-water mark of unread
 * frames, the daemon stops reading that helper: the helper's writes wait, its
 * `emit()` promise waits, and the burst goes at the client's pace. Once the
 * client's backlog falls below half the mark, the helper is read again.
 *
 * A client that, while above the mark, reads less than half of it in
 * `stallMs` has stopped reading: it is cut off with ERR_BACKPRESSURE and the
 * helper is read again, so a stalled
 * client delays the service's other clients by at most `stallMs`. The
 * channel's own hard bound (`maxBufferedBytes`) still holds meanwhile: what the
 * daemon had already read from the helper when it paused is at most one read
 * chunk plus one frame.
 *
 * The mark, the stall and the release are the generic {@link BacklogWatch}
 * (a direct channel's helper paces its client with the same one); this file
 * adds what holding back means here: pausing the helper's stream, which
 * several clients may hold at once.
 * @module
 */
import type { Duplex } from 'node:stream';
import { BacklogWatch } from '../wire/backlog-watch.js';
import type { FramedChannel } from '../wire/framed-channel.js';

/** How many clients hold each helper stream paused; the stream resumes when the last lets go. */
const holders = new WeakMap<Duplex, number>();

function hold(source: Duplex): void {
  const count = holders.get(source) ?? 0;
  holders.set(source, count + 1);
  if (count === 0) source.pause();
}

function release(source: Duplex): void {
  const count = holders.get(source) ?? 0;
  if (count > 1) {
    holders.set(source, count - 1);
    return;
  }
  holders.delete(source);
  if (!source.destroyed) source.resume();
}

/** What a {@link SessionFlow} needs. */
export interface SessionFlowOptions {
  /** The client's channel. */
  channel: FramedChannel;
  /** The helper stream the client's frames come from now (it changes when the helper is relaunched). */
  source: () => Duplex | undefined;
  /** Backlog in bytes above which the helper is held back. */
  highWaterBytes: number;
  /** How long the backlog may stay above the mark. */
  stallMs: number;
  /** The client stopped reading: cut it off. `waiting` is its backlog in bytes. */
  stalled: (waiting: number, stallMs: number) => void;
}

/** Holds back one client's helper while the client's backlog is high (the channel tells it after each frame). */
export class SessionFlow {
  private held: Duplex | undefined;
  private readonly watch: BacklogWatch;

  constructor(options: SessionFlowOptions) {
    this.watch = new BacklogWatch(options.channel, {
      highWaterBytes: options.highWaterBytes,
      stallMs: options.stallMs,
      hold: () => {
        const source = options.source();
        if (source === undefined || source.destroyed) return;
        this.held = source;
        hold(source);
      },
      release: () => {
        const source = this.held;
        this.held = undefined;
        if (source !== undefined) release(source);
      },
      stalled: options.stalled,
    });
  }

  /** Lets go of the helper (the session ended). Idempotent. */
  dispose(): void {
    this.watch.dispose();
  }
}
