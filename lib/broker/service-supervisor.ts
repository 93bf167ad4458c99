/**
 * Supervision of one registered service (launchd's job record): on-demand
 * launch paced by an exponential backoff, the crash-loop breaker, the
 * watchdog, zero-downtime restart, orderly stop, and the connections and
 * routes that use it. States move only through compare-and-set transitions
 * ({@link ServiceStateMachine}). The spare, the routes, the helper's
 * environment and the exit texts live in their own files.
 * @module
 */
import { bulkheadError, isBulkheadError, type BulkheadError } from '../errors.js';
import type { Connection, ServiceEndpoint } from '../connection/connection.js';
import { RPC_CLIENT_DEFAULTS, type RpcClient } from '../connection/rpc-client.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import type { ProtocolShape } from '../protocol/types.js';
import { planLaunch, type EnforcementReport } from '../sandbox/index.js';
import type { CallMeta } from '../wire/envelope.js';
import type { FramedChannel } from '../wire/framed-channel.js';
import { untrustedPeerBacklog } from '../wire/framed-channel.js';
import { Emitter } from '../util/emitter.js';
import { CrashLoopBreaker } from './crash-breaker.js';
import { describeExit, exitData, tailText, type ExitInfo } from './exit-report.js';
import { warmPlannedCompileCache } from './compile-cache.js';
import { heartbeatInterval, helperLaunchInput, ValidatorCache } from './helper-environment.js';
import { HelperProcess } from './helper-process.js';
import { LaunchPacer } from './launch-pacer.js';
import { LAUNCH_DEFAULTS, type LaunchTunables } from './manifest.js';
import { OutboundRouter } from './outbound-router.js';
import { withParentDeathSignal } from './parent-death.js';
import { processStats } from './process-stats.js';
import type { RoutableService, RouteTarget } from './route.js';
import { RouteTable } from './route-table.js';
import { ServiceStateMachine, type ServiceState } from './service-state.js';
import { SparePool, type LaunchedHelper } from './spare-pool.js';
import type { ResolvedService, ServiceStatus, SupervisorContext, SupervisorEvents } from './supervisor-types.js';

export type { ServiceState } from './service-state.js';
export type { ResolvedService, ServiceStatus, SupervisorContext, SupervisorEvents } from './supervisor-types.js';

/** How long after a launch the next spare is started. */
const SPARE_RESPAWN_DELAY_MS = 50;

/** Supervises one service. */
export class ServiceSupervisor extends Emitter<SupervisorEvents> implements ServiceEndpoint, RoutableService {
  readonly service: string;
  readonly protocol: CompiledProtocol;
  readonly callMeta: CallMeta | undefined = undefined;
  private policy: LaunchTunables;
  private readonly connections = new Set<Connection<ProtocolShape>>();
  private readonly state: ServiceStateMachine;
  private helper: HelperProcess | undefined;
  private launching: Promise<RpcClient> | undefined;
  private restarting: Promise<void> | undefined;
  private launches = 0;
  private crashes = 0;
  private breaker: CrashLoopBreaker;
  private pacer: LaunchPacer;
  private lastExit: ExitInfo | null = null;
  private failure: BulkheadError | undefined;
  private report: EnforcementReport | null = null;
  private closed = false;
  private readonly cleanups = new Set<Promise<void>>();
  /** Helpers a restart replaced, draining until they exit. */
  private readonly retired = new Set<HelperProcess>();
  private readonly routes: RouteTable;
  private readonly spares: SparePool;
  private validators: ValidatorCache;
  /** Set when the helper runs as a whole-process scheduled job: a clean exit is its normal end. */
  exitIsExpected = false;

  constructor(private resolved: ResolvedService, private readonly ctx: SupervisorContext) {
    super();
    this.service = resolved.manifest.name;
    this.protocol = resolved.protocol;
    this.policy = { ...LAUNCH_DEFAULTS, ...resolved.manifest.launch };
    this.state = new ServiceStateMachine(this.service, (to, from) => ctx.stateChanged(this.service, to, from));
    this.breaker = new CrashLoopBreaker(this.policy.maxRestarts, this.policy.restartWindowMs);
    this.pacer = new LaunchPacer(this.policy);
    this.routes = new RouteTable(this.service);
    this.validators = new ValidatorCache(resolved.protocol);
    this.spares = new SparePool({
      spawn: () => this.spawnHelper(true),
      wanted: () => !this.closed && !this.state.is('failed'),
      warm: (pid) => ctx.prewarmed(this.service, pid),
    });
  }

  /** The resolved service it runs (its manifest, entry, protocol, profile). */
  get resolvedService(): ResolvedService {
    return this.resolved;
  }

  /** Absolute path of the service's protocol file. */
  get protocolFile(): string {
    return this.resolved.protocolFile;
  }

  /** The manifest's default call deadline, if any. */
  get defaultTimeoutMs(): number | undefined {
    return this.resolved.manifest.timeoutMs;
  }

  /** Current state. */
  get currentState(): ServiceState {
    return this.state.current;
  }

  /** The running helper, if any. */
  get process(): HelperProcess | undefined {
    return this.helper;
  }

  /**
   * Takes a changed manifest of the same protocol (a reload): the next launch
   * and the next restart use it; the running helper is untouched.
   */
  update(resolved: ResolvedService): void {
    this.resolved = resolved;
    this.policy = { ...LAUNCH_DEFAULTS, ...resolved.manifest.launch };
    this.breaker = new CrashLoopBreaker(this.policy.maxRestarts, this.policy.restartWindowMs);
    this.pacer = new LaunchPacer(this.policy);
    this.validators = new ValidatorCache(resolved.protocol);
    // A spare runs the old code: replace it.
    void this.spares.close();
  }

  /** Adds a connection that should hear interruptions and invalidation. */
  attach(connection: Connection<ProtocolShape>): void {
    this.connections.add(connection);
    if (this.state.is('failed') && this.failure !== undefined) connection.notifyInvalidated(this.failure);
  }

  /** @inheritdoc */
  detach(connection: Connection<ProtocolShape>): void {
    this.connections.delete(connection);
  }

  /** @inheritdoc */
  current(): RpcClient | undefined {
    const rpc = this.helper?.rpc;
    return rpc !== undefined && rpc.usable && this.state.is('running') ? rpc : undefined;
  }

  /** @inheritdoc */
  acquire(): Promise<RpcClient> {
    if (this.closed) return Promise.reject(this.closedError());
    if (this.state.is('failed')) return Promise.reject(this.failure!);
    const rpc = this.current();
    if (rpc !== undefined) return Promise.resolve(rpc);
    this.launching ??= this.launch().finally(() => {
      this.launching = undefined;
    });
    return this.launching;
  }

  /**
   * Launches again after an exit (keepAlive), once the launch that may still
   * be reporting that exit has settled: a start failure is retried too, each
   * attempt paced by the backoff, until the breaker marks the service failed.
   */
  relaunch(): void {
    const again = (): void => {
      if (this.closed || this.state.is('failed') || this.helper !== undefined) return;
      // Failures are visible in status() and the broker's events; nobody awaits this launch.
      this.acquire().catch(() => undefined);
    };
    if (this.launching === undefined) again();
    else void this.launching.catch(() => undefined).then(again);
  }

  /**
   * Restarts without downtime: a new helper (the spare, or a fresh one) is
   * launched while the old one serves; once it is ready new calls go to it,
   * and the old one finishes its calls in flight (up to exitTimeoutMs) and is
   * stopped. With nothing running it just launches.
   */
  restart(reason = 'restarted'): Promise<void> {
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

  /** True while a call is in flight or queued, or the helper holds a transaction open. */
  get busy(): boolean {
    return this.helper?.rpc.isBusy ?? false;
  }

  /** Sends a signal to the running helper (SIGKILL simulates a crash). Returns its pid, or undefined if none runs. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): number | undefined {
    const helper = this.helper;
    if (helper === undefined) return undefined;
    helper.kill(signal);
    return helper.pid;
  }

  /** Clears a failed state (the crash window and the backoff) so the next call launches again. */
  reset(): void {
    this.breaker.reset();
    this.pacer.reset();
    this.failure = undefined;
    this.state.transition(['failed'], 'idle');
  }

  /** Stops the helper, fails waiting calls with ERR_CLOSED and invalidates connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.pacer.cancel(this.closedError())) this.state.transition(['throttled'], 'idle');
    await this.launching?.catch(() => undefined);
    await this.restarting?.catch(() => undefined);
    const spare = this.spares.close();
    await this.stop();
    await spare;
    const error = this.closedError();
    for (const connection of [...this.connections]) connection.notifyInvalidated(error);
    this.connections.clear();
    this.routes.invalidateAll(error, true);
    await Promise.all([...this.cleanups]);
  }

  /** A snapshot for status(). */
  status(): ServiceStatus {
    const helper = this.helper;
    const usage = helper?.pid === undefined || helper.isExited ? undefined : processStats(helper.pid);
    return {
      name: this.service,
      protocol: this.protocol.name,
      state: this.state.current,
      pid: helper?.pid ?? null,
      launches: this.launches,
      crashes: this.crashes,
      recentCrashes: this.breaker.recent,
      lastExit: this.lastExit,
      startedAt: helper?.startedAt ?? null,
      inFlight: (helper?.rpc.inFlight ?? 0) + this.routes.pendingCount,
      connections: this.connections.size,
      sparePid: this.spares.warmPid,
      sandbox: this.report,
      failure: this.failure?.toJSON() ?? null,
      schedule: null,
      idleExitAt: null,
      rssBytes: usage?.rssBytes ?? null,
      cpuPercent: usage?.cpuPercent ?? null,
      callsServed: helper?.callsAnswered ?? 0,
      unresponsiveMs: helper !== undefined && helper.rpc.usable ? helper.unresponsiveMs : null,
      nextAttemptAt: this.state.is('throttled') ? this.pacer.nextAttemptAt : null,
    };
  }

  /** Starts a prewarmed spare if the service wants one and none is ready. */
  ensureSpare(): void {
    this.spares.ensure();
  }

  /** pid of the prewarmed spare, once it is warm and waiting. */
  get sparePid(): number | null {
    return this.spares.warmPid;
  }

  private async launch(): Promise<RpcClient> {
    if (this.helper !== undefined) await this.helper.exited; // stopping: let it go first
    if (this.closed) throw this.closedError();
    if (this.state.is('failed')) throw this.failure!;
    const wait = this.pacer.remainingMs;
    if (wait > 0) {
      const waited = this.pacer.wait(wait);
      // After the wait is armed, so a listener of the throttled state sees when it ends.
      this.state.transition(['idle'], 'throttled');
      await waited;
    }
    this.state.transition(['idle', 'throttled'], 'launching');
    this.checkSignature();
    const launched = await this.startHelper();
    this.adopt(launched);
    const { helper } = launched;
    try {
      await this.whenReady(helper);
    } catch (err) {
      helper.kill('SIGKILL');
      await helper.exited;
      throw err;
    }
    this.state.transition(['launching'], 'running');
    this.emit('ready');
    this.afterLaunch();
    return helper.rpc;
  }

  private async replaceHelper(reason: string): Promise<void> {
    const old = this.helper;
    if (old === undefined || !this.state.is('running')) {
      await this.acquire();
      return;
    }
    this.checkSignature();
    // A replacement that cannot start leaves the old helper serving: not a failure of the service.
    const launched = await this.startHelper(false);
    const { helper } = launched;
    try {
      await this.whenReady(helper);
    } catch (err) {
      // The old helper keeps serving; the failed one is not a crash of the service.
      helper.kill('SIGKILL');
      throw err;
    }
    if (this.closed || this.helper !== old) {
      void helper.stop(this.policy.exitTimeoutMs, reason);
      if (this.closed) throw this.closedError();
      return;
    }
    // From here on new calls go to the new helper; the old one drains.
    this.retired.add(old);
    this.adopt(launched);
    this.emit('ready');
    this.afterLaunch();
    // The old helper drains in the background (close() waits for it): its calls in flight
    // finish within exitTimeoutMs, then goodbye → SIGTERM → SIGKILL as for any stop.
    const exitTimeoutMs = this.policy.exitTimeoutMs;
    const drain = Promise.race([old.whenIdle(), new Promise((resolve) => setTimeout(resolve, exitTimeoutMs).unref())])
      .then(() => old.stop(exitTimeoutMs, reason))
      .then(() => undefined, () => undefined)
      .finally(() => this.cleanups.delete(drain));
    this.cleanups.add(drain);
  }

  /** The checked code signature, when the manifest requires one; a failure marks the service failed. */
  private checkSignature(): void {
    const { manifest } = this.resolved;
    if (manifest.requirement === undefined) return;
    try {
      if (this.ctx.verifyCode === undefined) {
        throw bulkheadError('ERR_CODE_SIGNATURE', `${this.service} has a code-signing requirement (signedBy ${manifest.requirement.signedBy}) but this broker has no way to check it; pass the verifyCode option to the Broker (see verifyServiceDir) or run it under \`bulkhead daemon\`.`, { reason: 'no-ca' });
      }
      this.ctx.verifyCode(this.resolved.serviceDir, manifest.requirement);
    } catch (err) {
      // Code that fails its signature must not run now, nor on the next call.
      const error = isBulkheadError(err) ? err : bulkheadError('ERR_CODE_SIGNATURE', `${this.service}: ${(err as Error).message}`, {}, err);
      this.fail(error);
      throw error;
    }
  }

  /** The spare, activated, or a fresh helper; a spawn that cannot be made marks the service failed when `failOnError`. */
  private async startHelper(failOnError = true): Promise<LaunchedHelper> {
    const spare = this.spares.take();
    if (spare !== undefined) {
      spare.helper.activate();
      return spare;
    }
    try {
      return await this.spawnHelper(false);
    } catch (err) {
      // A profile this host cannot enforce will not get better by retrying: fail closed now.
      const error = isBulkheadError(err) ? err : bulkheadError('ERR_LAUNCH_FAILED', `${this.service}: cannot launch: ${(err as Error).message}`, {}, err);
      if (failOnError && error.code !== 'ERR_CLOSED') this.fail(error);
      throw error;
    }
  }

  /** Makes a launched helper the service's current one. */
  private adopt({ helper, plan }: LaunchedHelper): void {
    this.report = plan.report;
    this.launches++;
    this.pacer.launched();
    this.helper = helper;
    if (helper.pid !== undefined) this.ctx.launched(this.service, helper.pid);
  }

  private async whenReady(helper: HelperProcess): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        helper.rpc.ready,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(bulkheadError('ERR_LAUNCH_FAILED', `${this.service} did not call serve() within ${this.policy.launchTimeoutMs} ms of launch; it was killed. Raise launch.launchTimeoutMs if it needs longer to start.`, { launchTimeoutMs: this.policy.launchTimeoutMs })), this.policy.launchTimeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private afterLaunch(): void {
    if (this.resolved.manifest.launch?.prewarm === true) {
      // Spawning blocks the event loop for a few ms and the new node competes for the CPU:
      // let the calls waiting for this launch go first.
      setTimeout(() => this.spares.ensure(), SPARE_RESPAWN_DELAY_MS).unref();
    }
  }

  /** @inheritdoc */
  openRoute(target: RouteTarget): number {
    if (this.closed) throw this.closedError();
    if (this.state.is('failed')) throw this.failure!;
    return this.routes.open(target);
  }

  /** @inheritdoc */
  closeRoute(range: number, pendingIds: Iterable<number>): void {
    this.routes.close(range, pendingIds, this.helper);
  }

  /** @inheritdoc */
  async forward(range: number, body: Buffer, call?: { id: number; method: string }): Promise<void> {
    // A closed route (service reloaded, unregistered or closed) must fail the call, not drop it.
    const gone = (): BulkheadError => (this.closed ? this.closedError() : bulkheadError('ERR_INVALIDATED', `${this.service}: this route was closed (the service was reloaded or its client went away); connect again.`));
    if (!this.routes.has(range)) throw gone();
    await this.acquire();
    const helper = this.helper;
    if (!this.routes.has(range)) throw gone();
    if (helper === undefined) throw bulkheadError('ERR_INTERRUPTED', `${this.service} exited before the call could be sent; call again.`);
    this.routes.send(range, body, helper, this.maxQueuedBytes);
    if (call !== undefined) helper.trackCall(call.id, call.method);
  }

  /** Bytes that may wait for one helper to read them (manifest maxQueuedBytes, or two frames + 1 MiB). */
  private get maxQueuedBytes(): number {
    return this.resolved.manifest.maxQueuedBytes ?? untrustedPeerBacklog(this.ctx.maxFrameBytes);
  }

  /** Plans and spawns one helper process (a spare waits for activate()). */
  private async spawnHelper(spare: boolean): Promise<LaunchedHelper> {
    const { manifest } = this.resolved;
    const input = helperLaunchInput(this.resolved, this.ctx, this.validators, spare);
    const plan = await planLaunch(input);
    warmPlannedCompileCache(plan, input);
    if (this.closed) {
      await plan.cleanup();
      throw this.closedError();
    }
    const connects = manifest.connects ?? [];
    const helper: HelperProcess = HelperProcess.spawn({
      service: this.service,
      plan: withParentDeathSignal(plan),
      protocol: this.protocol,
      spare,
      maxFrameBytes: this.ctx.maxFrameBytes,
      maxInFlight: manifest.maxInFlight ?? RPC_CLIENT_DEFAULTS.maxInFlight,
      maxQueued: manifest.maxQueued ?? RPC_CLIENT_DEFAULTS.maxQueued,
      maxQueuedBytes: this.maxQueuedBytes,
      heartbeatMs: heartbeatInterval(manifest.launch?.watchdogMs),
      watchdogMs: manifest.launch?.watchdogMs,
      hooks: {
        log: (stream, line, pid) => this.ctx.log(this.service, stream, line, pid),
        broadcast: (name, payload) => {
          for (const connection of this.connections) connection.deliverEvent(name, payload);
        },
        eventError: (error) => {
          for (const connection of this.connections) connection.deliverError(error);
        },
        activity: (busy) => {
          if (this.helper === helper) this.emit('activity', busy);
        },
        ...(this.ctx.callSettled === undefined ? {} : { callSettled: (method: string, seconds: number, code: string | null) => this.ctx.callSettled?.(this.service, method, seconds, code) }),
        ...(this.ctx.callSettled === undefined ? {} : { callSettled: (method: string, seconds: number, code: string | null) => this.ctx.callSettled?.(this.service, method, seconds, code) }),
      },
      route: (envelope, body) => this.routes.deliver(envelope, body),
      // Before the helper's pending calls reject: their .catch sees this exit in status().
      exiting: (info) => this.onExit(helper, info, plan.cleanup),
      ...(connects.length === 0 ? {} : {
        outbound: (channel: FramedChannel, pid: number | undefined) => {
          // The router lives as long as the channel: it closes its routes when the helper goes.
          new OutboundRouter(channel, { service: this.service, pid, connects }, { lookup: this.ctx.lookup, denied: this.ctx.denied });
        },
      }),
    });
    return { helper, plan };
  }

  private onExit(helper: HelperProcess, info: ExitInfo, cleanup: () => Promise<void>): void {
    const job = cleanup().catch((err: unknown) => this.ctx.cleanupFailed(this.service, helper.pid ?? -1, (err as Error).message)).finally(() => this.cleanups.delete(job));
    this.cleanups.add(job);
    if (this.helper !== helper) {
      // A spare, or a helper a restart retired: the latter's end is still news (logs, exit events).
      if (this.retired.delete(helper)) {
        this.ctx.exited(this.service, info);
        this.routes.failCallsOf(helper, bulkheadError('ERR_INTERRUPTED', `${this.service} (pid ${helper.pid ?? '?'}, replaced by a restart) ${describeExit(info)} before it answered; call again.`, { service: this.service, ...exitData(info) }));
      }
      return;
    }
    const wasRunning = this.state.is('running', 'stopping');
    this.helper = undefined;
    this.lastExit = info;
    this.ctx.exited(this.service, info);
    const interruption = bulkheadError('ERR_INTERRUPTED', `${this.service} (pid ${helper.pid ?? '?'}) ${describeExit(info)} while the call was in flight; the next call relaunches it.`, { service: this.service, ...exitData(info) });
    this.routes.interruptAll(interruption);
    if (wasRunning && !info.requested) {
      for (const connection of this.connections) connection.notifyInterrupted(interruption);
    }
    // A helper run as a scheduled job is expected to exit, and exit 0 when it succeeded.
    const jobDone = this.exitIsExpected && info.code === 0;
    const crashed = !info.requested && !jobDone;
    this.pacer.exited(crashed, info.uptimeMs);
    if (crashed) {
      this.crashes++;
      if (this.breaker.record()) {
        this.fail(bulkheadError(
          'ERR_INVALIDATED',
          `${this.service} stopped unexpectedly ${this.breaker.recent} times within ${this.policy.restartWindowMs} ms and was marked failed. Last exit: it ${describeExit(info)}; ${tailText(info)}. Fix the helper, then ${this.remedy()}.`,
          { service: this.service, ...exitData(info), crashes: this.breaker.recent },
        ));
        this.emit('exit', info);
        return;
      }
    }
    this.state.transition(['launching', 'running', 'stopping'], 'idle');
    this.emit('exit', info);
  }

  /** What clears a failed service, in this broker's mode. */
  private remedy(): string {
    return this.ctx.mode === 'daemon' ? `run \`bulkhead kickstart ${this.service}\`` : `call broker.reset("${this.service}")`;
  }

  private fail(error: BulkheadError): void {
    this.failure = error;
    this.state.transition(['idle', 'throttled', 'launching', 'running', 'stopping'], 'failed');
    for (const connection of this.connections) connection.notifyInvalidated(error);
    this.routes.invalidateAll(error);
  }

  private closedError(): BulkheadError {
    return bulkheadError('ERR_CLOSED', `The broker is closed; ${this.service} can no longer be reached. Create a new Broker.`);
  }
}
