/**
 * The hand-over of a zero-downtime restart: a new helper, started beside the
 * running one and ready, takes the new calls (a {@link StagedHelper} until
 * then); the old one is retired and drains its calls in flight within
 * `exitTimeoutMs`, then stops (goodbye → SIGTERM → SIGKILL, as any stop).
 * Helpers that stopped serving are tracked until drained and cleaned up.
 * @module
 */
import type { HelperProcess } from './helper-process.js';
import type { LaunchSpec } from './helper-spawner.js';
import type { LaunchedHelper } from './spare-pool.js';

/** A new helper started beside the running one (a restart, a reload): ready, not yet serving. */
export interface StagedHelper {
  /** The new helper and its sandbox plan. */
  readonly launched: LaunchedHelper;
  /** The manifest it runs. */
  readonly spec: LaunchSpec;
  /** The helper it replaces. */
  readonly replaces: HelperProcess;
}

/** Kills a staged helper that will not be committed; resolves once it exited. */
export async function abandonStaged(staged: StagedHelper): Promise<void> {
  staged.launched.helper.kill('SIGKILL');
  await staged.launched.helper.exited;
}

/** Helpers that stopped serving: those a restart replaced, draining until they exit, and the cleanups after exits. */
export class DepartingHelpers {
  private readonly draining = new Set<HelperProcess>();
  private readonly jobs = new Set<Promise<void>>();

  /** Keeps `job` (a helper's cleanup) until it settles: {@link DepartingHelpers.settled} waits for it. */
  track(job: Promise<void>): void {
    const tracked: Promise<void> = job.finally(() => this.jobs.delete(tracked));
    this.jobs.add(tracked);
  }

  /** Resolves once every tracked cleanup settled and every retired helper drained. */
  async settled(): Promise<void> {
    await Promise.all([...this.jobs]);
  }

  /** Lets `old` finish its calls in flight (at most `exitTimeoutMs`), then stops it (tracked until it exited). */
  retire(old: HelperProcess, exitTimeoutMs: number, reason: string): void {
    this.draining.add(old);
    let timer: NodeJS.Timeout | undefined;
    const timeUp = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, exitTimeoutMs);
      timer.unref();
    });
    this.track(Promise.race([old.whenIdle(), timeUp])
      .then(() => old.stop(exitTimeoutMs, reason))
      .then(() => undefined, () => undefined)
      .finally(() => clearTimeout(timer)));
  }

  /** True, once, when `helper` was retired by a restart: its exit is still news, not the service's exit. */
  release(helper: HelperProcess): boolean {
    return this.draining.delete(helper);
  }
}
