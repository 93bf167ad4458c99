/**
 * The prewarmed spare of one service (launch.prewarm): a helper started inside
 * its sandbox with the service module loaded, waiting for "go". A launch takes
 * it (even before it reports warm: it is still ahead of a fresh spawn); a
 * spare that dies unused is replaced, at most three times in a row.
 * @module
 */
import type { SandboxLaunchPlan } from '../sandbox/index.js';
import type { HelperProcess } from './helper-process.js';

/** A spawned helper and the plan it runs under. */
export interface LaunchedHelper {
  helper: HelperProcess;
  plan: SandboxLaunchPlan;
}

/** A spare that dies before use this many times is not replaced. */
const MAX_SPARE_FAILURES = 3;

/** What a spare pool needs from its supervisor. */
export interface SparePoolHooks {
  /** Spawns one spare (running the prewarm entry). */
  spawn(): Promise<LaunchedHelper>;
  /** False while no spare should be kept (closed, failed). */
  wanted(): boolean;
  /** The spare is warm and waiting. */
  warm(pid: number): void;
}

/** Holds at most one spare. */
export class SparePool {
  private spare: LaunchedHelper | undefined;
  private starting = false;
  private failures = 0;

  constructor(private readonly hooks: SparePoolHooks) {}

  /** Starts a spare if none is ready or starting. */
  ensure(): void {
    if (this.spare !== undefined || this.starting || !this.hooks.wanted() || this.failures >= MAX_SPARE_FAILURES) return;
    this.starting = true;
    this.hooks.spawn().then((spare) => {
      this.starting = false;
      if (!this.hooks.wanted()) {
        spare.helper.kill('SIGKILL');
        return;
      }
      this.spare = spare;
      spare.helper.warm.then(() => {
        if (this.spare === spare && spare.helper.pid !== undefined) this.hooks.warm(spare.helper.pid);
      }, () => undefined);
      void spare.helper.exited.then(() => {
        // Died while waiting (it was never activated): forget it, try again.
        if (this.spare === spare) {
          this.spare = undefined;
          this.failures++;
          this.ensure();
        }
      });
    }, () => {
      this.starting = false;
      this.failures++;
    });
  }

  /** Hands over the spare (alive and not refused), or undefined. */
  take(): LaunchedHelper | undefined {
    const spare = this.spare;
    this.spare = undefined;
    return spare !== undefined && usable(spare.helper) ? spare : undefined;
  }

  /**
   * Hands over the spare only when it is warm, usable and already activated early (its hello sent:
   * it can take calls at once); otherwise keeps it and returns undefined. For a takeover (spare-takeover.ts).
   */
  takeActivated(): LaunchedHelper | undefined {
    const helper = this.spare?.helper;
    if (helper?.isWarm !== true || !helper.gate.activated || !usable(helper)) return undefined;
    return this.take();
  }

  /** True when {@link SparePool.takeActivated} would hand over a spare now. */
  get activatedReady(): boolean {
    const helper = this.spare?.helper;
    return helper?.isWarm === true && helper.gate.activated && usable(helper);
  }

  /**
   * Activates the warm spare before a launch takes it (the running helper lost
   * its channel: a relaunch is likely); it serves only once taken.
   */
  activateEarly(): void {
    const helper = this.spare?.helper;
    if (helper?.isWarm === true && usable(helper)) helper.activate(true);
  }

  /** pid of the spare once it is warm and waiting, else null. */
  get warmPid(): number | null {
    return this.spare?.helper.isWarm === true ? (this.spare.helper.pid ?? null) : null;
  }

  /** Kills the spare, if any; resolves once it exited. */
  async close(): Promise<void> {
    const spare = this.take();
    spare?.helper.kill('SIGKILL');
    await spare?.helper.exited;
  }
}

/** A spare that may still be used: alive and not refused for breaking the spare's rules. */
function usable(helper: HelperProcess): boolean {
  return !helper.isExited && helper.gate.refused === undefined;
}
