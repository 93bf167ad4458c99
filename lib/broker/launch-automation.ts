/**
 * The launch policies of one service beyond on-demand launch: run at load,
 * keep alive (relaunch on the exits the manifest names), idle exit, a timed
 * schedule, and watched paths. It drives its {@link ServiceSupervisor} only
 * through acquire()/stop() and its events, so the throttle and crash-loop
 * breaker apply to every launch it causes.
 * @module
 */
import { watch, type FSWatcher } from 'node:fs';
import { resolve } from 'node:path';
import { bulkheadError } from '../errors.js';
import type { Clock, ClockTimer } from './clock.js';
import type { ExitInfo } from './helper-process.js';
import { JobRunner, type JobRunResult, type JobStatus } from './job-runner.js';
import type { LaunchPolicy } from './manifest.js';
import type { ScheduleStore } from './schedule-store.js';
import { DueTimes } from './schedule.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import type { ServiceSupervisor } from './service-supervisor.js';

/** Settling time for bursts of file-system events on one watched path, in ms. */
const WATCH_DEBOUNCE_MS = 50;

/** What the automation reports to the broker. */
export interface AutomationHooks {
  /** A scheduled run finished (or was skipped). */
  jobResult(service: string, result: JobRunResult): void;
  /** A watched path changed. */
  pathChanged(service: string, path: string, event: string): void;
}

/** Options of a {@link LaunchAutomation}. */
export interface LaunchAutomationOptions {
  supervisor: ServiceSupervisor;
  policy: LaunchPolicy;
  clock: Clock;
  store: ScheduleStore | undefined;
  root: string;
  hooks: AutomationHooks;
  /** For messages. */
  source: string;
}

/** Policy-driven launches and stops of one service. */
export class LaunchAutomation {
  private readonly supervisor: ServiceSupervisor;
  private readonly policy: LaunchPolicy;
  private readonly job: JobRunner | undefined;
  private readonly watchers: FSWatcher[] = [];
  private idleTimer: ClockTimer | undefined;
  private idleExitAt: number | null = null;
  private stopped = false;
  private readonly subscriptions: Array<{ dispose(): void }> = [];

  /**
   * Checks a launch policy against its protocol without side effects (a
   * reload checks every service before it changes any).
   * @throws BulkheadError `ERR_INVALID_MANIFEST` naming the field
   */
  static check(policy: LaunchPolicy, protocol: CompiledProtocol, clock: Clock, source: string): void {
    const schedule = policy.schedule;
    if (schedule !== undefined) {
      if (schedule.method !== undefined && !protocol.hasMethod(schedule.method)) {
        throw bulkheadError('ERR_INVALID_MANIFEST', `${source}: /launch/schedule/method "${schedule.method}" is not a method of protocol ${protocol.name}.`, { source, pointer: '/launch/schedule/method' });
      }
      new DueTimes(schedule, clock.now(), source);
    }
    if (policy.watchMethod !== undefined && !protocol.hasMethod(policy.watchMethod)) {
      throw bulkheadError('ERR_INVALID_MANIFEST', `${source}: /launch/watchMethod "${policy.watchMethod}" is not a method of protocol ${protocol.name}.`, { source, pointer: '/launch/watchMethod' });
    }
  }

  constructor(private readonly options: LaunchAutomationOptions) {
    this.supervisor = options.supervisor;
    this.policy = options.policy;
    LaunchAutomation.check(this.policy, this.supervisor.protocol, options.clock, options.source);
    const schedule = this.policy.schedule;
    if (schedule !== undefined) {
      this.supervisor.exitIsExpected = schedule.method === undefined;
      this.job = new JobRunner({
        service: this.supervisor.service,
        spec: schedule,
        clock: options.clock,
        store: options.store,
        source: options.source,
        run: () => this.runJob(),
        onResult: (result) => options.hooks.jobResult(this.supervisor.service, result),
      });
    }
  }

  /** Starts every policy: launch at load, timers, watchers. */
  start(): void {
    const s = this.supervisor;
    this.subscriptions.push(
      s.on('exit', (info) => this.onExit(info)),
      s.on('ready', () => this.onActivity(s.busy)),
      s.on('activity', (busy) => this.onActivity(busy)),
    );
    (this.policy.watchPaths ?? []).forEach((path, index) => this.watchPath(path, index));
    this.job?.start();
    if (this.policy.prewarm === true) this.supervisor.ensureSpare();
    if (this.policy.runAtLoad === true || this.policy.keepAlive !== undefined && this.policy.keepAlive !== false) this.launchInBackground();
  }

  /** Stops timers and watchers (the supervisor stops the helper). Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.job?.stop();
    this.cancelIdleTimer();
    for (const watcher of this.watchers) watcher.close();
    for (const sub of this.subscriptions) sub.dispose();
  }

  /** Schedule status, or null when the service has no schedule. */
  scheduleStatus(): JobStatus | null {
    return this.job?.status() ?? null;
  }

  /** When the idle timer will stop the helper (ms since epoch, broker clock), or null. */
  get idleExitDeadline(): number | null {
    return this.idleExitAt;
  }

  private launchInBackground(): void {
    if (this.stopped) return;
    // Failures are visible in status() and the broker's events; nobody awaits this launch.
    this.supervisor.acquire().catch(() => undefined);
  }

  private onExit(info: ExitInfo): void {
    this.cancelIdleTimer();
    if (this.stopped || info.requested || this.supervisor.currentState === 'failed') return;
    // relaunch() waits for a launch still reporting this exit (a start failure), then tries again under the backoff.
    if (this.shouldKeepAlive(info)) this.supervisor.relaunch();
  }

  private shouldKeepAlive(info: ExitInfo): boolean {
    const keepAlive = this.policy.keepAlive;
    if (keepAlive === undefined || keepAlive === false) return false;
    if (keepAlive === true) return true;
    const crashed = info.signal !== null || info.code !== 0;
    return crashed ? keepAlive.crashed === true : keepAlive.successfulExit === true;
  }

  private onActivity(busy: boolean): void {
    const idleExitMs = this.policy.idleExitMs;
    if (idleExitMs === undefined || this.stopped) return;
    // Every report of activity restarts the count: idle exit comes idleExitMs after the last call
    // (a timer that finds the helper busy stops nothing: the call's end re-arms it).
    this.cancelIdleTimer();
    if (busy || this.supervisor.currentState !== 'running') return;
    const clock = this.options.clock;
    this.idleExitAt = clock.now() + idleExitMs;
    this.idleTimer = clock.setTimer(() => {
      this.idleTimer = undefined;
      this.idleExitAt = null;
      if (!this.supervisor.busy && this.supervisor.currentState === 'running') void this.supervisor.stop('idle exit');
    }, idleExitMs);
  }

  private cancelIdleTimer(): void {
    this.idleTimer?.cancel();
    this.idleTimer = undefined;
    this.idleExitAt = null;
  }

  /** One scheduled run: call the method, or run the whole helper until it exits. */
  private async runJob(): Promise<void> {
    const schedule = this.policy.schedule!;
    if (schedule.method !== undefined) {
      const rpc = await this.supervisor.acquire();
      await rpc.call(schedule.method, schedule.params ?? {}, { timeoutMs: schedule.timeoutMs });
      return;
    }
    const exited = new Promise<ExitInfo>((resolveExit) => {
      const sub = this.supervisor.on('exit', (info) => {
        sub.dispose();
        resolveExit(info);
      });
    });
    await this.supervisor.acquire();
    const info = await exited;
    if (info.code !== 0) {
      throw bulkheadError('ERR_SERVICE_ERROR', `Job ${this.supervisor.service} ended with ${info.signal ?? `exit code ${info.code}`}.`, { exitCode: info.code, signal: info.signal });
    }
  }

  private watchPath(path: string, index: number): void {
    const absolute = resolve(this.options.root, path);
    let timer: NodeJS.Timeout | undefined;
    let watcher: FSWatcher;
    try {
      watcher = watch(absolute, { persistent: false }, (event) => {
        // Editors and copies fire several events per change: act once per burst.
        if (timer !== undefined) clearTimeout(timer);
        timer = setTimeout(() => this.onPathChanged(absolute, event), WATCH_DEBOUNCE_MS);
        timer.unref();
      });
    } catch (err) {
      throw bulkheadError('ERR_INVALID_MANIFEST', `${this.options.source}: /launch/watchPaths/${index} ${absolute} cannot be watched (${(err as Error).message}); it must exist.`, { source: this.options.source, pointer: `/launch/watchPaths/${index}` }, err);
    }
    watcher.on('error', () => watcher.close());
    this.watchers.push(watcher);
  }

  private onPathChanged(path: string, event: string): void {
    if (this.stopped) return;
    this.options.hooks.pathChanged(this.supervisor.service, path, event);
    const method = this.policy.watchMethod;
    if (method === undefined) {
      this.launchInBackground();
      return;
    }
    this.supervisor.acquire()
      .then((rpc) => rpc.call(method, { path, event }))
      .catch(() => undefined);
  }
}
