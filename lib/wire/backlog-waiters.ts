/**
 * Who waits for a channel's backlog to fall (`FramedChannel.onBacklogAtMost`, framed-channel.ts):
 * each waiter names a mark in bytes and is called once, at the first look
 * that finds the backlog at or under it, or when the channel closes.
 * The channel looks when a write completes; while nobody waits this costs one comparison.
 * @module
 */
/** One registration. */
interface BacklogWaiter {
  readonly bytes: number;
  readonly fn: () => void;
}

/** The backlog waiters of one channel. */
export class BacklogWaiters {
  /** Undefined while nobody waits (no array kept for an idle channel). */
  private list: BacklogWaiter[] | undefined;

  /** True while at least one waiter waits. */
  get any(): boolean {
    return this.list !== undefined;
  }

  /** Registers `fn`, to be called once the backlog is at most `bytes` (or the channel closed). */
  add(bytes: number, fn: () => void): void {
    (this.list ??= []).push({ bytes, fn });
  }

  /**
   * Calls and forgets every waiter whose mark `waiting` (the backlog now) is
   * at or under, or all of them when `closed`. The others stay, and so does
   * a waiter that a called `fn` registers (it is looked at next time).
   */
  wake(waiting: number, closed: boolean): void {
    const waiters = this.list;
    if (waiters === undefined) return;
    let kept: BacklogWaiter[] | undefined;
    for (const waiter of waiters) {
      if (closed || waiting <= waiter.bytes) continue;
      (kept ??= []).push(waiter);
    }
    this.list = kept;
    for (const waiter of waiters) if (closed || waiting <= waiter.bytes) waiter.fn();
  }
}
