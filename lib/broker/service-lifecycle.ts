/**
 * The life of one service's helper (launchd's job record): on-demand launch
 * paced by an exponential backoff, the crash-loop breaker, the prewarmed
 * spare, the two-step zero-downtime restart (stage a new helper, then commit
 * to it), orderly stop, and what each exit means. States move only through
 * compare-and-set transitions ({@link ServiceStateMachine}). Who hears of it
 * (connections, routes, the launch automation) is its {@link LifecycleAudience}.
 * @module
 */
import { bulkheadError, type BulkheadError } from '../errors.js';
import type { RpcClient } from '../connection/rpc-client.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import type { EnforcementReport } from '../sandbox/index.js';
import { CrashAccounting } from './crash-accounting.js';
import { describeExit, exitData, type ExitInfo } from './exit-report.js';
import { DepartingHelpers, type StagedHelper } from './helper-handover.js';
import type { HelperProcess } from './helper-process.js';
import { HelperSpawner, launchSpec, type LaunchSpec, type SpawnerHooks } from './helper-spawner.js';
import { LAUNCH_DEFAULTS, type LaunchTunables } from './manifest.js';
import { ServiceStateMachine, type ServiceState } from './service-state.js';
import type { LaunchedHelper } from './spare-pool.js';
import { announceSuccessor, Handovers } from './spare-takeover.js';
import { makeDeathCertain } from './certain-death.js';
import type { ResolvedService, SupervisorContext } from './supervisor-types.js';

/** The launch tunables of a spec, defaults filled in. */
const tunables = (spec: LaunchSpec): LaunchTunables => ({ ...LAUNCH_DEFAULTS, ...spec.resolved.manifest.launch });

/** Who hears of a service's life: its connections, routes and launch automation (the supervisor). */
export interface LifecycleAudience extends Pick<SpawnerHooks, 'connections' | 'route'> {
  /** The current helper `helper` exited: the calls it held fail with `error`; `unexpected`: connections hear of it too. */
  interrupted(helper: HelperProcess, error: BulkheadError, unexpected: boolean): void;
  /** A helper that no longer serves (a restart retired it, a spare took over from it) ended: its calls in flight fail with `error`. */
  retiredExited(helper: HelperProcess, error: BulkheadError): void;
  /** The service was marked failed. */
  failed(error: BulkheadError): void;
  /** A helper became the service's serving one. */
  ready(): void;
  /** A launch spawned `rpc`'s helper, which is not ready yet (lib/broker/early-call.ts). */
  spawned(rpc: RpcClient): void;
  /** The serving helper became busy or idle. */
  activity(busy: boolean): void;
  /** The serving helper exited; state is already updated. */
  exited(info: ExitInfo): void;
}

/** The life of one service's helper. */
export class ServiceLifecycle {
  private spec: LaunchSpec;
  private policy: LaunchTunables;
  private readonly state: ServiceStateMachine;
  private helper: HelperProcess | undefined;
  private launching: Promise<RpcClient> | undefined;
  private restarting: Promise<void> | undefined;
  private launches = 0;
  private readonly exits: CrashAccounting;
  private failure: BulkheadError | undefined;
  private report: EnforcementReport | null = null;
  private closed = false;
  /** Helpers a restart retired, and cleanups after exits: settled() waits for them. */
  private readonly departing = new DepartingHelpers();
  private readonly spawner: HelperSpawner;
  /** Spares that took over before the old helper's exit was reported, and crashes counted early. */
  private readonly handovers = new Handovers();
  /** Set when the helper runs as a whole-process scheduled job: a clean exit is its normal end. */
  exitIsExpected = false;

  constructor(private readonly service: string, protocol: CompiledProtocol, resolved: ResolvedService, private readonly ctx: SupervisorContext, private readonly audience: LifecycleAudience) {
    this.spec = launchSpec(resolved);
    this.policy = tunables(this.spec);
    this.state = new ServiceStateMachine(service, (to, from) => ctx.stateChanged(service, to, from));
    // What clears a failed service, in this broker's mode.
    const remedy = ctx.mode === 'daemon' ? `run \`bulkhead kickstart ${service}\`` : `call broker.reset("${service}")`;
    this.exits = new CrashAccounting(service, this.policy, remedy);
    this.spawner = new HelperSpawner(service, protocol, ctx, {
      closedError: () => (this.closed ? this.closedError() : undefined),
      connections: () => audience.connections(),
      route: (envelope, body) => audience.route(envelope, body),
      activity: (helper, busy) => { if (this.helper === helper) audience.activity(busy); },
      exiting: (helper, info, cleanup) => this.onExit(helper, info, cleanup),
      channelLost: (helper) => this.lost(helper, false),
      killed: (helper) => this.lost(helper, true),
      channelClosed: (helper) => this.handovers.closed(helper, ctx.nodePath, (error) => audience.retiredExited(helper, error)),
      currentSpec: () => this.spec,
      wantSpare: () => !this.closed && !this.state.is('failed'),
    });
  }

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

  /** Makes a launched helper the service's current one; `announce`: its `launch` is reported now (a takeover reports it after the old exit). */
  private adopt({ helper, plan }: LaunchedHelper, announce = true): void {
    this.report = plan.report;
    this.launches++;
    this.exits.pacer.launched();
    this.helper = helper;
    if (announce && helper.pid !== undefined) this.ctx.launched(this.service, helper.pid);
  }

  /**
   * The serving helper is dying unasked: its channel closed, or (`certain`) the broker sent it SIGKILL itself. With an
   * activated spare ready, its death is made certain (unless it is) and its crash counted now, and within the budget and
   * pacing the spare serves new calls at once (spare-takeover.ts). A later channel close only fails its calls in flight.
   */
  private lost(helper: HelperProcess, certain: boolean): void {
    if (helper !== this.helper || helper.pid === undefined || this.closed || this.exitIsExpected || !this.state.is('running') || !this.spawner.activatedSpareReady) return;
    // The broker's SIGKILL reached the whole tree already; its exit keeps killFor's reason (or none for broker.kill).
    if (!certain) makeDeathCertain(helper.pid, this.ctx.nodePath, () => helper.killFor('its channel (fd 3) closed while it was still running, so the broker killed it'));
    const tripped = this.exits.crashed(Date.now() - helper.startedAt);
    this.handovers.countedEarly(helper, tripped);
    // Past the budget: its exit fails the service. Paced: the relaunch waits for its exit and the backoff.
    if (tripped || this.exits.pacer.remainingMs > 0) return;
    const launched = this.spawner.takeActivatedSpare();
    if (launched === undefined) return;
    this.departing.track(this.handovers.begin(helper, launched.helper));
    this.adopt(launched, false);
    if (launched.helper.pid !== undefined) this.ctx.tookOver?.(this.service, launched.helper.pid, helper.pid);
    this.spawner.launched();
  }

  /** The exit of a helper a spare took over from: reported now, in the order a plain relaunch reports it. */
  private replacedExited(helper: HelperProcess, successor: HelperProcess, info: ExitInfo, cleanup: Promise<void>): void {
    this.handovers.end(helper, cleanup);
    const current = this.helper === successor && !successor.isExited;
    if (current) this.exits.lastExit = info;
    this.ctx.exited(this.service, info);
    this.audience.interrupted(helper, bulkheadError('ERR_INTERRUPTED', `${this.service} (pid ${helper.pid ?? '?'}) ${describeExit(info)} while the call was in flight; its prewarmed spare took over, call again.`, { service: this.service, ...exitData(info) }), true);
    // The successor's own end was reported already (it died first, or was stopped): no news for the launch automation.
    if (!current) return;
    this.audience.exited(info);
    announceSuccessor(successor, (pid) => this.ctx.launched(this.service, pid));
    this.audience.ready();
  }

  private onExit(helper: HelperProcess, info: ExitInfo, cleanup: () => Promise<void>): void {
    const cleaned = cleanup().catch((err: unknown) => this.ctx.cleanupFailed(this.service, helper.pid ?? -1, (err as Error).message));
    this.departing.track(cleaned);
    const successor = this.handovers.successorOf(helper);
    if (successor !== undefined) {
      this.replacedExited(helper, successor, info, cleaned);
      return;
    }
    // A helper that took over and died before its predecessor's exit was reported: its launch is news first.
    if (this.helper === helper && this.handovers.awaitsPredecessor(helper)) announceSuccessor(helper, (pid) => this.ctx.launched(this.service, pid));
    if (this.helper !== helper) {
      // A spare, a staged helper, or one a restart retired: the latter's end is still news (logs, exit events).
      if (this.departing.release(helper)) {
        this.ctx.exited(this.service, info);
        this.audience.retiredExited(helper, bulkheadError('ERR_INTERRUPTED', `${this.service} (pid ${helper.pid ?? '?'}, replaced by a restart) ${describeExit(info)} before it answered; call again.`, { service: this.service, ...exitData(info) }));
      }
      return;
    }
    const wasRunning = this.state.is('running', 'stopping');
    this.helper = undefined;
    this.exits.lastExit = info;
    this.ctx.exited(this.service, info);
    const interruption = bulkheadError('ERR_INTERRUPTED', `${this.service} (pid ${helper.pid ?? '?'}) ${describeExit(info)} while the call was in flight; the next call relaunches it.`, { service: this.service, ...exitData(info) });
    this.audience.interrupted(helper, interruption, wasRunning && !info.requested);
    // A helper run as a scheduled job is expected to exit, and exit 0 when it succeeded.
    const early = this.handovers.takeCount(helper);
    const tripped = early === undefined ? this.exits.exited(info, this.exitIsExpected && info.code === 0) : early ? this.exits.failure(info) : undefined;
    if (tripped !== undefined) this.fail(tripped);
    else this.state.transition(['launching', 'running', 'stopping'], 'idle');
    this.audience.exited(info);
  }

  private fail(error: BulkheadError): void {
    this.failure = error;
    this.state.transition(['idle', 'throttled', 'launching', 'running', 'stopping'], 'failed');
    this.audience.failed(error);
  }

  private closedError(): BulkheadError { return bulkheadError('ERR_CLOSED', `The broker is closed; ${this.service} can no longer be reached. Create a new Broker.`); }
}
