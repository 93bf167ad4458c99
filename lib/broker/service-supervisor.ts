/**
 * Supervision of one registered service, as the rest of the broker sees it:
 * the connections and routes that use it, its status, and the verbs
 * (launch, restart, stop, kill, reset, close). The helper's life itself
 * (launch, backoff, breaker, spare, restart, exits) is its
 * {@link ServiceLifecycle}; spawning a helper is {@link HelperSpawner}'s job.
 * @module
 */
import { bulkheadError, type BulkheadError } from '../errors.js';
import type { CallClient, Connection, ServiceEndpoint } from '../connection/connection.js';
import type { RpcClient } from '../connection/rpc-client.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import type { ProtocolShape } from '../protocol/types.js';
import type { CallMeta } from '../wire/envelope.js';
import { keptBody } from '../wire/socket-reads.js';
import { Emitter } from '../util/emitter.js';
import type { ExitInfo } from './exit-report.js';
import { abandonStaged, type StagedHelper } from './helper-handover.js';
import type { HelperProcess } from './helper-process.js';
import { maxQueuedBytesOf, type LaunchSpec } from './helper-spawner.js';
import { processStats } from './process-stats.js';
import type { RoutableService, RouteTarget } from './route.js';
import { RouteTable } from './route-table.js';
import { ServiceLifecycle } from './service-lifecycle.js';
import { EarlyCallers } from './early-call.js';
import type { ServiceState } from './service-state.js';
import type { ResolvedService, ServiceStatus, SupervisorContext, SupervisorEvents } from './supervisor-types.js';

export type { ServiceState } from './service-state.js';
export type { ResolvedService, ServiceStatus, SupervisorContext, SupervisorEvents } from './supervisor-types.js';
export type { StagedHelper } from './helper-handover.js';
export { launchSpec, type LaunchSpec } from './helper-spawner.js';

/** Supervises one service. */
export class ServiceSupervisor extends Emitter<SupervisorEvents> implements ServiceEndpoint, RoutableService {
  readonly service: string;
  readonly protocol: CompiledProtocol;
  readonly callMeta: CallMeta | undefined = undefined;
  private readonly connections = new Set<Connection<ProtocolShape>>();
  private readonly routes: RouteTable;
  private readonly life: ServiceLifecycle;
  /** Callers whose first call rides with a cold launch's hello (early-call.ts). */
  private readonly early = new EarlyCallers();

  constructor(resolved: ResolvedService, private readonly ctx: SupervisorContext) {
    super();
    this.service = resolved.manifest.name;
    this.protocol = resolved.protocol;
    this.routes = new RouteTable(this.service);
    this.life = new ServiceLifecycle(this.service, this.protocol, resolved, ctx, {
      connections: () => this.connections,
      route: (envelope, body) => this.routes.deliver(envelope, body),
      interrupted: (helper, error, unexpected) => {
        this.routes.interruptCallsOf(helper, error, true);
        if (unexpected) for (const connection of this.connections) connection.notifyInterrupted(error);
      },
      retiredExited: (helper, error) => this.routes.interruptCallsOf(helper, error, false),
      failed: (error) => {
        for (const connection of this.connections) connection.notifyInvalidated(error);
        this.routes.invalidateAll(error);
      },
      ready: () => {
        this.early.settled();
        this.emit('ready');
      },
      spawned: (rpc) => this.early.spawned(rpc),
      activity: (busy) => this.emit('activity', busy),
      exited: (info) => {
        this.early.settled();
        this.emit('exit', info);
      },
    });
  }

  /** The resolved service it runs (its manifest, entry, protocol, profile). */
  get resolvedService(): ResolvedService {
    return this.life.resolved;
  }

  /** Absolute path of the service's protocol file. */
  get protocolFile(): string {
    return this.life.resolved.protocolFile;
  }

  /** The manifest's default call deadline, if any. */
  get defaultTimeoutMs(): number | undefined {
    return this.life.resolved.manifest.timeoutMs;
  }

  /** Current state. */
  get currentState(): ServiceState {
    return this.life.current;
  }

  /** The running helper, if any. */
  get process(): HelperProcess | undefined {
    return this.life.process;
  }

  /** Set when the helper runs as a whole-process scheduled job: a clean exit is its normal end. */
  get exitIsExpected(): boolean {
    return this.life.exitIsExpected;
  }

  set exitIsExpected(expected: boolean) {
    this.life.exitIsExpected = expected;
  }

  /**
   * Takes a changed manifest of the same protocol (a reload): the next launch
   * and the next restart use it; the running helper is untouched.
   */
  update(resolved: ResolvedService): void {
    this.life.update(resolved);
  }

  /** Adds a connection that should hear interruptions and invalidation. */
  attach(connection: Connection<ProtocolShape>): void {
    this.connections.add(connection);
    const failure = this.life.failedWith;
    if (failure !== undefined) connection.notifyInvalidated(failure);
  }

  /** @inheritdoc */
  detach(connection: Connection<ProtocolShape>): void {
    this.connections.delete(connection);
  }

  /** @inheritdoc */
  current(): RpcClient | undefined {
    return this.life.usableClient();
  }

  /** @inheritdoc */
  acquire(): Promise<RpcClient> {
    return this.life.acquire();
  }

  /** @inheritdoc */
  acquireForCall(): Promise<CallClient> {
    const ready = this.life.usableClient();
    if (ready !== undefined) return Promise.resolve({ rpc: ready });
    const launching = this.life.acquire();
    void launching.then(() => this.early.settled(), () => this.early.settled());
    return this.early.wait(launching);
  }

  /**
   * Launches again after an exit (keepAlive), once the launch that may still
   * be reporting that exit has settled: a start failure is retried too, each
   * attempt paced by the backoff, until the breaker marks the service failed.
   */
  relaunch(): void {
    this.life.relaunch();
  }

  /**
   * Restarts without downtime: a new helper (the spare, or a fresh one) is
   * launched while the old one serves; once it is ready new calls go to it,
   * and the old one finishes its calls in flight (up to exitTimeoutMs) and is
   * stopped. With nothing running it just launches.
   */
  restart(reason = 'restarted'): Promise<void> {
    return this.life.restart(reason);
  }

  /**
   * The first half of a restart to `spec` (a reload's new manifest): a new
   * helper is started beside the running one and ready; nothing else changed.
   * @returns undefined when no helper runs (nothing to replace)
   * @throws the new helper's launch failure (it was killed; the old one keeps serving)
   */
  stage(spec: LaunchSpec): Promise<StagedHelper | undefined> {
    return this.life.stage(spec);
  }

  /** The second half: new calls go to the staged helper, the old one drains and stops, `spec` becomes the manifest. */
  commit(staged: StagedHelper, reason: string): void {
    this.life.commit(staged, reason);
  }

  /** Kills a staged helper that will not be committed; resolves once it exited. */
  abandon(staged: StagedHelper): Promise<void> {
    return abandonStaged(staged);
  }

  /**
   * Stops the running helper gracefully (goodbye → SIGTERM → SIGKILL). Resolves once it exited and
   * its sandbox was torn down (pasta ended, cgroup and scratch dir removed): a launch right after
   * would otherwise share the machine with that teardown (bench/README.md, round seven).
   */
  async stop(reason?: string): Promise<ExitInfo | undefined> {
    const info = await this.life.stop(reason);
    await this.life.settled();
    return info;
  }

  /**
   * True while a call is in flight or queued (the broker's own, a routed one,
   * or one the helper reports on a direct channel), or the helper holds a
   * transaction open.
   */
  get busy(): boolean {
    const helper = this.life.process;
    if (helper === undefined) return false;
    return helper.rpc.isBusy || helper.routedCalls.size > 0 || this.routes.pendingCount > 0;
  }

  /** Sends a signal to the running helper (SIGKILL simulates a crash). Returns its pid, or undefined if none runs. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): number | undefined {
    const helper = this.life.process;
    if (helper === undefined) return undefined;
    helper.kill(signal);
    return helper.pid;
  }

  /** Clears a failed state (the crash window and the backoff) so the next call launches again. */
  reset(): void {
    this.life.reset();
  }

  /** Stops the helper, fails waiting calls with ERR_CLOSED and invalidates connections. */
  async close(): Promise<void> {
    if (this.life.closedWith !== undefined) return;
    await this.life.shutdown();
    const error = this.closedError();
    for (const connection of [...this.connections]) connection.notifyInvalidated(error);
    this.connections.clear();
    this.routes.invalidateAll(error, true);
    await this.life.settled();
  }

  /** A snapshot for status(). */
  status(): ServiceStatus {
    const helper = this.life.process;
    const usage = helper?.pid === undefined || helper.isExited ? undefined : processStats(helper.pid);
    const life = this.life.snapshot();
    return {
      name: this.service,
      protocol: this.protocol.name,
      state: this.life.current,
      pid: helper?.pid ?? null,
      launches: life.launches,
      crashes: life.crashes,
      recentCrashes: life.recentCrashes,
      lastExit: life.lastExit,
      startedAt: helper?.startedAt ?? null,
      inFlight: (helper?.rpc.inFlight ?? 0) + this.routes.pendingCount,
      connections: this.connections.size,
      sparePid: this.life.sparePid,
      sandbox: life.sandbox,
      failure: life.failure?.toJSON() ?? null,
      schedule: null,
      idleExitAt: null,
      rssBytes: usage?.rssBytes ?? null,
      cpuPercent: usage?.cpuPercent ?? null,
      callsServed: helper?.callsAnswered ?? 0,
      outbound: helper === undefined ? {} : outboundPaths(helper.routedTargets, this.ctx.peers?.targetsOf(helper) ?? []),
      unresponsiveMs: helper !== undefined && helper.rpc.usable ? helper.unresponsiveMs : null,
      nextAttemptAt: life.nextAttemptAt,
    };
  }

  /** Starts a prewarmed spare if the service wants one and none is ready. */
  ensureSpare(): void {
    this.life.ensureSpare();
  }

  /** pid of the prewarmed spare, once it is warm and waiting. */
  get sparePid(): number | null {
    return this.life.sparePid;
  }

  /** @inheritdoc */
  openRoute(target: RouteTarget): number {
    const refused = this.life.closedWith ?? this.life.failedWith;
    if (refused !== undefined) throw refused;
    return this.routes.open(target);
  }

  /** @inheritdoc */
  closeRoute(range: number, pendingIds: Iterable<number>): void {
    this.routes.close(range, pendingIds, this.life.process);
  }

  /** @inheritdoc */
  async forward(range: number, received: Buffer, call?: { id: number; method: string }): Promise<void> {
    // Sent after the await below: a body that lies in the shared read buffer (framed-channel.ts) is copied now.
    const body = keptBody(received);
    // A closed route (service reloaded, unregistered or closed) must fail the call, not drop it.
    const gone = (): BulkheadError => this.life.closedWith ?? bulkheadError('ERR_INVALIDATED', `${this.service}: this route was closed (the service was reloaded or its client went away); connect again.`);
    if (!this.routes.has(range)) throw gone();
    await this.acquire();
    const helper = this.life.process;
    if (!this.routes.has(range)) throw gone();
    if (helper === undefined) throw bulkheadError('ERR_INTERRUPTED', `${this.service} exited before the call could be sent; call again.`);
    this.routes.send(range, body, helper, maxQueuedBytesOf(this.life.resolved, this.ctx.maxFrameBytes));
    if (call !== undefined) helper.trackCall(call.id, call.method);
  }

  private closedError(): BulkheadError {
    return bulkheadError('ERR_CLOSED', `The broker is closed; ${this.service} can no longer be reached. Create a new Broker.`);
  }
}

/** Each target a helper calls, and its path (a live direct channel wins over an old route). */
function outboundPaths(routed: Iterable<string>, direct: Iterable<string>): Record<string, 'direct' | 'routed'> {
  const paths: Record<string, 'direct' | 'routed'> = {};
  for (const target of routed) paths[target] = 'routed';
  for (const target of direct) paths[target] = 'direct';
  return paths;
}
