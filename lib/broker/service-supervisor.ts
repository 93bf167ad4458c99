/**
 * Supervision of one registered service (launchd's job record): on-demand
 * launch, throttled relaunch, the crash-loop breaker, orderly stop, and the
 * connections that use it. States move only through {@link ServiceSupervisor.transition},
 * which checks the move is allowed (grpc-js's compare-and-set style).
 * @module
 */
import { bulkheadError, isBulkheadError, type BulkheadError, type SerializedError } from '../errors.js';
import type { Connection, ServiceEndpoint } from '../connection/connection.js';
import { RPC_CLIENT_DEFAULTS, type RpcClient } from '../connection/rpc-client.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import type { ProtocolShape } from '../protocol/types.js';
import { planLaunch, type EnforcementReport, type SandboxLaunchInput, type SandboxLaunchPlan, type SandboxProfileRef } from '../sandbox/index.js';
import { ID_RANGE_SIZE, type CallMeta, type Envelope } from '../wire/envelope.js';
import type { RouteTarget } from './route.js';
import { OutboundRouter } from './outbound-router.js';
import { precompileValidators, VALIDATORS_ENV } from '../protocol/precompiled.js';
import type { FramedChannel } from '../wire/framed-channel.js';
import { describeExit, exitData, HelperProcess, tailText, type ExitInfo } from './helper-process.js';
import { fileURLToPath } from 'node:url';
import { Emitter } from '../util/emitter.js';
import type { JobStatus } from './job-runner.js';
import { LAUNCH_DEFAULTS, type LaunchTunables, type ServiceManifest } from './manifest.js';
import { processStats } from './process-stats.js';

/** Life-cycle state of a service. */
export type ServiceState = 'idle' | 'launching' | 'running' | 'stopping' | 'throttled' | 'failed';

/** The entry a prewarmed spare runs until it is activated. */
const PREWARM_ENTRY = fileURLToPath(new URL('../prewarm.js', import.meta.url));

/** A spare that dies before use this many times is not replaced. */
const MAX_SPARE_FAILURES = 3;
/** How long after a launch the next spare is started. */
const SPARE_RESPAWN_DELAY_MS = 50;

/** Id ranges per helper channel: range 0 is the broker's own, the rest are for routed clients. */
const MAX_ROUTES = 2 ** 32 / ID_RANGE_SIZE;

const ALLOWED: Record<ServiceState, readonly ServiceState[]> = {
  idle: ['launching', 'throttled', 'failed'],
  throttled: ['launching', 'idle', 'failed'],
  launching: ['running', 'idle', 'failed'],
  running: ['stopping', 'idle', 'failed'],
  stopping: ['idle', 'failed'],
  failed: ['idle'],
};

/** A snapshot of one service, as `broker.status(name)` returns it. */
export interface ServiceStatus {
  name: string;
  protocol: string;
  state: ServiceState;
  /** pid of the running helper (outermost process when sandboxed), or null. */
  pid: number | null;
  /** Launch attempts since registration. */
  launches: number;
  /** Exits the broker did not ask for. */
  crashes: number;
  /** Unrequested exits inside the current restart window (the breaker trips at maxRestarts). */
  recentCrashes: number;
  /** How the last helper ended, or null. */
  lastExit: ExitInfo | null;
  /** When the running helper started (ms since epoch), or null. */
  startedAt: number | null;
  /** Calls in flight to the running helper: the broker's own plus routed ones (daemon clients, other services). */
  inFlight: number;
  /** Open connections. */
  connections: number;
  /** pid of the prewarmed spare waiting to take over (launch.prewarm), or null. */
  sparePid: number | null;
  /** Sandbox enforcement of the last launch, or null before the first one. */
  sandbox: EnforcementReport | null;
  /** Why the service is failed, when it is. */
  failure: SerializedError | null;
  /** Next and last scheduled run, or null when the service has no schedule. */
  schedule: JobStatus | null;
  /** When idle exit will stop the helper (ms since epoch, broker clock), or null. */
  idleExitAt: number | null;
  /** Resident memory of the running helper's process tree (wrappers included), in bytes, from /proc; null when none runs or /proc cannot tell. */
  rssBytes: number | null;
  /** CPU use of the running helper's process tree in percent of one core, since the previous status (or over its life on the first); null when none runs. */
  cpuPercent: number | null;
  /** Calls the running helper has answered (replies and errors) since it launched; 0 when none runs. */
  callsServed: number;
}

/** What a supervisor needs from its broker. */
export interface SupervisorContext {
  nodePath: string;
  maxFrameBytes: number;
  /** Paths every helper may read (bulkhead's package). */
  implicitReads: string[];
  /** Broker-wide events. */
  stateChanged(name: string, state: ServiceState, previous: ServiceState): void;
  launched(name: string, pid: number): void;
  /** A prewarmed spare is ready and waiting. */
  prewarmed(name: string, pid: number): void;
  exited(name: string, info: ExitInfo): void;
  log(name: string, stream: 'stdout' | 'stderr', line: string, pid: number): void;
  /**
   * Checks a service's code-signing requirement before a launch; throws
   * ERR_CODE_SIGNATURE. Undefined when the broker has no CA.
   */
  verifyCode?: ((serviceDir: string, requirement: { signedBy: string }) => void) | undefined;
  /** Another registered service, for calls this one makes (`connects`). */
  lookup(service: string): ServiceSupervisor | undefined;
  /** A helper was refused a call to another service. */
  denied(caller: string, target: string): void;
  /** A call to one of this service's helpers settled (see HelperHooks.callSettled). Optional (metrics). */
  callSettled?(name: string, method: string, seconds: number, code: string | null): void;
}

/** A registered service after its manifest was resolved. */
export interface ResolvedService {
  manifest: ServiceManifest;
  entry: string;
  serviceDir: string;
  protocol: CompiledProtocol;
  protocolFile: string;
  profile: SandboxProfileRef | undefined;
  /** Absolute directories for `${name}` placeholders in the profile (root, plus the manifest's sandboxPaths). */
  sandboxPaths: Record<string, string>;
}

/** Events a supervisor reports to the launch automation. */
export interface SupervisorEvents {
  /** The helper said hello and is serving. */
  ready: [];
  /** The helper became busy or idle (calls in flight, open transactions). */
  activity: [busy: boolean];
  /** The helper exited; state is already updated. */
  exit: [info: ExitInfo];
  [key: string]: unknown[];
}

/** Supervises one service. */
export class ServiceSupervisor extends Emitter<SupervisorEvents> implements ServiceEndpoint {
  readonly service: string;
  readonly protocol: CompiledProtocol;
  readonly callMeta: CallMeta | undefined = undefined;
  private readonly policy: LaunchTunables;
  private readonly connections = new Set<Connection<ProtocolShape>>();
  private state: ServiceState = 'idle';
  private helper: HelperProcess | undefined;
  private launching: Promise<RpcClient> | undefined;
  private launches = 0;
  private crashes = 0;
  private recentExits: number[] = [];
  private lastLaunchAt = -Infinity;
  private lastExit: ExitInfo | null = null;
  private failure: BulkheadError | undefined;
  private report: EnforcementReport | null = null;
  private closed = false;
  private throttleTimer: { timer: NodeJS.Timeout; cancel(err: BulkheadError): void } | undefined;
  private readonly cleanups = new Set<Promise<void>>();
  /** Daemon clients routed to this service, by id range. */
  private readonly routes = new Map<number, RouteTarget>();
  /** Set when the helper runs as a whole-process scheduled job: a clean exit is its normal end. */
  exitIsExpected = false;

  constructor(private readonly resolved: ResolvedService, private readonly ctx: SupervisorContext) {
    super();
    this.service = resolved.manifest.name;
    this.protocol = resolved.protocol;
    this.policy = { ...LAUNCH_DEFAULTS, ...resolved.manifest.launch };
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
    return this.state;
  }

  /** The running helper, if any. */
  get process(): HelperProcess | undefined {
    return this.helper;
  }

  /** Adds a connection that should hear interruptions and invalidation. */
  attach(connection: Connection<ProtocolShape>): void {
    this.connections.add(connection);
    if (this.state === 'failed' && this.failure !== undefined) connection.notifyInvalidated(this.failure);
  }

  /** @inheritdoc */
  detach(connection: Connection<ProtocolShape>): void {
    this.connections.delete(connection);
  }

  /** @inheritdoc */
  current(): RpcClient | undefined {
    const rpc = this.helper?.rpc;
    return rpc !== undefined && rpc.usable && this.state === 'running' ? rpc : undefined;
  }

  /** @inheritdoc */
  acquire(): Promise<RpcClient> {
    if (this.closed) return Promise.reject(this.closedError());
    if (this.state === 'failed') return Promise.reject(this.failure!);
    const rpc = this.current();
    if (rpc !== undefined) return Promise.resolve(rpc);
    this.launching ??= this.launch().finally(() => {
      this.launching = undefined;
    });
    return this.launching;
  }

  /** Stops the running helper gracefully (goodbye → SIGTERM → SIGKILL). Resolves once it exited. */
  async stop(reason?: string): Promise<ExitInfo | undefined> {
    const helper = this.helper;
    if (helper === undefined) return undefined;
    if (this.state === 'running') this.transition('stopping');
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

  /** Clears a failed state (and the crash window) so the next call launches again. */
  reset(): void {
    this.recentExits = [];
    this.failure = undefined;
    if (this.state === 'failed') this.transition('idle');
  }

  /** Stops the helper, fails waiting calls with ERR_CLOSED and invalidates connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.throttleTimer?.cancel(this.closedError());
    await this.launching?.catch(() => undefined);
    const spare = this.takeSpare();
    spare?.helper.kill('SIGKILL');
    await this.stop();
    await spare?.helper.exited;
    const error = this.closedError();
    for (const connection of [...this.connections]) connection.notifyInvalidated(error);
    this.connections.clear();
    for (const target of [...this.routes.values()]) target.invalidated(error);
    this.routes.clear();
    await Promise.all([...this.cleanups]);
  }

  /** A snapshot for status(). */
  status(): ServiceStatus {
    this.pruneWindow();
    const helper = this.helper;
    const usage = helper?.pid === undefined || helper.isExited ? undefined : processStats(helper.pid);
    return {
      name: this.service,
      protocol: this.protocol.name,
      state: this.state,
      pid: helper?.pid ?? null,
      launches: this.launches,
      crashes: this.crashes,
      recentCrashes: this.recentExits.length,
      lastExit: this.lastExit,
      startedAt: helper?.startedAt ?? null,
      inFlight: (helper?.rpc.inFlight ?? 0) + [...this.routes.values()].reduce((n, r) => n + r.pendingCount, 0),
      connections: this.connections.size,
      sparePid: this.sparePid,
      sandbox: this.report,
      failure: this.failure?.toJSON() ?? null,
      schedule: null,
      idleExitAt: null,
      rssBytes: usage?.rssBytes ?? null,
      cpuPercent: usage?.cpuPercent ?? null,
      callsServed: helper?.callsAnswered ?? 0,
    };
  }

  private transition(to: ServiceState): void {
    const from = this.state;
    if (from === to) return;
    if (!ALLOWED[from].includes(to)) throw new Error(`bulkhead internal error: ${this.service} cannot go from ${from} to ${to}`);
    this.state = to;
    this.ctx.stateChanged(this.service, to, from);
  }

  private async launch(): Promise<RpcClient> {
    if (this.helper !== undefined) await this.helper.exited; // stopping: let it go first
    if (this.closed) throw this.closedError();
    if (this.state === 'failed') throw this.failure!;
    const wait = this.lastLaunchAt + this.policy.throttleMs - performance.now();
    if (wait > 0) await this.throttle(wait);
    this.transition('launching');

    const { manifest } = this.resolved;
    if (manifest.requirement !== undefined) {
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
    let launched: { helper: HelperProcess; plan: SandboxLaunchPlan };
    const spare = this.takeSpare();
    if (spare !== undefined) {
      launched = spare;
      spare.helper.activate();
    } else {
      try {
        launched = await this.spawnHelper(false);
      } catch (err) {
        // A profile this host cannot enforce will not get better by retrying: fail closed now.
        const error = isBulkheadError(err) ? err : bulkheadError('ERR_LAUNCH_FAILED', `${this.service}: cannot launch: ${(err as Error).message}`, {}, err);
        if (error.code !== 'ERR_CLOSED') this.fail(error);
        throw error;
      }
    }
    const { helper, plan } = launched;
    this.report = plan.report;
    this.launches++;
    this.lastLaunchAt = performance.now();
    this.helper = helper;
    if (helper.pid !== undefined) this.ctx.launched(this.service, helper.pid);

    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        helper.rpc.ready,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(bulkheadError('ERR_LAUNCH_FAILED', `${this.service} did not call serve() within ${this.policy.launchTimeoutMs} ms of launch; it was killed. Raise launch.launchTimeoutMs if it needs longer to start.`, { launchTimeoutMs: this.policy.launchTimeoutMs })), this.policy.launchTimeoutMs);
        }),
      ]);
    } catch (err) {
      helper.kill('SIGKILL');
      await helper.exited;
      throw err;
    } finally {
      clearTimeout(timer);
    }
    if (this.state === 'launching') this.transition('running');
    this.emit('ready');
    if (this.resolved.manifest.launch?.prewarm === true) {
      // Spawning blocks the event loop for a few ms and the new node competes for the CPU:
      // let the calls waiting for this launch go first.
      setTimeout(() => this.ensureSpare(), SPARE_RESPAWN_DELAY_MS).unref();
    }
    return helper.rpc;
  }

  /**
   * Opens a route for a daemon client; returns its id range.
   * @throws BulkheadError the failure when the service is failed, ERR_BACKPRESSURE when all ranges are taken
   */
  openRoute(target: RouteTarget): number {
    if (this.closed) throw this.closedError();
    if (this.state === 'failed') throw this.failure!;
    for (let range = 1; range < MAX_ROUTES; range++) {
      if (this.routes.has(range)) continue;
      this.routes.set(range, target);
      return range;
    }
    throw bulkheadError('ERR_BACKPRESSURE', `${this.service} already has ${MAX_ROUTES - 1} routed clients; close some connections.`);
  }

  /** Closes a route: its calls still in the helper are cancelled and the peer binding removed. */
  closeRoute(range: number, pendingIds: Iterable<number>): void {
    if (!this.routes.delete(range)) return;
    const helper = this.helper;
    if (helper === undefined || !helper.boundRoutes.has(range)) return;
    for (const id of pendingIds) helper.channel.send({ kind: 'cancel', id, reason: 'cancelled' });
    helper.channel.send({ kind: 'peer', range, peer: null });
    helper.boundRoutes.delete(range);
  }

  /**
   * Forwards a client's call (or cancel) frame to the helper, launching it on
   * demand and binding the route's peer first.
   */
  async forward(range: number, body: Buffer, call?: { id: number; method: string }): Promise<void> {
    // A closed route (service reloaded, unregistered or closed) must fail the call, not drop it.
    const gone = (): BulkheadError => (this.closed ? this.closedError() : bulkheadError('ERR_INVALIDATED', `${this.service}: this route was closed (the service was reloaded or its client went away); connect again.`));
    const target = this.routes.get(range);
    if (target === undefined) throw gone();
    await this.acquire();
    const helper = this.helper;
    if (!this.routes.has(range)) throw gone();
    if (helper === undefined) throw bulkheadError('ERR_INTERRUPTED', `${this.service} exited before the call could be sent; call again.`);
    if (!helper.boundRoutes.has(range)) {
      helper.channel.send({ kind: 'peer', range, peer: target.peer });
      helper.boundRoutes.add(range);
    }
    if (call !== undefined) helper.trackCall(call.id, call.method);
    helper.channel.sendRaw(body);
  }

  /** Sends a frame from the helper to the routed client that owns it; false when it is the broker's own. */
  private routeFromHelper(envelope: Envelope, body: Buffer): boolean {
    if (this.routes.size === 0) return false;
    let id: number;
    if (envelope.kind === 'reply' || envelope.kind === 'error' || envelope.kind === 'item' || envelope.kind === 'credit') id = envelope.id;
    else if (envelope.kind === 'event') {
      if (envelope.callId === 0) {
        for (const target of this.routes.values()) target.broadcast(body);
        return false; // the broker's own connections hear broadcasts too
      }
      id = envelope.callId;
    } else return false;
    const range = Math.floor(id / ID_RANGE_SIZE);
    if (range === 0) return false;
    this.routes.get(range)?.deliver(envelope, body);
    return true;
  }

  /** A prewarmed helper waiting to become the service (launch.prewarm). */
  private spare: { helper: HelperProcess; plan: SandboxLaunchPlan } | undefined;
  private spareStarting = false;
  private spareFailures = 0;

  /**
   * Starts a prewarmed spare if the service wants one and none is ready:
   * node, the sandbox and bulkhead's runtime are up before the next launch
   * needs them. A spare that dies before use is not replaced after three tries.
   */
  ensureSpare(): void {
    if (this.spare !== undefined || this.spareStarting || this.closed || this.state === 'failed' || this.spareFailures >= MAX_SPARE_FAILURES) return;
    this.spareStarting = true;
    this.spawnHelper(true).then((spare) => {
      this.spareStarting = false;
      if (this.closed) {
        spare.helper.kill('SIGKILL');
        return;
      }
      // Taken by a launch even before it is warm (it is ahead of a fresh spawn); reported once warm.
      this.spare = spare;
      spare.helper.warm.then(() => {
        if (this.spare === spare && spare.helper.pid !== undefined) this.ctx.prewarmed(this.service, spare.helper.pid);
      }, () => undefined);
      void spare.helper.exited.then(() => {
        // Died while waiting (it was never activated): forget it, try again later.
        if (this.spare === spare) {
          this.spare = undefined;
          this.spareFailures++;
          this.ensureSpare();
        }
      });
    }, () => {
      this.spareStarting = false;
      this.spareFailures++;
    });
  }

  /** pid of the prewarmed spare, once it is warm and waiting. */
  get sparePid(): number | null {
    return this.spare?.helper.isWarm === true ? (this.spare.helper.pid ?? null) : null;
  }

  private takeSpare(): { helper: HelperProcess; plan: SandboxLaunchPlan } | undefined {
    const spare = this.spare;
    this.spare = undefined;
    return spare !== undefined && !spare.helper.isExited ? spare : undefined;
  }

  /** What the sandbox layer needs to plan one launch (a spare runs the prewarm entry instead). */
  private launchInput(spare: boolean): SandboxLaunchInput {
    const { manifest } = this.resolved;
    const input: SandboxLaunchInput = {
      service: this.service,
      entry: spare ? PREWARM_ENTRY : this.resolved.entry,
      serviceDir: this.resolved.serviceDir,
      implicitReads: [...this.ctx.implicitReads, this.resolved.protocolFile],
      nodePath: this.ctx.nodePath,
      nodeArgs: manifest.nodeArgs ?? [],
      env: {
        ...manifest.env,
        BULKHEAD_PROTOCOL_FILE: this.resolved.protocolFile,
        BULKHEAD_MAX_FRAME_BYTES: String(this.ctx.maxFrameBytes),
        ...(spare ? { BULKHEAD_ENTRY: this.resolved.entry } : {}),
        ...(process.env['BULKHEAD_DEBUG'] === '1' ? { BULKHEAD_DEBUG: '1' } : {}),
      },
      profile: this.resolved.profile,
      paths: this.resolved.sandboxPaths,
    };
    const validators = this.validatorsFile();
    if (validators !== undefined) {
      input.env[VALIDATORS_ENV] = validators;
      input.implicitReads.push(validators);
    }
    const connects = manifest.connects ?? [];
    if (connects.length > 0) {
      // The helper's copies of its targets' protocols: it validates their results itself.
      const targets: Record<string, string> = {};
      for (const target of connects) {
        const file = this.ctx.lookup(target)?.protocolFile;
        if (file === undefined) continue;
        targets[target] = file;
        input.implicitReads.push(file);
      }
      input.env['BULKHEAD_CONNECTS'] = JSON.stringify(targets);
    }
    return input;
  }

  /** Plans and spawns one helper process (a spare waits for activate()). */
  private async spawnHelper(spare: boolean): Promise<{ helper: HelperProcess; plan: SandboxLaunchPlan }> {
    const { manifest } = this.resolved;
    const plan = await planLaunch(this.launchInput(spare));
    if (this.closed) {
      await plan.cleanup();
      throw this.closedError();
    }
    const connects = manifest.connects ?? [];
    const helper: HelperProcess = HelperProcess.spawn({
      service: this.service,
      plan,
      protocol: this.protocol,
      spare,
      maxFrameBytes: this.ctx.maxFrameBytes,
      maxInFlight: manifest.maxInFlight ?? RPC_CLIENT_DEFAULTS.maxInFlight,
      maxQueued: manifest.maxQueued ?? RPC_CLIENT_DEFAULTS.maxQueued,
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
      },
      route: (envelope, body) => this.routeFromHelper(envelope, body),
      ...(connects.length === 0 ? {} : {
        outbound: (channel: FramedChannel, pid: number | undefined) => {
          // The router lives as long as the channel: it closes its routes when the helper goes.
          new OutboundRouter(channel, { service: this.service, pid, connects }, { lookup: this.ctx.lookup, denied: this.ctx.denied });
        },
      }),
    });
    // Registered before anyone else awaits `exited`, so state is current when they run.
    void helper.exited.then((info) => this.onExit(helper, info, plan.cleanup));
    return { helper, plan };
  }

  private precompiled: string | null | undefined;

  /** The precompiled validators module for this protocol (made once), or undefined. */
  private validatorsFile(): string | undefined {
    if (this.precompiled === undefined) {
      try {
        this.precompiled = precompileValidators(this.protocol) ?? null;
      } catch {
        // No cache (read-only tmp, odd schema): the helper compiles its schemas itself.
        this.precompiled = null;
      }
    }
    return this.precompiled ?? undefined;
  }

  private throttle(ms: number): Promise<void> {
    this.transition('throttled');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.throttleTimer = undefined;
        resolve();
      }, ms);
      this.throttleTimer = {
        timer,
        cancel: (err) => {
          clearTimeout(timer);
          this.throttleTimer = undefined;
          if (this.state === 'throttled') this.transition('idle');
          reject(err);
        },
      };
    });
  }

  private onExit(helper: HelperProcess, info: ExitInfo, cleanup: () => Promise<void>): void {
    const job = cleanup().catch(() => undefined).finally(() => this.cleanups.delete(job));
    this.cleanups.add(job);
    if (this.helper !== helper) return;
    const wasRunning = this.state === 'running' || this.state === 'stopping';
    this.helper = undefined;
    this.lastExit = info;
    this.ctx.exited(this.service, info);
    const interruption = bulkheadError('ERR_INTERRUPTED', `${this.service} (pid ${helper.pid ?? '?'}) ${describeExit(info)} while the call was in flight; the next call relaunches it.`, exitData(info));
    for (const target of this.routes.values()) target.interrupted(interruption);
    if (wasRunning && !info.requested) {
      for (const connection of this.connections) connection.notifyInterrupted(interruption);
    }
    // A helper run as a scheduled job is expected to exit, and exit 0 when it succeeded.
    const jobDone = this.exitIsExpected && info.code === 0;
    if (!info.requested && !jobDone) {
      this.crashes++;
      this.recentExits.push(performance.now());
      this.pruneWindow();
      if (this.recentExits.length >= this.policy.maxRestarts) {
        this.fail(bulkheadError(
          'ERR_INVALIDATED',
          `${this.service} stopped unexpectedly ${this.recentExits.length} times within ${this.policy.restartWindowMs} ms and was marked failed. Last exit: it ${describeExit(info)}. stderr: ${tailText(info)} Fix the helper, then call broker.reset("${this.service}").`,
          { ...exitData(info), crashes: this.recentExits.length },
        ));
        this.emit('exit', info);
        return;
      }
    }
    if (this.state !== 'failed' && this.state !== 'idle') this.transition('idle');
    this.emit('exit', info);
  }

  private fail(error: BulkheadError): void {
    this.failure = error;
    if (this.state !== 'failed') this.transition('failed');
    for (const connection of this.connections) connection.notifyInvalidated(error);
    for (const target of [...this.routes.values()]) target.invalidated(error);
  }

  private pruneWindow(): void {
    const horizon = performance.now() - this.policy.restartWindowMs;
    while (this.recentExits.length > 0 && this.recentExits[0]! < horizon) this.recentExits.shift();
  }

  private closedError(): BulkheadError {
    return bulkheadError('ERR_CLOSED', `The broker is closed; ${this.service} can no longer be reached. Create a new Broker.`);
  }
}
