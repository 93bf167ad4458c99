/**
 * The caller's view of one stream call: an async iterable of the items the
 * service yields, with the method's final value as `.result`. Breaking out of
 * a `for await` (or calling `return()`) cancels the call, so the handler's
 * `ctx.signal` aborts and its generator stops.
 * @module
 */
import type { BulkheadError } from '../errors.js';
import type { RpcStream } from './rpc-client.js';

/** A stream call in progress. Iterate it once. */
export class StreamCall<T = unknown, R = unknown> implements AsyncIterableIterator<T> {
  /**
   * The method's final value (`null` when it declares no `result`), or the
   * stream's error. For a method that yields items it settles only once they
   * are read (flow control holds the service back until then).
   */
  readonly result: Promise<R>;
  private stream: RpcStream | undefined;
  private readonly started: Promise<RpcStream>;
  private ended = false;

  /** @internal Created by `Connection.stream()`. */
  constructor(started: Promise<RpcStream>) {
    this.started = started;
    started.then((s) => {
      this.stream = s;
      // Stopped before the helper was even reached: cancel at once.
      if (this.ended) s.cancel();
    }, () => undefined);
    this.result = started.then((s) => s.result) as Promise<R>;
    // Read through the iterator, the error must not also surface as an unhandled rejection.
    this.result.catch(() => undefined);
  }

  /** Items that arrived and wait to be read (at most `STREAM_WINDOW.items`, and about `STREAM_WINDOW.bytes`). */
  get buffered(): number {
    return this.stream?.buffered ?? 0;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The next item; `done` after the last one; throws the stream's error (a BulkheadError). */
  async next(): Promise<IteratorResult<T, undefined>> {
    if (this.ended) return { value: undefined, done: true };
    const stream = this.stream ?? await this.started;
    try {
      const next = await stream.next();
      if (next.done === true) this.ended = true;
      return next as IteratorResult<T, undefined>;
    } catch (err) {
      this.ended = true;
      throw err as BulkheadError;
    }
  }

  /** Stops reading: cancels the call unless it already ended (what `break` in a `for await` calls). */
  return(): Promise<IteratorResult<T, undefined>> {
    if (!this.ended) {
      this.ended = true;
      this.stream?.cancel();
    }
    return Promise.resolve({ value: undefined, done: true });
  }
}
