/**
 * One service's helper as its exits drive it: which helper serves, the state
 * it is in, and what each exit (or channel loss) of a helper means: an
 * interruption of the calls it held, a counted crash, a failed service, a
 * prewarmed spare's takeover, or the quiet end of a retired helper. States
 * move only through compare-and-set transitions ({@link ServiceStateMachine}).
 * Who hears of it (connections, routes, the launch automation) is its
 * {@link LifecycleAudience}. The moves asked of a service (launch, restart,
 * stop) are ServiceLifecycle's (service-lifecycle.ts), which builds on this class.
 * @module
 */
import { bulkheadError, type BulkheadError } from '../errors.js';
import type { RpcClient } from '../connection/rpc-client.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import type { EnforcementReport } from '../sandbox/index.js';
import { CrashAccounting } from './crash-accounting.js';
import { describeExit, exitData, type ExitInfo } from './exit-report.js';
import { DepartingHelpers } from './helper-handover.js';
import type { HelperProcess } from './helper-process.js';
import { HelperSpawner, launchSpec, type LaunchSpec, type SpawnerHooks } from './helper-spawner.js';
import { LAUNCH_DEFAULTS, type LaunchTunables } from './manifest.js';
import { ServiceStateMachine } from './service-state.js';
import type { LaunchedHelper } from './spare-pool.js';
import { announceSuccessor, Handovers } from './spare-takeover.js';
import { makeDeathCertain } from './certain-death.js';
import { heldNode } from './node-pidfd.js';
import type { ResolvedService, SupervisorContext } from './supervisor-types.js';

/** The launch tunables of a spec, defaults filled in. */
export const tunables = (spec: LaunchSpec): LaunchTunables => ({ ...LAUNCH_DEFAULTS, ...spec.resolved.manifest.launch });

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

/** One service's helper, its state, and what each of its exits means; ServiceLifecycle adds the moves. */
export abstract class ServiceExits {
  protected spec: LaunchSpec;
  protected policy: LaunchTunables;
  protected readonly state: ServiceStateMachine;
  protected helper: HelperProcess | undefined;
  protected launches = 0;
  protected readonly exits: CrashAccounting;
  protected failure: BulkheadError | undefined;
  protected report: EnforcementReport | null = null;
  protected closed = false;
  /** Helpers a restart retired, and cleanups after exits: settled() waits for them. */
  protected readonly departing = new DepartingHelpers();
  protected readonly spawner: HelperSpawner;
  /** Spares that took over before the old helper's exit was reported, and crashes counted early. */
  private readonly handovers = new Handovers();
  /** Set when the helper runs as a whole-process scheduled job: a clean exit is its normal end. */
  exitIsExpected = false;

  constructor(protected readonly service: string, protocol: CompiledProtocol, resolved: ResolvedService, protected readonly ctx: SupervisorContext, protected readonly audience: LifecycleAudience) {
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

  /** Makes a launched helper the service's current one; `announce`: its `launch` is reported now (a takeover reports it after the old exit). */
  protected adopt({ helper, plan }: LaunchedHelper, announce = true): void {
    this.report = plan.report;
    this.launches++;
    this.exits.pacer.launched();
    this.helper = helper;
    if (announce && helper.pid !== undefined) this.ctx.launched(this.service, helper.pid);
  }

  /** Marks the service failed with `error`. */
  protected fail(error: BulkheadError): void {
    this.failure = error;
    this.state.transition(['idle', 'throttled', 'launching', 'running', 'stopping'], 'failed');
    this.audience.failed(error);
  }

  /** The ERR_CLOSED a closed broker's service rejects with. */
  protected closedError(): BulkheadError {
    return bulkheadError('ERR_CLOSED', `The broker is closed; ${this.service} can no longer be reached. Create a new Broker.`);
  }

  /**
   * The serving helper is dying unasked: its channel closed, or (`certain`) the broker sent it SIGKILL itself. With an
   * activated spare ready, its death is made certain (unless it is) and its crash counted now, and within the budget and
   * pacing the spare serves new calls at once (spare-takeover.ts). A later channel close only fails its calls in flight.
   */
  private lost(helper: HelperProcess, certain: boolean): void {
    if (helper !== this.helper || helper.pid === undefined || this.closed || this.exitIsExpected || !this.state.is('running') || !this.spawner.activatedSpareReady) return;
    // The broker's SIGKILL reached the whole tree already; its exit keeps killFor's reason (or none for broker.kill).
    if (!certain) makeDeathCertain(helper.pid, this.ctx.nodePath, () => helper.killFor('its channel (fd 3) closed while it was still running, so the broker killed it'), heldNode(helper));
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

  /** A helper exited (any: serving, spare, staged, retired); `cleanup` undoes its sandbox. */
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
}
