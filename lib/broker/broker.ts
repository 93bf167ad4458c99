/**
 * The broker facade (launchd's role for one app): register services, hand out
 * connections, report status, stop everything on close. The engine lives in
 * {@link ServiceSupervisor}; this file only registers, routes and reloads.
 * Manifests are resolved in service-preparation.ts, the table of registered
 * services is service-registry.ts; the events it emits are declared in
 * broker-events.ts.
 * @module
 */
import { bulkheadError } from '../errors.js';
import { Connection, CONNECT_OPTION_NAMES, type ConnectionOptions } from '../connection/connection.js';
import type { AnyProtocol, ProtocolShape } from '../protocol/types.js';
import { configureUidPool, startSandboxHost } from '../sandbox/index.js';
import { Emitter } from '../util/emitter.js';
import type { Clock } from './clock.js';
import { ScheduleStore } from './schedule-store.js';
import type { ServiceManifest } from './manifest.js';
import { runtimeReadPaths } from './package-paths.js';
import { planReload, type PreparedService } from './reload-plan.js';
import { PeerLinks } from './peer-links.js';
import { applyReload } from './reload-transaction.js';
import { ServiceSupervisor, type ServiceStatus } from './service-supervisor.js';
import { ServiceRegistry } from './service-registry.js';
import { readBrokerConfig, reloadServices, resolveBrokerOptions, type BrokerConfig, type BrokerOptions } from './broker-options.js';
import { observeBroker } from './diagnostics.js';
import { registeredService, type RegisteredService } from './typed-services.js';
import { BrokerMetrics } from './metrics.js';
import { supervisorEventHooks, type BrokerEvents, type ReloadResult } from './broker-events.js';
import { prepareService, prepareServices, type PrepareContext } from './service-preparation.js';
import { checkOptionsObject } from '../util/options.js';
import { BrokerEndpoints } from './broker-endpoints.js';
import type { Endpoint } from '../protocol/endpoint-keyword.js';

export { readBrokerConfig, type BrokerConfig, type BrokerOptions } from './broker-options.js';
export type { BrokerEvents, LogLine, ReloadResult } from './broker-events.js';

/**
 * Owns a set of helper services: launches them on demand, relaunches them
 * after a crash (throttled, with a crash-loop breaker), and stops them all on
 * {@link Broker.close}.
 */
export class Broker extends Emitter<BrokerEvents> {
  /** Absolute app root. */
  readonly root: string;
  private readonly protocolsDir: string;
  private readonly profilesDir: string;
  /** Largest frame body this broker accepts or sends, in bytes. */
  readonly maxFrameBytes: number;
  private readonly nodePath: string;
  /** Each registered service's supervisor, launch policies and manifest. */
  private readonly services: ServiceRegistry;
  private readonly clock: Clock;
  private readonly verifyCode: BrokerOptions['verifyCode'];
  private readonly implicitReads = runtimeReadPaths();
  private readonly mode: 'embedded' | 'daemon';
  /** Direct helper-to-helper channels (`connects`). */
  private readonly peers: PeerLinks;
  private closing: Promise<void> | undefined;
  private reloading: Promise<unknown> = Promise.resolve();
  /** Every supervisor's reports, as this broker's events. */
  private readonly eventHooks = supervisorEventHooks((event, ...args) => this.emit(event, ...args));

  constructor(options: BrokerOptions = {}) {
    super();
    const o = resolveBrokerOptions(options);
    this.root = o.root;
    this.protocolsDir = o.protocolsDir;
    this.profilesDir = o.profilesDir;
    this.maxFrameBytes = o.maxFrameBytes;
    if (o.uidRange !== undefined) configureUidPool(o.uidRange);
    this.nodePath = o.nodePath;
    this.clock = o.clock;
    this.verifyCode = o.verifyCode;
    this.services = new ServiceRegistry({
      clock: this.clock,
      store: new ScheduleStore(o.stateDir),
      root: this.root,
      hooks: {
        jobResult: (service, result) => this.emit('job', service, result),
        pathChanged: (service, path, event) => this.emit('watch', service, path, event),
      },
    });
    this.mode = o.mode;
    this.peers = new PeerLinks({
      lookup: (name) => this.services.find(name),
      connectsOf: (name) => this.services.manifests.get(name)?.connects ?? (this.services.manifests.has(name) ? [] : undefined),
      denied: (caller, target) => this.eventHooks.denied(caller, target),
      direct: o.directConnects,
    });
    // Reaps a dead broker's scratch dirs and cgroups (launches await it), and tests whether helpers may get the caches.
    startSandboxHost(this.nodePath);
    this.metricsRecorder = new BrokerMetrics({ status: () => this.status() });
    observeBroker(this, this.metricsRecorder);
    this.endpoints = new BrokerEndpoints({ manifest: (n) => this.services.manifests.get(n), supervisor: (n) => this.services.find(n), now: () => this.clock.now() });
    // A tripped crash-loop breaker kills the service's endpoints (a crash and its relaunch do not).
    this.on('state', (name, state) => {
      if (state === 'failed') this.endpoints.died(name, 'failed');
    });
  }

  /** @internal The endpoint table and its checks (broker-endpoints.ts); the daemon admits endpoint holders through it. */
  readonly endpoints: BrokerEndpoints;

  /**
   * Opens a connection from an endpoint a service minted for the embedding app (a field typed
   * `Endpoint<'S'>`): like `connect(S)` until S is stopped, removed or fails (then ERR_ENDPOINT_DEAD).
   * @throws BulkheadError `ERR_ENDPOINT_INVALID` (malformed, forged, expired), `ERR_ENDPOINT_NOT_YOURS` (bound to another receiver), `ERR_ENDPOINT_DEAD`, `ERR_CLOSED`, `ERR_INVALID_OPTION`
   */
  connectEndpoint<P extends ProtocolShape = AnyProtocol>(endpoint: Endpoint, options: ConnectionOptions = {}): Connection<P> {
    this.checkOpen();
    checkOptionsObject(options, CONNECT_OPTION_NAMES, 'connectEndpoint(endpoint, options)');
    return this.endpoints.connect<P>(endpoint, options);
  }

  /** What {@link Broker.metrics} renders; the daemon records its connections here too. */
  readonly metricsRecorder: BrokerMetrics;

  /**
   * Prometheus metrics of every service (calls, errors by code, durations,
   * launches, restarts, crashes by reason, memory, CPU) in the text format
   * 0.0.4 ({@link METRICS_CONTENT_TYPE}); see lib/broker/metrics.ts.
   */
  metrics(): Promise<string> {
    return this.metricsRecorder.render();
  }

  /**
   * Creates a broker from a JSON config file `{ root?, maxFrameBytes?, services: [manifest, ...] }`
   * and registers every service in it.
   * @throws BulkheadError `ERR_INVALID_MANIFEST` naming the file and the JSON pointer of the bad field
   */
  static fromConfig(path: string, options: Omit<BrokerOptions, 'root'> = {}): Broker {
    const { file, root, config } = readBrokerConfig(path);
    const broker = new Broker({ ...options, root, ...(config.maxFrameBytes === undefined ? {} : { maxFrameBytes: config.maxFrameBytes }) });
    try {
      config.services.forEach((manifest, index) => broker.registerFrom(manifest, `${file} /services/${index}`));
    } catch (err) {
      // A runAtLoad service registered before the bad one must not outlive this failure.
      void broker.close();
      throw err;
    }
    return broker;
  }

  /**
   * Checks a config file exactly as {@link Broker.fromConfig} would (manifests,
   * entries, protocols, profiles, schedules), registering and launching nothing:
   * the daemon runs it before it creates any key material.
   * @throws BulkheadError `ERR_INVALID_MANIFEST`, `ERR_INVALID_PROTOCOL`, `ERR_INVALID_PROFILE`, ... naming the file and field
   */
  static checkConfig(path: string): void {
    const { file, root, config } = readBrokerConfig(path);
    const o = resolveBrokerOptions({ root, ...(config.maxFrameBytes === undefined ? {} : { maxFrameBytes: config.maxFrameBytes }) });
    prepareServices(config.services, file, { root: o.root, protocolsDir: o.protocolsDir, profilesDir: o.profilesDir, clock: o.clock });
  }

  /** @internal Registers with a source label for messages (config file and pointer). */
  registerFrom(input: ServiceManifest, source: string): void {
    this.registerChecked(input, source);
  }

  /**
   * Registers a service. Nothing is launched until the first call.
   * Pass the protocol's generated type as `P` to get a handle whose
   * `connect()` is typed by it, tying the name to its protocol once.
   * @returns a {@link RegisteredService} to connect with
   * @throws BulkheadError `ERR_INVALID_MANIFEST`, `ERR_UNKNOWN_PROTOCOL`, `ERR_INVALID_PROTOCOL`, `ERR_CLOSED`
   */
  register<P extends ProtocolShape = AnyProtocol>(manifest: ServiceManifest): RegisteredService<P> {
    this.registerChecked(manifest, 'register()');
    return registeredService<P>(this, manifest.name);
  }

  /**
   * Opens a connection to a registered service. Nothing is launched until the first call.
   * Pass the protocol's generated type as `P` for typed calls.
   * @throws BulkheadError `ERR_UNKNOWN_SERVICE`, `ERR_CLOSED`, `ERR_INVALID_OPTION` (an unknown option key included)
   */
  connect<P extends ProtocolShape = AnyProtocol>(name: string, options: ConnectionOptions = {}): Connection<P> {
    this.checkOpen();
    checkOptionsObject(options, CONNECT_OPTION_NAMES, `connect("${name}", options)`);
    const supervisor = this.supervisor(name);
    const timeoutMs = options.timeoutMs ?? supervisor.defaultTimeoutMs;
    const connection = new Connection<P>(supervisor, timeoutMs === undefined ? {} : { timeoutMs });
    supervisor.attach(connection);
    return connection;
  }

  /** Status of one service. @throws BulkheadError `ERR_UNKNOWN_SERVICE` */
  status(name: string): ServiceStatus;
  /** Status of every service. */
  status(): ServiceStatus[];
  status(name?: string): ServiceStatus | ServiceStatus[] {
    if (name !== undefined) return this.services.status(name);
    return [...this.services.supervisors.keys()].map((n) => this.services.status(n));
  }

  /** Names of the registered services. */
  serviceNames(): string[] {
    return [...this.services.supervisors.keys()];
  }

  /** Launches a service now if it is not running (or waits for the running one to be ready). */
  async kickstart(name: string): Promise<void> {
    await this.supervisor(name).acquire();
  }

  /** Stops a service's helper gracefully; resolves once it exited and its sandbox was torn down. The next call launches it again. */
  async stop(name: string): Promise<void> {
    const supervisor = this.supervisor(name);
    this.endpoints.died(name, 'stopped');
    await supervisor.stop();
  }

  /** Sends a signal to a service's helper; returns the pid signalled, or undefined when none was running. */
  kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): number | undefined {
    return this.supervisor(name).kill(signal);
  }

  /**
   * Removes a service: stops its helper gracefully and invalidates its
   * connections (ERR_CLOSED).
   * @throws BulkheadError `ERR_UNKNOWN_SERVICE`
   */
  async unregister(name: string): Promise<void> {
    const supervisor = this.services.remove(name);
    this.endpoints.died(name, 'removed');
    // Direct channels to (and from) it end now, not once its helper finished stopping.
    this.peers.recheck();
    await supervisor.close();
  }

  /** The manifest a service was registered with. @throws BulkheadError `ERR_UNKNOWN_SERVICE` */
  manifest(name: string): ServiceManifest {
    this.supervisor(name);
    return this.services.manifests.get(name)!;
  }

  /** @internal The supervisor of a service, for the daemon's routing. */
  supervisorOf(name: string): ServiceSupervisor {
    return this.supervisor(name);
  }

  /** Clears a failed service (after its crash-loop breaker tripped) so calls launch it again. */
  reset(name: string): void {
    this.supervisor(name).reset();
  }

  /**
   * Stops every helper gracefully (goodbye → SIGTERM → SIGKILL, per each
   * service's exitTimeoutMs) and invalidates every connection. Idempotent.
   */
  close(): Promise<void> {
    this.services.stopAutomations();
    this.closing ??= Promise.all([...this.services.supervisors.values()].map((s) => s.close())).then(() => {
      this.removeAllListeners();
    });
    return this.closing;
  }

  /** `await using broker = new Broker(...)` closes it at scope end. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private registerChecked(input: ServiceManifest, source: string): void {
    this.checkOpen();
    const prepared = prepareService(input, source, this.where);
    if (this.services.supervisors.has(prepared.resolved.manifest.name)) {
      throw bulkheadError('ERR_INVALID_MANIFEST', `Service "${prepared.resolved.manifest.name}" is already registered (${source}); names must be unique.`, { source, pointer: '/name' });
    }
    this.install(prepared);
  }

  /**
   * Restarts a service without downtime: a new helper is launched while the
   * old one serves; new calls go to the new one once it is ready; the old one
   * finishes its calls in flight (within exitTimeoutMs) and is stopped. A
   * service that is not running is just launched; a failed one is reset first.
   * @throws BulkheadError `ERR_UNKNOWN_SERVICE`, or the new helper's launch failure (the old one keeps serving)
   */
  async restart(name: string): Promise<void> {
    await this.supervisor(name).restart();
  }

  /**
   * Applies a new config atomically: every manifest is checked first (schema,
   * entry, protocol, profile, schedule, watched paths); if any is bad nothing
   * changes and the error says which. Then the new helpers of changed services
   * that run are started beside the old ones; if one does not start, the
   * others are killed and nothing changed (ERR_RELOAD_FAILED). Otherwise all
   * switch at once: changed services restart without downtime (a changed
   * protocol re-registers the service: its connections are invalidated),
   * removed ones are stopped, new ones registered (see reload-transaction.ts).
   * @param config - a config file path or its parsed contents (`services` is what counts)
   * @throws BulkheadError `ERR_INVALID_MANIFEST` and the other registration errors, or `ERR_RELOAD_FAILED`; in every case nothing changed
   */
  reload(config: string | Pick<BrokerConfig, 'services'>): Promise<ReloadResult> {
    // One reload at a time: each is checked and planned against what the previous one left.
    const run = this.reloading.then(() => this.reloadNow(config));
    this.reloading = run.catch(() => undefined);
    return run;
  }

  private async reloadNow(config: string | Pick<BrokerConfig, 'services'>): Promise<ReloadResult> {
    this.checkOpen();
    const { services, label } = reloadServices(config);
    const wanted = prepareServices(services, label, this.where);
    const plan = planReload(this.services.manifests, this.services.supervisors, wanted);
    // A channel the new config withdraws ends at once (its caller's next call is refused or re-brokered).
    const recheck = <T>(result: T): T => {
      this.peers.recheck();
      return result;
    };
    return applyReload(plan, wanted, {
      supervisor: (name) => this.supervisor(name),
      create: (prepared) => this.createSupervisor(prepared),
      install: (prepared, supervisor) => this.install(prepared, supervisor),
      recordManifest: (prepared) => this.services.recordManifest(prepared),
      unregister: (name) => this.unregister(name),
      closedError: () => (this.closing === undefined ? undefined : bulkheadError('ERR_CLOSED', 'This broker was closed during the reload; create a new Broker.')),
      log: (service, line) => this.emit('log', { service, pid: this.services.find(service)?.process?.pid ?? -1, stream: 'stderr', line }),
    }).then(recheck);
  }

  /** Where manifests' names are looked up (service-preparation.ts). */
  private get where(): PrepareContext {
    return { root: this.root, protocolsDir: this.protocolsDir, profilesDir: this.profilesDir, clock: this.clock };
  }

  /** Registers a prepared service (with a supervisor made for it, or a new one) and starts its launch policies. */
  private install(prepared: PreparedService, supervisor = this.createSupervisor(prepared)): void {
    this.services.install(prepared, supervisor);
  }

  /** A supervisor for a prepared service, wired to this broker's events; not registered. */
  private createSupervisor(prepared: PreparedService): ServiceSupervisor {
    return new ServiceSupervisor(prepared.resolved, {
      mode: this.mode, nodePath: this.nodePath, maxFrameBytes: this.maxFrameBytes, implicitReads: this.implicitReads,
      ...this.eventHooks, ...this.metricsRecorder.callHooks, verifyCode: this.verifyCode, lookup: (name) => this.services.find(name),
      peers: this.peers, serviceNames: () => this.services.supervisors.keys(),
      brokerRequest: (caller, connects, method, params, grants) => this.endpoints.request(caller, connects, method, params, grants),
    });
  }

  private supervisor(name: string): ServiceSupervisor {
    return this.services.supervisor(name);
  }

  private checkOpen(): void {
    if (this.closing !== undefined) throw bulkheadError('ERR_CLOSED', 'This broker is closed; create a new Broker.');
  }
}
