/**
 * The takeover of a prewarmed service's spare before the old helper's exit is
 * reported. When the serving helper's channel closes without the broker asking
 * (it died, or it hung up), the broker makes its death certain itself (SIGKILL
 * to its process group: a helper that closed fd 3 and kept running is killed
 * too), counts the crash at that moment, and, when the crash budget and the
 * launch pacing allow a relaunch now, the spare (activated early already) takes
 * the new calls at once. What the exit gives is kept: the old helper's calls in
 * flight fail with its exit's code and signal, at its channel's close when the
 * kernel shows them then (exit-at-close.ts), else once the exit is reported;
 * and the reports keep their order: the old helper's `exit`, then the new one's
 * `launch` and the events it sent meanwhile (held by its SpareGate). The
 * `takeover` event is the only news before the exit.
 *
 * This file keeps the bookkeeping (who replaced whom, which crash was counted
 * early, when the old helper's end has been reported); the moves themselves are
 * ServiceLifecycle's.
 * @module
 */
import type { BulkheadError } from '../errors.js';
import { failCallsAtClose } from './exit-at-close.js';
import type { HelperProcess } from './helper-process.js';
import { heldNode } from './node-pidfd.js';

/** A takeover under way: the old helper's exit is not reported yet. */
interface Handover {
  readonly successor: HelperProcess;
  /** Resolves with the old helper's cleanup once its exit is reported (settled() waits for it). */
  readonly reported: (cleanup: Promise<void>) => void;
}

/** The takeovers of one service and the crashes counted before their exit. */
export class Handovers {
  private readonly pending = new Map<HelperProcess, Handover>();
  /** Helpers whose crash was counted when their channel closed: true when it tripped the breaker. */
  private readonly counted = new Map<HelperProcess, boolean>();

  /** Notes that `helper`'s crash was counted before its exit (`tripped`: the breaker tripped). */
  countedEarly(helper: HelperProcess, tripped: boolean): void {
    this.counted.set(helper, tripped);
  }

  /** Whether `helper`'s crash was counted early (and whether it tripped the breaker); forgets it. */
  takeCount(helper: HelperProcess): boolean | undefined {
    const tripped = this.counted.get(helper);
    this.counted.delete(helper);
    return tripped;
  }

  /**
   * `successor` took over from `old`.
   * @returns a promise that settles once `old`'s exit was reported and its cleanup done
   */
  begin(old: HelperProcess, successor: HelperProcess): Promise<void> {
    return new Promise((resolve) => {
      this.pending.set(old, { successor, reported: (cleanup) => resolve(cleanup) });
    });
  }

  /** The helper that took over from `old` while `old`'s exit is unreported, else undefined. */
  successorOf(old: HelperProcess): HelperProcess | undefined {
    return this.pending.get(old)?.successor;
  }

  /** True while the helper `successor` took over from has not had its exit reported. */
  awaitsPredecessor(successor: HelperProcess): boolean {
    for (const handover of this.pending.values()) if (handover.successor === successor) return true;
    return false;
  }

  /**
   * `helper`'s channel closed: when a spare took over from it, its calls in flight fail now if the kernel
   * already shows how it ended (exit-at-close.ts; a sandboxed node held by a pidfd: node-pidfd.ts), else at its exit as before.
   * @param nodeBinary - the node binary helpers run
   * @param routed - fails the calls routed to it (daemon clients, calling services) with the same error
   */
  closed(helper: HelperProcess, nodeBinary: string, routed: (error: BulkheadError) => void): void {
    if (this.pending.has(helper)) failCallsAtClose(helper, nodeBinary, routed, heldNode(helper));
  }

  /** `old`'s exit is being reported now; `cleanup` is its cleanup after the exit. Forgets `old`. */
  end(old: HelperProcess, cleanup: Promise<void>): void {
    this.pending.get(old)?.reported(cleanup);
    this.pending.delete(old);
    this.counted.delete(old);
  }
}

/** Reports the `launch` of a helper that took over (`launched`), then lets the events it sent meanwhile go out. */
export function announceSuccessor(successor: HelperProcess, launched: (pid: number) => void): void {
  if (successor.pid !== undefined) launched(successor.pid);
  successor.activate();
}
