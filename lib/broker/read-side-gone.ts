/**
 * The first sign, in the broker's event loop, that a helper's channel is gone: its read side ended. A
 * FramedChannel reports its close at the socket's `close` event, which Node emits a loop phase or more
 * after the read that saw the end: on a read error (ECONNRESET: the helper died with bytes unread, e.g.
 * a call sent right after a crash) the socket is destroyed in that read and `close` follows its handle's
 * close callback at the end of the loop iteration; on a clean EOF, `end` comes on the next tick and `close`
 * only after the broker's own side was shut down too. Traced on Node 24 (round seven, bench/README.md):
 * 0.2–0.5 ms from that read to the close event, on the path of a relaunch after a crash.
 *
 * Nothing is lost by acting at the read: the kernel hands over every byte queued before the end first
 * (libuv reads until the error or EOF), and the channel delivered them synchronously; a stream in paused
 * mode keeps its buffered bytes past `end` only until they are read, and `end` waits for that.
 * @module
 */
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** The part of a net.Socket's libuv handle used here (Node's own `onStreamRead` is its `onread`). */
interface ReadHandle {
  onread?: unknown;
}

/**
 * Calls `gone` once, as soon as `stream`'s read side ended: at `end` (a clean EOF, after every byte was
 * read), or in the very read that destroyed a socket (a read error). The socket's own events are kept.
 */
export function onReadSideGone(stream: Duplex, gone: () => void): void {
  let told = false;
  const tell = (): void => {
    if (told) return;
    told = true;
    gone();
  };
  stream.once('end', tell);
  if (!(stream instanceof Socket)) return;
  const handle = (stream as unknown as { _handle?: ReadHandle | null })._handle;
  if (handle === null || handle === undefined || typeof handle.onread !== 'function') return;
  const onread = handle.onread as (this: unknown, ...args: unknown[]) => unknown;
  // Wrapped, not replaced: Node's reader runs first (and its return value goes back to the handle).
  handle.onread = function readThenCheck(this: unknown, ...args: unknown[]): unknown {
    const result = onread.apply(this, args);
    if (stream.destroyed) tell();
    return result;
  };
}

/** `fn`, run at most once (with the first call's arguments) however often the result is called. */
export function once<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
  let done = false;
  return (...args: A) => {
    if (done) return;
    done = true;
    fn(...args);
  };
}
