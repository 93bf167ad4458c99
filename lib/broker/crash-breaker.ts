/**
 * The crash-loop breaker (systemd's StartLimitBurst in StartLimitIntervalSec):
 * counts unrequested exits inside a sliding window; at `maxRestarts` of them
 * the service is marked failed.
 * @module
 */

/** Counts recent crashes of one service. */
export class CrashLoopBreaker {
  private exits: number[] = [];

  /**
   * @param maxRestarts - crashes inside the window that trip it
   * @param windowMs - the window, in ms
   * @param now - monotonic time source, in ms
   */
  constructor(private readonly maxRestarts: number, readonly windowMs: number, private readonly now: () => number = () => performance.now()) {}

  /** Records one crash; returns true when the breaker tripped. */
  record(): boolean {
    this.exits.push(this.now());
    return this.recent >= this.maxRestarts;
  }

  /** Crashes inside the window. */
  get recent(): number {
    const horizon = this.now() - this.windowMs;
    while (this.exits.length > 0 && this.exits[0]! < horizon) this.exits.shift();
    return this.exits.length;
  }

  /** Forgets every crash (broker.reset, kickstart of a failed service). */
  reset(): void {
    this.exits = [];
  }
}
