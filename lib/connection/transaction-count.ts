/**
 * The open transactions of one service channel (`ctx.keepAlive()` holds, `openTransaction()`): their count, told to
 * the broker as an `activity` message at each change and again at each heartbeat, so that it does not idle-exit a
 * helper while any is open. Split from rpc-server.ts for the file cap; no call's path goes through it.
 * @module
 */
import type { FramedChannel } from '../wire/framed-channel.js';

/** The open transactions of one channel, as the broker is told them. */
export class TransactionCount {
  private count = 0;

  constructor(private readonly channel: FramedChannel) {}

  /** Opens a transaction. Returns the (idempotent) release function. */
  open(): () => void {
    this.set(this.count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.set(this.count - 1);
    };
  }

  /** Re-sends the count: the heartbeat, the proof for the broker's watchdog that this event loop still runs. */
  report(): void {
    this.channel.send({ kind: 'activity', transactions: this.count });
  }

  private set(count: number): void {
    this.count = count;
    this.channel.send({ kind: 'activity', transactions: count });
  }
}
