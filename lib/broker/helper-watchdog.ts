/**
 * The watchdog of a hung helper: kills it when nothing came from its event loop for `limitMs`.
 * Checked four times per period, so a hung helper dies within 1.25 × limitMs of its last sign of
 * life. Split from helper-process.ts, which keeps the time of the last sign (updated per read).
 * @module
 */

/**
 * Starts the watchdog timer (unref'd). `silentMs` says how long the helper has been silent now;
 * `kill` ends it. Stop it with `clearInterval` on the returned timer.
 */
export function startHelperWatchdog(limitMs: number, silentMs: () => number, kill: () => void): NodeJS.Timeout {
  const silent = (): boolean => silentMs() > limitMs;
  const timer = setInterval(() => {
    // Timers run before the poll phase: after a stall of the broker's own loop, heartbeats may be
    // waiting unread on the socket. Decide after this iteration's reads (setImmediate), not before.
    if (silent()) setImmediate(() => {
      if (silent()) kill();
    });
  }, Math.max(5, Math.floor(limitMs / 4)));
  timer.unref();
  return timer;
}
