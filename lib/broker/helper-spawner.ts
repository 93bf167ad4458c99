/**
 * Where a service's helpers come from: its prewarmed spare or a fresh spawn,
 * the code-signing check, the sandbox plan and process (wired to the
 * supervisor's connections, routes and exit handling), and the wait for its
 * hello. Which manifest a helper runs is the caller's choice (a
 * {@link LaunchSpec}): the current one, or a reload's new one started beside
 * the running helper (never the spare, which runs the current code).
 * @module
 */
import { bulkheadError, isBulkheadError, type BulkheadError } from '../errors.js';
import type { Connection } from '../connection/connection.js';
import { RPC_CLIENT_DEFAULTS } from '../connection/rpc-client.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import type { CallBatch } from '../connection/call-meter.js';
import type { ProtocolShape } from '../protocol/types.js';
import { LaunchReserve, planLaunch } from '../sandbox/index.js';
import type { Envelope } from '../wire/envelope.js';
import { untrustedPeerBacklog, type FramedChannel } from '../wire/framed-channel.js';
import type { ExitInfo } from './exit-report.js';
import { heartbeatInterval, helperLaunchInput, ValidatorCache } from './helper-environment.js';
import { warmPlannedCompileCache } from './compile-cache.js';
import { warmPlannedCodeCache } from './code-cache.js';
import { passValidatorsByValue } from './validators-by-value.js';
import { HelperProcess } from './helper-process.js';
import type { HandoffPipe } from './handoff-pipe.js';
import { OutboundRouter } from './outbound-router.js';
import { withParentDeathSignal } from './parent-death.js';
import { SparePool, type LaunchedHelper } from './spare-pool.js';
import { expectMmHolder, mmHolderAddon, mmHolderReaped, trackHelperPid } from './mm-holder-reaper.js';
import { holdNode } from './node-pidfd.js';
import { HELPER_ENV } from '../wire/helper-env.js';
import type { ResolvedService, SupervisorContext } from './supervisor-types.js';

/** A manifest a helper can be launched from, with its protocol's precompiled validators. */
export interface LaunchSpec {
  readonly resolved: ResolvedService;
  readonly validators: ValidatorCache;
}

/** The launch spec of a resolved service. */
export function launchSpec(resolved: ResolvedService): LaunchSpec {
  return { resolved, validators: new ValidatorCache(resolved.protocol) };
}

/** How long after a launch the next spare is started. */
const SPARE_RESPAWN_DELAY_MS = 50;

/** What a spawner needs from its supervisor. */
export interface SpawnerHooks {
  /** The manifest the service runs now (what its spare runs). */
  currentSpec(): LaunchSpec;
  /** False while no spare should be kept (closed, failed). */
  wantSpare(): boolean;
  /** The closed error once the supervisor is closed (a plan made meanwhile is cleaned up), else undefined. */
  closedError(): BulkheadError | undefined;
  /** The connections that hear the helper's events. */
  connections(): Iterable<Connection<ProtocolShape>>;
  /** Takes frames that belong to routed clients; false for the broker's own. */
  route(envelope: Envelope, body: Buffer): boolean;
  /** The helper became busy or idle. */
  activity(helper: HelperProcess, busy: boolean): void;
  /** The helper is exiting; called before its pending calls reject. */
  exiting(helper: HelperProcess, info: ExitInfo, cleanup: () => Promise<void>): void;
  /** The helper's channel closed without the broker asking (the spare was activated early already). */
  channelLost(helper: HelperProcess): void;
  /** The broker sent SIGKILL to the helper unasked (broker.kill, the watchdog); the spare was activated early already. */
  killed(helper: HelperProcess): void;
  /** The helper's channel closed (asked or not), after `channelLost`. */
  channelClosed(helper: HelperProcess): void;
}

/** Bytes that may wait for one helper to read them (manifest maxQueuedBytes, or two frames + 1 MiB). */
export function maxQueuedBytesOf(resolved: ResolvedService, maxFrameBytes: number): number {
  return resolved.manifest.maxQueuedBytes ?? untrustedPeerBacklog(maxFrameBytes);
}

/** Spawns the helpers of one service and keeps its spare. */
export class HelperSpawner {
  private readonly spares: SparePool;
  /**
   * The next sandboxed launch's scratch dir and cgroup, made once the last helper's teardown is done
   * (lib/sandbox/launch-reserve.ts). Made at the first launch: a registered service that never ran holds no object
   * for it (the broker's heap per idle service).
   */
  private reserve: LaunchReserve | undefined;

  constructor(
    private readonly service: string,
    private readonly protocol: CompiledProtocol,
    private readonly ctx: SupervisorContext,
    private readonly hooks: SpawnerHooks,
  ) {
    this.spares = new SparePool({
      spawn: () => this.spawn(hooks.currentSpec(), true),
      wanted: () => hooks.wantSpare(),
      warm: (pid) => ctx.prewarmed(service, pid),
    });
  }

  /**
   * A helper of `spec`: the spare, activated, when `spec` is the current one
   * and a spare waits; else a fresh spawn.
   * @throws BulkheadError the spawn's failure (`ERR_LAUNCH_FAILED` when it was not coded)
   */
  async start(spec: LaunchSpec): Promise<LaunchedHelper> {
    const spare = spec === this.hooks.currentSpec() ? this.spares.take() : undefined;
    if (spare !== undefined) {
      spare.helper.activate();
      return spare;
    }
    try {
      return await this.spawn(spec, false);
    } catch (err) {
      throw isBulkheadError(err) ? err : bulkheadError('ERR_LAUNCH_FAILED', `${this.service}: cannot launch: ${(err as Error).message}`, {}, err);
    }
  }

  /** A helper of the current spec started serving: a prewarmed service gets its next spare. */
  launched(): void {
    if (this.hooks.currentSpec().resolved.manifest.launch?.prewarm === true) {
      // Spawning blocks the event loop for a few ms and the new node competes for the CPU:
      // let the calls waiting for this launch go first.
      setTimeout(() => this.spares.ensure(), SPARE_RESPAWN_DELAY_MS).unref();
    }
  }

  /** Starts a prewarmed spare if the service wants one and none is ready. */
  ensureSpare(): void {
    this.spares.ensure();
  }

  /** True when a warm spare of the current spec waits, already activated early (it can take calls at once). */
  get activatedSpareReady(): boolean {
    return this.spares.activatedReady;
  }

  /** That spare, handed over for a takeover (it serves once {@link HelperProcess.activate} is called), or undefined. */
  takeActivatedSpare(): LaunchedHelper | undefined {
    return this.spares.takeActivated();
  }

  /** pid of the spare, once it is warm and waiting. */
  get sparePid(): number | null {
    return this.spares.warmPid;
  }

  /**
   * Kills the spare (it runs code no longer current, or the service closes); resolves once it exited. The pieces made
   * ahead for the next launch go too (they were made for the old code's plan), once removed.
   */
  async dropSpare(): Promise<void> {
    const released = this.reserve?.release().catch((err: unknown) => {
      this.ctx.cleanupFailed(this.service, -1, (err as Error).message);
    });
    await Promise.all([this.spares.close(), released]);
  }

  /** After a helper's teardown: the next launch's pieces are made now, unless the service is closing. */
  private refillReserve(): void {
    if (this.hooks.closedError() === undefined) this.reserve?.refill();
  }

  /**
   * Checks the code signature `spec` requires, if any.
   * @returns the ERR_CODE_SIGNATURE to fail with, or undefined when the code may run
   */
  signatureError({ resolved }: LaunchSpec): BulkheadError | undefined {
    const { manifest } = resolved;
    if (manifest.requirement === undefined) return undefined;
    const verify = this.ctx.verifyCode;
    if (verify === undefined) {
      return bulkheadError('ERR_CODE_SIGNATURE', `${this.service} has a code-signing requirement (signedBy ${manifest.requirement.signedBy}) but this broker has no way to check it; pass the verifyCode option to the Broker (see verifyServiceDir) or run it under \`bulkhead daemon\`.`, { reason: 'no-ca' });
    }
    try {
      verify(resolved.serviceDir, manifest.requirement);
      return undefined;
    } catch (err) {
      return isBulkheadError(err) ? err : bulkheadError('ERR_CODE_SIGNATURE', `${this.service}: ${(err as Error).message}`, {}, err);
    }
  }

  /** Plans and spawns one helper process of `spec` (a spare waits for activate()). */
  private async spawn(spec: LaunchSpec, spare: boolean): Promise<LaunchedHelper> {
    const { resolved } = spec;
    const { manifest } = resolved;
    this.reserve ??= new LaunchReserve();
    const input = { ...helperLaunchInput(resolved, this.ctx, spec.validators, spare), reserve: this.reserve };
    const plan = await planLaunch(input);
    passValidatorsByValue(plan, spec.validators);
    warmPlannedCompileCache(plan, input);
    warmPlannedCodeCache(plan, input);
    const closed = this.hooks.closedError();
    if (closed !== undefined) {
      await plan.cleanup();
      throw closed;
    }
    // An unsandboxed spare starts an mm holder (mm-holder-reaper.ts): its EOF then comes before node's teardown.
    const holderAddon = spare && resolved.profile === undefined ? mmHolderAddon() : undefined;
    if (holderAddon !== undefined) plan.env[HELPER_ENV.mmHolder] = holderAddon;
    const connects = manifest.connects ?? [];
    const { ctx, hooks, service } = this;
    const helper: HelperProcess = HelperProcess.spawn({
      service,
      plan: withParentDeathSignal(plan),
      protocol: this.protocol,
      spare,
      // Daemon clients get channels of their own to the helper (lib/daemon/direct-session.ts),
      // and so do helpers calling it or called by it (peer-links.ts).
      handoff: ctx.mode === 'daemon' || ctx.peers?.wantsPipe(service, connects, ctx.serviceNames?.() ?? []) === true,
      ...(ctx.peers === undefined ? {} : {
        peerOpen: (caller: HelperProcess, pipe: HandoffPipe, req: number, target: string) => {
          ctx.peers?.open({ service, helper: caller, pipe }, req, target);
        },
      }),
      maxFrameBytes: ctx.maxFrameBytes,
      maxInFlight: manifest.maxInFlight ?? RPC_CLIENT_DEFAULTS.maxInFlight,
      maxQueued: manifest.maxQueued ?? RPC_CLIENT_DEFAULTS.maxQueued,
      maxQueuedBytes: maxQueuedBytesOf(resolved, ctx.maxFrameBytes),
      heartbeatMs: heartbeatInterval(manifest.launch?.watchdogMs),
      watchdogMs: manifest.launch?.watchdogMs,
      hooks: {
        log: (stream, line, pid) => ctx.log(service, stream, line, pid),
        broadcast: (name, payload) => {
          for (const connection of hooks.connections()) connection.deliverEvent(name, payload);
        },
        eventError: (error) => {
          for (const connection of hooks.connections()) connection.deliverError(error);
        },
        activity: (busy) => hooks.activity(helper, busy),
        spareRefused: (why) => ctx.spareRefused?.(service, helper.pid ?? -1, why),
        ...(ctx.callSettled === undefined ? {} : { callSettled: (method: string, seconds: number, code: string | null) => ctx.callSettled?.(service, method, seconds, code) }),
        ...(ctx.callTally === undefined ? {} : { callTally: ctx.callTally(service) }),
        ...(ctx.callsObserved === undefined ? {} : { callsObserved: ctx.callsObserved }),
        ...(ctx.callBatch === undefined ? {} : { callBatch: (batch: CallBatch) => ctx.callBatch?.(service, batch) }),
      },
      route: (envelope, body) => hooks.route(envelope, body),
      // Its channel closing is the first sign a helper died, ~0.5–1 ms before its exit is reported: the spare
      // gets the broker's hello now, so the relaunch that follows the exit sends the call alone.
      channelLost: () => {
        this.spares.activateEarly();
        hooks.channelLost(helper);
      },
      // The broker's own SIGKILL (the whole tree, deepest first) makes its death certain at once: same move, earlier.
      killed: () => {
        this.spares.activateEarly();
        hooks.killed(helper);
      },
      channelClosed: () => hooks.channelClosed(helper),
      // Before the helper's pending calls reject: their .catch sees this exit in status().
      // The cleanup also waits for its mm holder's reap (never rejects; a holder that would not die is reported),
      // even when the sandbox's cleanup fails; once the helper's pieces are removed, the next launch's are made
      // (stop() resolves after both).
      exiting: (info) => hooks.exiting(helper, info, async () => {
        const reaped = mmHolderReaped(helper.channel.stream).then((stuck) => {
          if (stuck !== undefined) ctx.cleanupFailed(service, helper.pid ?? -1, stuck);
        });
        try {
          await plan.cleanup();
        } finally {
          await reaped;
        }
        this.refillReserve();
      }),
      ...(connects.length === 0 ? {} : {
        outbound: (channel: FramedChannel, pid: number | undefined) => {
          // The router lives as long as the channel: it closes its routes when the helper goes.
          new OutboundRouter(channel, { service, pid, connects }, {
            lookup: (name) => ctx.lookup(name), denied: (caller, target) => ctx.denied(caller, target), routing: (target) => helper.routedTargets.add(target),
            ...(ctx.brokerRequest === undefined ? {} : { brokerRequest: ctx.brokerRequest.bind(ctx) }),
          });
        },
      }),
    });
    if (helper.pid !== undefined) {
      trackHelperPid(helper.pid, helper.exited);
      if (holderAddon !== undefined) expectMmHolder(helper.channel.stream, helper.pid);
    }
    // A sandboxed prewarmed helper's node gets a pidfd once it said hello (a spare: once warm, off the relaunch's
    // path): a spare's takeover then fails its calls in flight at the close, however fast the sandbox's init reaps node.
    if (resolved.profile !== undefined && manifest.launch?.prewarm === true) {
      const nodePath = ctx.nodePath;
      (spare ? helper.warm : helper.rpc.ready).then(() => holdNode(helper, nodePath), () => undefined);
    }
    return { helper, plan };
  }

  /**
   * Resolves once `helper` said hello. When it exits first or stays silent
   * past `launchTimeoutMs` (ERR_LAUNCH_FAILED), it is killed and, once it
   * exited, the error thrown.
   */
  async whenReady(helper: HelperProcess, launchTimeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        helper.rpc.ready,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(bulkheadError('ERR_LAUNCH_FAILED', `${this.service} did not call serve() within ${launchTimeoutMs} ms of launch; it was killed. Raise launch.launchTimeoutMs if it needs longer to start.`, { launchTimeoutMs })), launchTimeoutMs);
        }),
      ]);
    } catch (err) {
      // A call that rode with the broker's hello (early-call.ts) fails as the launch does, with this error.
      helper.rpc.interrupt(err as BulkheadError);
      helper.kill('SIGKILL');
      await helper.exited;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }
}
