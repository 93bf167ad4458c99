/**
 * One launch of one helper: the child process (in its own process group, so
 * sandbox wrappers and the node inside die together), its fd-3 channel and
 * RpcClient, a bounded stderr/stdout tail, and an orderly stop:
 * goodbye → wait → SIGTERM → wait → SIGKILL. Its options and hooks are in
 * helper-spawn-options.ts; the child is started by helper-child.ts, its output kept by
 * helper-output.ts, its watchdog in helper-watchdog.ts; a prewarmed spare's first frame
 * is read by warm-frame.ts.
 * @module
 */
import type { ChildProcess } from 'node:child_process';
import type { Duplex } from 'node:stream';
import { bulkheadError, type BulkheadError } from '../errors.js';
import { RpcClient, type RpcClientHooks } from '../connection/rpc-client.js';
import { FramedChannel, untrustedPeerBacklog } from '../wire/framed-channel.js';
import { MAX_CALL_ID } from '../wire/envelope.js';
import type { HandoffPipe } from './handoff-pipe.js';
import type { CallBatch } from '../connection/call-meter.js';
import { describeExit, exitData, tailText, type ExitInfo } from './exit-report.js';
import { afterStdioDrains, exitRecord, interruptedError, type EndFacts } from './helper-end.js';
import type { HelperSpawnOptions } from './helper-spawn-options.js';
import { countCall } from './call-tally.js';
import { SpareGate } from './spare-gate.js';
import { awaitWarmSpare } from './warm-frame.js';
import { signalHelperTree } from './certain-death.js';
import type { ChildEnd } from './exit-at-close.js';
import { CallTable } from '../util/call-table.js';
import { spawnHelperChild } from './helper-child.js';
import { HelperOutput } from './helper-output.js';
import { startHelperWatchdog } from './helper-watchdog.js';

export { describeExit, exitData, tailText, type ExitInfo } from './exit-report.js';
export type { HelperHooks, HelperSpawnOptions } from './helper-spawn-options.js';

/** How long a helper may keep running after its channel closed before it is killed. */
const CHANNEL_LOST_GRACE_MS = 2000;

/** One running helper. */
export class HelperProcess {
  readonly rpc: RpcClient;
  readonly channel: FramedChannel;
  readonly startedAt = Date.now();
  /**
   * Settles when the helper is ready for work: at once for a plain helper; for a
   * prewarmed spare, once it reported its runtime loaded (rejects if it died or
   * misbehaved first).
   */
  readonly warm: Promise<void>;
  private warmed = false;
  /** Calls this helper answered (reply or error), direct and routed; `callsServed` in status. */
  callsAnswered = 0;
  /** Calls sent, not answered: id → method and start (performance.now()) when timed for callSettled, else 0 (only counted). */
  private readonly callStarts = new CallTable<{ method: string; at: number } | 0>();
  /** Settles once the process has exited and its stdio drained. */
  readonly exited: Promise<ExitInfo>;
  private readonly child: ChildProcess;
  /** Its stdout and stderr tails. */
  private readonly output: HelperOutput;
  private stopping: Promise<ExitInfo> | undefined;
  private requested = false;
  private stopReason = 'stopped by broker';
  private hasExited = false;
  private spawnError: Error | undefined;
  private outboundChannel: FramedChannel | undefined;
  /** Route ranges whose peer binding this helper has received. */
  readonly boundRoutes = new Set<number>();
  /** Services this helper's calls went to through the broker (its outbound routes), for status. */
  readonly routedTargets = new Set<string>();
  /** Ids of routed calls (daemon clients, calling services) sent to this helper and not answered yet. */
  readonly routedCalls = new Set<number>();
  /** When the last frame from the helper arrived (performance.now()), or undefined before it was ready. */
  private lastHeard: number | undefined;
  private watchdogTimer: NodeJS.Timeout | undefined;
  private readonly idleWaiters: Array<() => void> = [];
  /** Why the broker killed it (e.g. "watchdog"), reported as the exit's reason. */
  private killReason: string | undefined;
  private lossReported = false; // its unasked death was reported (channelLost or killed): once per helper
  /** The hand-off pipe (daemon mode), and whether the helper's hello said it takes channels on it. */
  private handoffPipe: HandoffPipe | undefined;
  private takesHandoff = false;
  /** A prewarmed spare's rules: its hello and nothing else until activated; events held until it serves; `refused`. */
  readonly gate: SpareGate;

  private constructor(private readonly options: HelperSpawnOptions) {
    const { hooks } = options;
    this.gate = new SpareGate(options.spare === true);
    ({ child: this.child, handoffPipe: this.handoffPipe } = spawnHelperChild(options, {
      answered: (calls) => {
        this.callsAnswered += calls;
        // Direct channels' calls are activity too: idle exit counts from the last one.
        if (calls > 0) hooks.activity?.(false);
      },
      ...(hooks.callBatch === undefined ? {} : { metered: (batch: CallBatch) => hooks.callBatch?.(batch), observed: () => hooks.callsObserved?.() ?? true }),
      // The request itself shows the runtime took the pipe, even before its hello says so.
      open: (req, service) => {
        if (this.handoffPipe !== undefined && !this.hasExited) options.peerOpen?.(this, this.handoffPipe, req, service);
      },
    }));
    this.output = new HelperOutput(this.child, hooks);

    const socket = this.child.stdio[3] as Duplex | null | undefined;
    if (socket === null || socket === undefined) throw new Error('spawn did not create fd 3');
    this.channel = new FramedChannel(socket, { maxFrameBytes: options.maxFrameBytes });
    const rpcHooks: RpcClientHooks = {
      broadcast: (name, payload) => this.gate.serving ? hooks.broadcast(name, payload) : this.gate.deliver(() => hooks.broadcast(name, payload)),
      eventError: (error) => this.gate.deliver(() => hooks.eventError(error)),
      activity: (busy: boolean) => {
        if (!busy) this.checkIdle();
        hooks.activity?.(busy);
      },
      sent: (id, method) => this.trackCall(id, method),
    };
    this.rpc = new RpcClient(this.channel, options.protocol, rpcHooks, {
      service: options.service,
      maxInFlight: options.maxInFlight, maxQueued: options.maxQueued,
      ...(options.maxQueuedBytes === undefined ? {} : { maxQueuedBytes: options.maxQueuedBytes }),
    });
    const attach = (): void => this.channel.attach({
      envelope: (e, body) => {
        // A spare says hello and nothing else until the broker's hello activates it.
        if (!this.gate.admits(e.kind)) {
          this.refuseSpare(`it sent a "${e.kind}" message before it was activated`);
          return;
        }
        // Counted here, not in the RpcClient, so routed (daemon / outbound) calls count too.
        if ((e.kind === 'reply' || e.kind === 'error') && e.id !== 0) {
          this.callsAnswered++;
          // The last routed call settled: idle exit counts from now.
          if (this.routedCalls.size > 0 && this.routedCalls.delete(e.id) && this.routedCalls.size === 0) rpcHooks.activity?.(false);
          this.settleCall(e.id, e.kind === 'error' ? e.error.code : null);
        }
        if (options.route === undefined || !options.route(e, body)) this.rpc.receive(e, body.length);
      },
      // Any bytes prove the helper's event loop ran; an idle helper sends its heartbeat. Once per read, not per frame.
      read: () => {
        if (this.lastHeard !== undefined) this.lastHeard = performance.now();
      },
      closed: (error) => {
        // A frame error (ours or the helper's) is the reason calls fail; say so rather than "interrupted".
        const cause = error ?? this.rpc.peerError;
        if (cause !== undefined && (cause.code === 'ERR_FRAME_TOO_LARGE' || cause.code === 'ERR_BAD_FRAME' || cause.code === 'ERR_PROTOCOL_MISMATCH')) {
          this.rpc.interrupt(cause);
        }
        this.reportLoss(options.channelLost);
        options.channelClosed?.();
        // A live helper without its channel is useless; give it a moment to exit on its own.
        if (!this.hasExited) setTimeout(() => this.kill('SIGKILL'), CHANNEL_LOST_GRACE_MS).unref();
      },
    });
    if (options.spare === true) {
      this.warm = awaitWarmSpare(socket, attach, this.rpc.ready).then(() => {
        this.warmed = true;
        // A cancel of a call that is not in flight, which the spare ignores: its first frame runs the
        // spare's socket read and dispatch code once now, not while the first call waits (~0.3 ms).
        if (!this.gate.activated) this.channel.send({ kind: 'cancel', id: MAX_CALL_ID, reason: 'cancelled' });
      }, (err: unknown) => {
        this.refuseSpare((err as Error).message);
        throw err;
      });
      this.warm.catch(() => undefined);
    } else {
      attach();
      this.warmed = true;
      this.warm = Promise.resolve();
      this.rpc.sendHello({ broker: process.pid });
    }
    const outbound = this.child.stdio[4] as Duplex | null | undefined;
    if (options.outbound !== undefined && outbound !== null && outbound !== undefined) {
      // Answers to a helper that stops reading its outbound side must not pile up in the broker.
      const channel = new FramedChannel(outbound, { maxFrameBytes: this.channel.maxFrameBytes, maxBufferedBytes: untrustedPeerBacklog(this.channel.maxFrameBytes) });
      this.outboundChannel = channel;
      options.outbound(channel, this.child.pid);
    }
    this.rpc.ready.then((hello) => {
      this.takesHandoff = hello.info['handoff'] === true;
      // A spare sends heartbeats only once activated: its watchdog starts then.
      if (this.gate.activated) this.startWatchdog();
    }, () => undefined);
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err) => {
        // spawn failures (ENOENT, EACCES) arrive here, with no 'exit' after them.
        this.spawnError = err;
        if (this.child.pid === undefined) this.onExit(null, null, resolve);
      });
      this.child.once('exit', (code, signal) => this.onExit(code, signal, resolve));
    });
  }

  /**
   * Turns a prewarmed spare into the service's helper: the broker's hello activates it (unless an
   * early activation sent it), and events it sent since go out. The hello is sent at once when the
   * spare's was already checked, so it leaves in the same write as the first call. `early`: activates
   * a spare before it is needed (its events wait for the activation that makes it the service's helper).
   */
  activate(early = false): void {
    if (!(early ? this.gate.activateEarly() : this.gate.serve())) return;
    const now = (): void => {
      this.rpc.sendHello({ broker: process.pid });
      this.startWatchdog();
    };
    if (this.rpc.usable) now();
    else this.rpc.ready.then(now, () => undefined);
  }

  /** Kills a spare that broke the spare's rules (its hello did not match, it spoke before activation); it is never used. */
  private refuseSpare(why: string): void {
    if (this.hasExited || !this.gate.refuse(why)) return;
    this.options.hooks.spareRefused?.(why);
    this.killFor(`prewarmed spare refused: ${why}`);
  }

  /** Spawns a helper according to a sandbox launch plan. */
  static spawn(options: HelperSpawnOptions): HelperProcess {
    return new HelperProcess(options);
  }

  /** OS process id (of the outermost wrapper when sandboxed). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** True when the helper has a hand-off pipe and its hello said it takes channels on it (even after it exited). */
  get takesChannels(): boolean {
    return this.takesHandoff && this.handoffPipe !== undefined;
  }

  /** The pipe to pass this helper direct channels on, once its hello said it takes them; else undefined. */
  get handoff(): HandoffPipe | undefined {
    return this.takesHandoff && !this.hasExited ? this.handoffPipe : undefined;
  }

  /** True once {@link HelperProcess.warm} has resolved (always for a plain helper). */
  get isWarm(): boolean {
    return this.warmed;
  }

  /** True once the process has exited. */
  get isExited(): boolean {
    return this.hasExited;
  }

  /**
   * How long the helper's event loop has been silent past its heartbeat, in ms:
   * 0 for a helper that answers, growing while a handler blocks it; 0 before it
   * is ready and after it exited.
   */
  get unresponsiveMs(): number {
    if (this.lastHeard === undefined || this.hasExited) return 0;
    return Math.max(0, Math.round(performance.now() - this.lastHeard - this.options.heartbeatMs));
  }

  /** Resolves once no call (the broker's own or a routed one) is in flight or queued and no transaction is open, or it exited. */
  whenIdle(): Promise<void> {
    if ((!this.rpc.isBusy && this.routedCalls.size === 0) || this.hasExited) return Promise.resolve();
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      void this.exited.then(() => resolve());
    });
  }

  private checkIdle(): void {
    if (this.rpc.isBusy || this.routedCalls.size > 0) return;
    if (this.idleWaiters.length > 0) for (const resolve of this.idleWaiters.splice(0)) resolve(); // no empty array per idle turn (each sequential call)
  }

  /** Kills the helper with SIGKILL and records why (the exit's reason). */
  killFor(reason: string): void {
    this.killReason ??= reason;
    this.kill('SIGKILL');
  }

  private startWatchdog(): void {
    if (this.hasExited) return;
    this.lastHeard = performance.now();
    const limit = this.options.watchdogMs;
    if (limit === undefined) return;
    this.watchdogTimer = startHelperWatchdog(limit, () => (this.lastHeard === undefined ? 0 : performance.now() - this.lastHeard), () => this.killFor('watchdog'));
  }

  /** Sends a signal to the helper's whole process group; SIGKILL also to every process under it (certain-death.ts). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.hasExited || this.child.pid === undefined) return;
    signalHelperTree(this.child, signal);
    if (signal === 'SIGKILL') this.reportLoss(this.options.killed);
  }

  /** The first sign of an unasked death of an activated helper (its channel closed, or the broker's SIGKILL), told once. */
  private reportLoss(hook: (() => void) | undefined): void {
    if (this.requested || !this.gate.activated || this.lossReported) return;
    this.lossReported = true;
    hook?.();
  }

  /**
   * Stops the helper (`reason` is recorded in its ExitInfo): goodbye (it finishes in-flight calls and exits), then
   * SIGTERM after `exitTimeoutMs`, then SIGKILL after as long again. Idempotent.
   */
  stop(exitTimeoutMs: number, reason = 'stopped by broker'): Promise<ExitInfo> {
    if (this.stopping !== undefined) return this.stopping;
    this.requested = true;
    this.stopReason = reason;
    if (this.hasExited) return (this.stopping = this.exited);
    this.channel.sayGoodbye('broker stopping helper');
    const term = setTimeout(() => this.kill('SIGTERM'), exitTimeoutMs);
    const kill = setTimeout(() => this.kill('SIGKILL'), exitTimeoutMs * 2);
    this.stopping = this.exited.finally(() => {
      clearTimeout(term);
      clearTimeout(kill);
    });
    return this.stopping;
  }

  /** Notes a call sent to this helper (by the broker's own client, or routed by supervisor.forward). */
  trackCall(id: number, method: string): void {
    const hooks = this.options.hooks;
    if (hooks.callSettled === undefined && hooks.callTally === undefined) return;
    const timed = hooks.callSettled !== undefined && (hooks.callsObserved === undefined || hooks.callsObserved());
    this.callStarts.set(id, timed ? { method, at: performance.now() } : 0);
  }

  private settleCall(id: number, code: string | null): void {
    const started = this.callStarts.get(id);
    if (started === undefined) return;
    this.callStarts.delete(id);
    const { callTally } = this.options.hooks;
    if (callTally !== undefined) countCall(callTally, code);
    if (started !== 0) this.options.hooks.callSettled?.(started.method, (performance.now() - started.at) / 1000, code);
  }

  /** Fails the calls in flight at its channel's close with the end the kernel showed then (exit-at-close.ts): the error its
   * exit would give them (code, signal, reason, stderr so far). @returns it, or undefined when they had failed already */
  interruptAtClose(end: ChildEnd): BulkheadError | undefined {
    if (!this.rpc.usable) return undefined;
    const facts = this.endFacts;
    const error = interruptedError(facts, exitRecord(facts, end.code, end.signal));
    for (const id of this.callStarts.keys()) this.settleCall(id, 'ERR_INTERRUPTED');
    this.rpc.interrupt(error);
    return error;
  }

  /** What its end is told from (helper-end.ts). */
  private get endFacts(): EndFacts {
    const { service, plan, watchdogMs } = this.options;
    return {
      service, pid: this.child.pid, wrapped: plan.report.profile !== 'none', stderr: this.output.stderrTail(), startedAt: this.startedAt,
      knownReason: this.spawnError !== undefined ? `spawn failed: ${this.spawnError.message}` : this.killReason,
      explain: (code, signal, tail) => plan.explainExit(code, signal, tail), requested: this.requested, stopReason: this.stopReason,
      watchdogMs: this.killReason === 'watchdog' ? watchdogMs : undefined,
    };
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null, resolve: (info: ExitInfo) => void): void {
    if (this.hasExited) return;
    this.hasExited = true;
    clearInterval(this.watchdogTimer);
    // Calls it never answered end here for the caller too (ERR_INTERRUPTED).
    for (const id of this.callStarts.keys()) this.settleCall(id, 'ERR_INTERRUPTED');
    afterStdioDrains(this.child, () => {
      this.output.end();
      const facts = this.endFacts;
      const info = exitRecord(facts, code, signal);
      const wasUsable = this.rpc.usable;
      this.channel.destroy();
      this.outboundChannel?.destroy();
      this.handoffPipe?.destroy();
      // The supervisor's state first, so a .catch of an interrupted call sees the exit.
      this.options.exiting?.(info);
      this.rpc.interrupt(wasUsable
        ? interruptedError(facts, info)
        : this.rpc.peerError ?? bulkheadError('ERR_LAUNCH_FAILED', `${this.options.service} ${describeExit(info)} before it was ready: ${tailText(info)}.${info.thrown === null || info.thrown === undefined ? ` Its entry must call serve("${this.options.protocol.name}").` : ''}`, { service: this.options.service, ...exitData(info) }));
      resolve(info);
    });
  }
}
