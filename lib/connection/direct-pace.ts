/**
 * How a helper paces one direct client (docs/daemon.md, "Slow and stalled
 * clients"): the same rules the daemon applies to a routed client
 * (lib/daemon/session-flow.ts), applied by the helper itself since nobody
 * stands between them.
 *
 * - While more than {@link clientHighWater} bytes (the routed mark) wait for the client,
 *   the channel is held: the helper's `emit()` promises (per call and
 *   service-wide) wait, and resume once the backlog fell below half of it.
 *   Replies and events sent meanwhile queue in the helper.
 * - A client that, while above the mark, reads less than half of it in
 *   {@link CLIENT_STALL_MS} has stopped reading: the helper cuts it off with
 *   ERR_BACKPRESSURE and goes on serving its other clients.
 * - The helper never holds more than {@link directClientBacklog} bytes for one
 *   client: past it the client is cut off at once, as before.
 * @module
 */
import { BacklogWatch, CLIENT_STALL_MS, clientHighWater, stalledReaderError } from '../wire/backlog-watch.js';
import { untrustedPeerBacklog, type FramedChannel } from '../wire/framed-channel.js';
import { bulkheadError, isBulkheadError } from '../errors.js';
import { EVENT_BACKLOG } from './event-pressure.js';
import type { RpcServer } from './rpc-server.js';

/**
 * The most a helper holds for one direct client, in bytes: the daemon's bound
 * for a routed client (2 × maxFrameBytes + 1 MiB), but at least what a helper
 * may leave queued on its broker channel for a routed one (the event backlog
 * bound, 32 MiB, plus 1 MiB), so a burst that a routed client survives does
 * not cut a direct client off. With the default 16 MiB frames both are 33 MiB.
 */
export function directClientBacklog(maxFrameBytes: number): number {
  return Math.max(untrustedPeerBacklog(maxFrameBytes), EVENT_BACKLOG.maxBytes + 1024 * 1024);
}

/** Starts pacing the direct client on `channel`; pass the result to its RpcServer (`backlog`). */
export function paceDirectClient(channel: FramedChannel, maxFrameBytes: number): BacklogWatch {
  const highWaterBytes = clientHighWater(maxFrameBytes);
  return new BacklogWatch(channel, {
    highWaterBytes,
    stallMs: CLIENT_STALL_MS,
    stalled: (waiting, stallMs) => channel.fail(stalledReaderError(waiting, stallMs, highWaterBytes)),
  });
}

/**
 * Sends a service-wide event to one direct client. A client so far behind
 * that its events alone pass their bound (`EVENT_BACKLOG.maxBytes`) is cut
 * off, rather than the emit throwing for every client: the others still get
 * the event.
 */
export function broadcastTo(server: RpcServer, name: string, payload: unknown): Promise<void> {
  try {
    return server.broadcast(name, payload);
  } catch (err) {
    if (!isBulkheadError(err) || err.code !== 'ERR_BACKPRESSURE') throw err;
    const waiting = server.channel.writableLength;
    server.channel.fail(bulkheadError('ERR_BACKPRESSURE', `The client stopped reading: ${waiting} bytes of events were waiting for it (limit ${EVENT_BACKLOG.maxBytes}), so the connection was closed. Read replies and events as they come.`, { buffered: waiting, limit: EVENT_BACKLOG.maxBytes }));
    return Promise.resolve();
  }
}

/** Codes a helper reports when it ended a direct channel itself; the daemon logs them (anything else it logs as a plain close). */
export const DIRECT_CLOSE_CODES = ['ERR_BACKPRESSURE', 'ERR_BAD_FRAME', 'ERR_FRAME_TOO_LARGE', 'ERR_PROTOCOL_MISMATCH'] as const;

/** Longest close message a helper reports (the hand-off pipe's lines are short). */
export const MAX_CLOSE_MESSAGE = 512;

/** The fields of a `closed` report on the hand-off pipe for a channel that ended with `error`. */
export function closeReport(error: { code: string; message: string } | undefined): { code?: string; message?: string } {
  if (error === undefined || !(DIRECT_CLOSE_CODES as readonly string[]).includes(error.code)) return {};
  return { code: error.code, message: error.message.slice(0, MAX_CLOSE_MESSAGE) };
}
