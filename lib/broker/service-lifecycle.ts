/**
 * The life of one service's helper (launchd's job record), as the broker
 * moves it: on-demand launch paced by an exponential backoff, the prewarmed
 * spare, the two-step zero-downtime restart (stage a new helper, then commit
 * to it), orderly stop and shutdown. What each exit means (interruptions, the
 * crash-loop breaker, a spare's takeover) is {@link ServiceExits}'s, which this
 * class builds on.
 * @module
 */
import { bulkheadError, type BulkheadError } from '../errors.js';
import type { RpcClient } from '../connection/rpc-client.js';
import type { EnforcementReport } from '../sandbox/index.js';
import type { ExitInfo } from './exit-report.js';
import type { StagedHelper } from './helper-handover.js';
import type { HelperProcess } from './helper-process.js';
import { launchSpec, type LaunchSpec } from './helper-spawner.js';
import type { ServiceState } from './service-state.js';
import type { LaunchedHelper } from './spare-pool.js';
import { ServiceExits, tunables } from './service-exits.js';
import type { ResolvedService } from './supervisor-types.js';

/** The life of one service's helper: the moves the broker asks of it, on top of what its exits mean. */
export class ServiceLifecycle extends ServiceExits {
  private launching: Promise<RpcClient> | undefined;
  private restarting: Promise<void> | undefined;

  /** The resolved service the next launch runs. */
  get resolved(): ResolvedService {
    return this.spec.resolved;
  }

  /** Current state. */
  get current(): ServiceState {
    return this.state.current;
  }

  /** The serving helper (or the one starting or stopping), if any. */
  get process(): HelperProcess | undefined {
    return this.helper;
  }

  /** Why the service is failed, when it is. */
  get failedWith(): BulkheadError | undefined {
    return this.state.is('failed') ? this.failure : undefined;
  }

  /** The ERR_CLOSED error once closed, else undefined. */
  get closedWith(): BulkheadError | undefined {
    return this.closed ? this.closedError() : undefined;
  }

  /** Takes a changed manifest (a reload): the next launch and the next restart use it; the running helper is untouched. */
  update(resolved: ResolvedService): void {
    this.useSpec(launchSpec(resolved));
  }

  /** The running helper's client when it is ready for calls. */
  usableClient(): RpcClient | undefined {
    const rpc = this.helper?.rpc;
    return rpc !== undefined && rpc.usable && this.state.is('running') ? rpc : undefined;
  }

  /** The ready helper's client, launching one if none runs. */
  acquire(): Promise<RpcClient> {
    if (this.closed) return Promise.reject(this.closedError());
    if (this.state.is('failed')) return Promise.reject(this.failure!);
    const rpc = this.usableClient();
    if (rpc !== undefined) return Promise.resolve(rpc);
    this.launching ??= this.launch().finally(() => {
      this.launching = undefined;
    });
    return this.launching;
  }

  /** Launches again after an exit (keepAlive), once a launch still reporting that exit settled. */
  relaunch(): void {
    const again = (): void => {
      if (this.closed || this.state.is('failed') || this.helper !== undefined) return;
      // Failures are visible in status() and the broker's events; nobody awaits this launch.
      this.acquire().catch(() => undefined);
    };
    if (this.launching === undefined) again();
    else void this.launching.catch(() => undefined).then(again);
  }

  /** Restarts without downtime (stage, then commit); with nothing running it just launches. */
  restart(reason: string): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    if (this.state.is('failed')) this.reset();
    this.restarting ??= this.replaceHelper(reason).finally(() => {
      this.restarting = undefined;
    });
    return this.restarting;
  }

  /** Stops the running helper gracefully (goodbye → SIGTERM → SIGKILL). Resolves once it exited. */
  async stop(reason?: string): Promise<ExitInfo | undefined> {
    const helper = this.helper;
    if (helper === undefined) return undefined;
    this.state.transition(['running'], 'stopping');
    return helper.stop(this.policy.exitTimeoutMs, reason);
  }

  /** Clears a failed state (the crash window and the backoff) so the next call launches again. */
  reset(): void {
    this.exits.reset();
    this.failure = undefined;
    this.state.transition(['failed'], 'idle');
  }

  /** Stops for good: waits out a launch or restart under way, kills the spare, stops the helper. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.exits.pacer.cancel(this.closedError())) this.state.transition(['throttled'], 'idle');
    await this.launching?.catch(() => undefined);
    await this.restarting?.catch(() => undefined);
    const spare = this.spawner.dropSpare();
    await this.stop();
    await spare;
  }

  /** Resolves once every exited helper was cleaned up and every retired one drained. */
  settled(): Promise<void> {
    return this.departing.settled();
  }

  /** Counters and times for status(). */
  snapshot(): { launches: number; crashes: number; recentCrashes: number; lastExit: ExitInfo | null; sandbox: EnforcementReport | null; failure: BulkheadError | undefined; nextAttemptAt: number | null } {
    return {
      launches: this.launches, crashes: this.exits.crashes, recentCrashes: this.exits.recent, lastExit: this.exits.lastExit, sandbox: this.report, failure: this.failure,
      nextAttemptAt: this.state.is('throttled') ? this.exits.pacer.nextAttemptAt : null,
    };
  }

  /** Starts a prewarmed spare if the service wants one and none is ready. */
  ensureSpare(): void {
    this.spawner.ensureSpare();
  }

  /** pid of the prewarmed spare, once it is warm and waiting. */
  get sparePid(): number | null {
    return this.spawner.sparePid;
  }

  /**
   * Starts a helper of `spec` beside the running one and waits until it is
   * ready, changing nothing else (the first half of a zero-downtime restart).
   * One that cannot start is killed and its error thrown; the old one keeps
   * serving and the service is not failed (unless its current code fails its
   * signature check).
   * @returns the staged helper, or undefined when no helper runs (nothing to replace)
   */
  async stage(spec: LaunchSpec): Promise<StagedHelper | undefined> {
    await this.launching?.catch(() => undefined);
    const old = this.helper;
    if (old === undefined || !this.state.is('running')) return undefined;
    if (spec === this.spec) this.checkSignature(spec);
    else {
      const refused = this.spawner.signatureError(spec);
      if (refused !== undefined) throw refused;
    }
    const launched = await this.startHelper(spec, false);
    await this.spawner.whenReady(launched.helper, tunables(spec).launchTimeoutMs);
    return { launched, spec, replaces: old };
  }

  /**
   * Switches to a staged helper (the second half): new calls go to it from
   * now on, and the one it replaces drains its calls in flight within
   * exitTimeoutMs, then stops. A staged spec other than the current one
   * becomes the service's manifest. Synchronous, so it is never half done.
   * @throws BulkheadError `ERR_CLOSED`, or `ERR_LAUNCH_FAILED` when the staged helper exited already (nothing changed)
   */
  commit(staged: StagedHelper, reason: string): void {
    const { launched, spec, replaces: old } = staged;
    const { helper } = launched;
    if (this.closed) {
      helper.kill('SIGKILL');
      throw this.closedError();
    }
    if (helper.isExited) throw bulkheadError('ERR_LAUNCH_FAILED', `${this.service}'s new helper (pid ${helper.pid ?? '?'}) exited before it took over; the old one keeps serving.`, { service: this.service });
    if (spec !== this.spec) this.useSpec(spec);
    if (this.helper !== old || !this.state.is('running')) {
      // The old helper went meanwhile (it exited, or is stopping): the next launch runs the new code.
      void helper.stop(this.policy.exitTimeoutMs, reason);
      // A relaunch (keepAlive, a call) got in first with the old code: replace it as well.
      if (this.helper !== undefined && this.helper !== old) this.restart(reason).catch(() => undefined);
      return;
    }
    // From here on new calls go to the new helper; the old one drains (settled() waits for it).
    this.departing.retire(old, this.policy.exitTimeoutMs, reason);
    this.adopt(launched);
    this.audience.ready();
    this.spawner.launched();
  }

  private useSpec(spec: LaunchSpec): void {
    this.spec = spec;
    this.policy = tunables(spec);
    this.exits.usePolicy(this.policy);
    // A spare runs the old code: replace it.
    void this.spawner.dropSpare();
  }

  private async launch(): Promise<RpcClient> {
    if (this.helper !== undefined) await this.helper.exited; // stopping: let it go first
    if (this.closed) throw this.closedError();
    if (this.state.is('failed')) throw this.failure!;
    const wait = this.exits.pacer.remainingMs;
    if (wait > 0) {
      const waited = this.exits.pacer.wait(wait);
      // After the wait is armed, so a listener of the throttled state sees when it ends.
      this.state.transition(['idle'], 'throttled');
      await waited;
    }
    this.state.transition(['idle', 'throttled'], 'launching');
    this.checkSignature(this.spec);
    const launched = await this.startHelper(this.spec, true);
    this.adopt(launched);
    const { helper } = launched;
    this.audience.spawned(helper.rpc);
    await this.spawner.whenReady(helper, this.policy.launchTimeoutMs);
    this.state.transition(['launching'], 'running');
    this.audience.ready();
    this.spawner.launched();
    return helper.rpc;
  }

  private async replaceHelper(reason: string): Promise<void> {
    const staged = await this.stage(this.spec);
    if (staged === undefined) await this.acquire();
    else this.commit(staged, reason);
  }

  /** Throws (and marks the service failed) when `spec` fails its code-signing requirement: that code must not run now, nor on the next call. */
  private checkSignature(spec: LaunchSpec): void {
    const refused = this.spawner.signatureError(spec);
    if (refused === undefined) return;
    this.fail(refused);
    throw refused;
  }

  /** The spare or a fresh helper of `spec`; a spawn that cannot be made marks the service failed when `failOnError`. */
  private async startHelper(spec: LaunchSpec, failOnError: boolean): Promise<LaunchedHelper> {
    try {
      return await this.spawner.start(spec);
    } catch (err) {
      // A profile this host cannot enforce will not get better by retrying: fail closed now.
      if (failOnError && (err as BulkheadError).code !== 'ERR_CLOSED') this.fail(err as BulkheadError);
      throw err;
    }
  }
}
