/**
 * Prometheus metrics of a broker (and of the daemon around it), rendered by
 * prom-client in the text exposition format 0.0.4.
 *
 * Recording is plain counting in maps, always on and cheap: call counts are
 * {@link CallTally} objects the helpers bump (call-tally.ts), read here at
 * render time; a call's duration is recorded only from the first render on
 * (timing every call cost the broker 0.3–0.45 µs per call: bench/README.md, round four). prom-client
 * (≈ 250 ms to import on a loaded 2-core machine, as it brings its own
 * dependencies) is loaded only on the first {@link BrokerMetrics.render}, so a
 * broker nobody scrapes never pays for it. The series are handed to
 * prom-client's registry as collectors whose `get()` reads the maps, so
 * nothing recorded before the first scrape is lost.
 *
 * Every series is labelled by `service`:
 * - `bulkhead_calls_total`: calls a helper answered (direct and routed), or
 *   that failed because it exited (ERR_INTERRUPTED);
 * - `bulkhead_call_errors_total{code}`: of those, the ones that failed, by
 *   the code the caller got;
 * - `bulkhead_call_duration_seconds`: histogram of their durations, from the
 *   broker sending the call to the answer arriving, for calls sent after the
 *   first render (or while a `call` listener or `bulkhead:call` subscriber
 *   has calls timed), or (direct channels) from the helper reading the call
 *   to its answer;
 *   (a direct channel's calls, which the broker never sees, come from the
 *   helper's batched reports: call-meter.ts)
 * - `bulkhead_calls_in_flight`, `bulkhead_launches_total`,
 *   `bulkhead_restarts_total` (launches after the service's first one),
 *   `bulkhead_crashes_total{reason}` (unrequested exits),
 *   `bulkhead_resident_memory_bytes`, `bulkhead_cpu_seconds_total` (helper
 *   process trees, sampled at each scrape and at exit), `bulkhead_up` (1 when
 *   running), `bulkhead_watchdog_misses_total` (0: no watchdog yet).
 * The daemon adds `bulkhead_daemon_connections_total`,
 * `bulkhead_daemon_connections_open` and `bulkhead_daemon_refusals_total{reason}`.
 * @module
 */
import { CALL_DURATION_BUCKETS, durationBucket, timedIn, type CallBatch } from '../connection/call-meter.js';
import { tellPipesIfObserved } from './handoff-pipe.js';
import type { ExitInfo } from './helper-process.js';
import { ProcessSampler } from './process-stats.js';
import type { ServiceStatus } from './service-supervisor.js';
import { countCall, countCalls, newCallTally, type CallTally } from './call-tally.js';

export { CALL_DURATION_BUCKETS } from '../connection/call-meter.js';

/** The Content-Type of {@link BrokerMetrics.render}'s text. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** What the recorder needs from a broker. */
export interface MetricsSource {
  status(): ServiceStatus[];
}

interface Histogram {
  buckets: number[];
  sum: number;
  count: number;
}

/** One series as prom-client's registry reads it. */
interface Sample {
  metricName?: string;
  labels: Record<string, string | number>;
  value: number;
}

/** A prom-client collector over our maps (prom-client formats, escapes and orders). */
interface Collector {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  aggregator: 'sum';
  get(): { name: string; help: string; type: string; aggregator: 'sum'; values: Sample[] };
  reset(): void;
}

/** A short, bounded label for why a helper exited (the sandbox's reason without its numbers, the signal, or the exit code). */
export function crashReason(info: Pick<ExitInfo, 'code' | 'signal' | 'reason'>): string {
  if (info.reason !== undefined) {
    const words = info.reason.replace(/\(.*$/, '').replace(/[0-9]+/g, '').trim().toLowerCase();
    if (words !== '') return words.slice(0, 48);
  }
  if (info.signal !== null) return `signal ${info.signal}`;
  return `exit code ${String(info.code)}`;
}

/** Counts what a broker does, and renders it for Prometheus. */
export class BrokerMetrics {
  private readonly tallies = new Map<string, CallTally>();
  /** Set at the first render: from then on calls are timed for the duration histogram. */
  private rendered = false;
  /** Besides the first render, what else makes calls timed (see {@link BrokerMetrics.callHooks}). */
  private othersObserve: () => boolean = () => false;
  private readonly durations = new Map<string, Histogram>();
  private readonly launches = new Map<string, number>();
  private readonly restarts = new Map<string, number>();
  private readonly crashes = new Map<string, Map<string, number>>();
  /** CPU ms of exited helpers, and the last sample of the running one. */
  private readonly cpu = new Map<string, { closedMs: number; pid: number | null; lastMs: number }>();
  private connectionsTotal = 0;
  private connectionsOpen = 0;
  private readonly refusals = new Map<string, number>();
  private daemonMetrics = false;
  private registry: Promise<{ metrics(): Promise<string> }> | undefined;
  /** Its own sampler: sampling here must not shift the CPU % window `ps` sees. */
  private readonly sampler = new ProcessSampler();
  /** The services' status, read once per render. */
  private snapshot: ServiceStatus[] = [];

  constructor(private readonly source: MetricsSource) {}

  /** A helper of `service` was launched. */
  launched(service: string, pid: number): void {
    const before = this.launches.get(service) ?? 0;
    this.launches.set(service, before + 1);
    if (before > 0) this.restarts.set(service, (this.restarts.get(service) ?? 0) + 1);
    const cpu = this.cpuOf(service);
    cpu.pid = pid;
    cpu.lastMs = 0;
  }

  /** A helper of `service` exited. */
  exited(service: string, info: ExitInfo): void {
    const cpu = this.cpuOf(service);
    cpu.closedMs += cpu.lastMs;
    cpu.pid = null;
    cpu.lastMs = 0;
    if (info.requested) return;
    const reasons = this.crashes.get(service) ?? new Map<string, number>();
    const reason = crashReason(info);
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    this.crashes.set(service, reasons);
  }

  /**
   * @internal The counts of `service`'s calls, for its helpers to bump as calls settle
   * (the same object for every helper of the service, read at each render).
   */
  tallyOf(service: string): CallTally {
    let tally = this.tallies.get(service);
    if (tally === undefined) {
      tally = newCallTally();
      this.tallies.set(service, tally);
    }
    return tally;
  }

  /**
   * @internal What a broker's supervisors count and time calls with: each service's
   * {@link CallTally}, and whether a call sent now must be timed and reported
   * (from the first {@link BrokerMetrics.render} on, for the duration
   * histogram, or while `observed` of {@link BrokerMetrics.timeCallsWhile} says so).
   */
  readonly callHooks: { callTally: (service: string) => CallTally; callsObserved: () => boolean } = {
    callTally: (service) => this.tallyOf(service),
    callsObserved: () => this.rendered || this.othersObserve(),
  };

  /** @internal Calls are also timed while `observed()` is true (a `call` listener, a diagnostics channel subscriber). */
  timeCallsWhile(observed: () => boolean): void {
    this.othersObserve = observed;
  }

  /** A call settled (code null: success): counts it and records its duration. */
  call(service: string, seconds: number, code: string | null): void {
    countCall(this.tallyOf(service), code);
    this.timed(service, seconds);
  }

  /** @internal A call already counted in its service's {@link CallTally} took `seconds`: the duration histogram only. */
  timed(service: string, seconds: number): void {
    const h = this.histogramOf(service);
    // Buckets are cumulative when rendered; here each observation lands in its first bucket.
    const i = durationBucket(seconds);
    if (i < CALL_DURATION_BUCKETS.length) h.buckets[i]!++;
    h.sum += seconds;
    h.count++;
  }

  /** A helper's batch of calls it answered on direct channels (see call-meter.ts). */
  callBatch(service: string, batch: CallBatch): void {
    countCalls(this.tallyOf(service), batch.calls, batch.errors);
    // Calls answered before anyone observed them are counted, not timed.
    const timed = batch.timed ?? timedIn(batch.buckets);
    if (timed === 0) return;
    const h = this.histogramOf(service);
    // Its last bucket holds calls past the largest bound: they only count in +Inf (count).
    for (let i = 0; i < CALL_DURATION_BUCKETS.length; i++) h.buckets[i]! += batch.buckets[i] ?? 0;
    h.sum += batch.sum;
    h.count += timed;
  }

  /** The daemon accepted a client connection (it is open until {@link BrokerMetrics.disconnected}). */
  connected(): void {
    this.daemonMetrics = true;
    this.connectionsTotal++;
    this.connectionsOpen++;
  }

  /** A client connection the daemon accepted closed. */
  disconnected(): void {
    this.connectionsOpen = Math.max(0, this.connectionsOpen - 1);
  }

  /** The daemon refused a client (reason: the error code it got). */
  refused(reason: string): void {
    this.daemonMetrics = true;
    this.refusals.set(reason, (this.refusals.get(reason) ?? 0) + 1);
  }

  /** Marks this as a daemon's broker: the daemon series are rendered even while they are 0. */
  forDaemon(): void {
    this.daemonMetrics = true;
  }

  /** The Prometheus text (format 0.0.4), one `# HELP` and `# TYPE` per metric. */
  async render(): Promise<string> {
    if (!this.rendered) {
      this.rendered = true;
      // Helpers time their direct calls from now on too (the `observe` line on their hand-off pipe).
      tellPipesIfObserved();
    }
    this.registry ??= this.createRegistry();
    const registry = await this.registry;
    this.snapshot = this.source.status();
    return registry.metrics();
  }

  private histogramOf(service: string): Histogram {
    let h = this.durations.get(service);
    if (h === undefined) {
      h = { buckets: CALL_DURATION_BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.durations.set(service, h);
    }
    return h;
  }

  private cpuOf(service: string) {
    let cpu = this.cpu.get(service);
    if (cpu === undefined) {
      cpu = { closedMs: 0, pid: null, lastMs: 0 };
      this.cpu.set(service, cpu);
    }
    return cpu;
  }

  private async createRegistry(): Promise<{ metrics(): Promise<string> }> {
    const { Registry } = await import('prom-client');
    const registry = new Registry();
    for (const collector of this.collectors()) registry.registerMetric(collector as never);
    return registry;
  }

  private collectors(): Collector[] {
    const perService = (name: string, help: string, type: 'counter' | 'gauge', read: (s: ServiceStatus) => number | null): Collector =>
      collector(name, help, type, () => this.snapshot.flatMap((s) => {
        const value = read(s);
        return value === null ? [] : [{ labels: { service: s.name }, value }];
      }));
    const fromMap = (name: string, help: string, map: Map<string, number>): Collector =>
      collector(name, help, 'counter', () => this.snapshot.map((s) => ({ labels: { service: s.name }, value: map.get(s.name) ?? 0 })));
    const byLabel = (name: string, help: string, label: string, entries: () => Iterable<[string, ReadonlyMap<string, number>]>): Collector =>
      collector(name, help, 'counter', () => [...entries()].flatMap(([service, inner]) => [...inner].map(([key, value]) => ({ labels: { service, [label]: key }, value }))));
    const list: Collector[] = [
      perService('bulkhead_calls_total', 'Calls a helper answered (or that failed because it exited), direct and routed.', 'counter', (s) => this.tallies.get(s.name)?.calls ?? 0),
      byLabel('bulkhead_call_errors_total', 'Calls that failed, by the error code the caller got (direct and routed).', 'code', () => [...this.tallies].map(([service, tally]): [string, ReadonlyMap<string, number>] => [service, tally.errors])),
      collector('bulkhead_call_duration_seconds', 'Call duration: from the broker sending the call to the answer arriving (calls sent after the first render or while observed); on a direct channel, from the helper reading the call to its answer.', 'histogram', () => this.histogramSamples()),
      perService('bulkhead_calls_in_flight', 'Calls in flight to the running helper (the broker\'s own and routed ones).', 'gauge', (s) => s.inFlight),
      fromMap('bulkhead_launches_total', 'Helper processes launched.', this.launches),
      fromMap('bulkhead_restarts_total', 'Launches after the service\'s first one (relaunches after an exit, a crash or a restart).', this.restarts),
      byLabel('bulkhead_crashes_total', 'Helper exits the broker did not ask for, by reason.', 'reason', () => this.crashes),
      perService('bulkhead_resident_memory_bytes', 'Resident memory of the running helper\'s process tree.', 'gauge', (s) => s.rssBytes ?? 0),
      collector('bulkhead_cpu_seconds_total', 'CPU time (user + system) of the service\'s helper process trees, sampled at each scrape.', 'counter', () => this.cpuSamples()),
      perService('bulkhead_up', '1 when a helper of the service is running, else 0.', 'gauge', (s) => (s.state === 'running' ? 1 : 0)),
      perService('bulkhead_watchdog_misses_total', 'Helpers the watchdog found hung (no watchdog in this version: always 0).', 'counter', () => 0),
    ];
    if (this.daemonMetrics) {
      list.push(
        collector('bulkhead_daemon_connections_total', 'Client connections the daemon accepted (authenticated and authorised).', 'counter', () => [{ labels: {}, value: this.connectionsTotal }]),
        collector('bulkhead_daemon_connections_open', 'Client connections open now.', 'gauge', () => [{ labels: {}, value: this.connectionsOpen }]),
        collector('bulkhead_daemon_refusals_total', 'Clients the daemon refused, by the error code they got.', 'counter', () => [...this.refusals].map(([reason, value]) => ({ labels: { reason }, value }))),
      );
    }
    return list;
  }

  private histogramSamples(): Sample[] {
    const samples: Sample[] = [];
    for (const [service, h] of this.durations) {
      let cumulative = 0;
      CALL_DURATION_BUCKETS.forEach((le, i) => {
        cumulative += h.buckets[i]!;
        samples.push({ metricName: 'bulkhead_call_duration_seconds_bucket', labels: { service, le }, value: cumulative });
      });
      samples.push({ metricName: 'bulkhead_call_duration_seconds_bucket', labels: { service, le: '+Inf' }, value: h.count });
      samples.push({ metricName: 'bulkhead_call_duration_seconds_sum', labels: { service }, value: h.sum });
      samples.push({ metricName: 'bulkhead_call_duration_seconds_count', labels: { service }, value: h.count });
    }
    return samples;
  }

  private cpuSamples(): Sample[] {
    return this.snapshot.map((s) => {
      const cpu = this.cpuOf(s.name);
      if (cpu.pid !== null) {
        const stats = this.sampler.sample(cpu.pid);
        // A tree's CPU only grows; a smaller reading is a process of it that exited (keep the larger).
        if (stats !== undefined) cpu.lastMs = Math.max(cpu.lastMs, stats.cpuMs);
      }
      return { labels: { service: s.name }, value: (cpu.closedMs + cpu.lastMs) / 1000 };
    });
  }
}

function collector(name: string, help: string, type: Collector['type'], values: () => Sample[]): Collector {
  return {
    name,
    help,
    type,
    aggregator: 'sum',
    get: () => ({ name, help, type, aggregator: 'sum', values: values() }),
    reset: () => undefined,
  };
}
