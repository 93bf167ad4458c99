/**
 * The broker's table of registered services: for each name its
 * {@link ServiceSupervisor}, its {@link LaunchAutomation} (run at load, keep
 * alive, idle exit, schedule, watched paths) and the manifest it was
 * registered with. Installing, re-recording and removing keep the three in
 * step; looking up a name that is not registered is `ERR_UNKNOWN_SERVICE`.
 * @module
 */
import { bulkheadError } from '../errors.js';
import type { Clock } from './clock.js';
import { LaunchAutomation, type AutomationHooks } from './launch-automation.js';
import type { ServiceManifest } from './manifest.js';
import type { PreparedService } from './reload-plan.js';
import type { ScheduleStore } from './schedule-store.js';
import type { ServiceStatus, ServiceSupervisor } from './service-supervisor.js';

/** What a {@link ServiceRegistry} needs to start each service's launch policies. */
export interface ServiceRegistryOptions {
  clock: Clock;
  /** Where schedules keep their last run (handed only to services that have a schedule). */
  store: ScheduleStore;
  /** Absolute app root (watched paths are resolved against it). */
  root: string;
  hooks: AutomationHooks;
}

/** The registered services of one broker, by name. */
export class ServiceRegistry {
  private readonly services = new Map<string, ServiceSupervisor>();
  private readonly automations = new Map<string, LaunchAutomation>();
  private readonly registered = new Map<string, ServiceManifest>();

  constructor(private readonly options: ServiceRegistryOptions) {}

  /** Every registered supervisor by name (reload plans read it). */
  get supervisors(): ReadonlyMap<string, ServiceSupervisor> {
    return this.services;
  }

  /** Every registered manifest by name (reload plans read it). */
  get manifests(): ReadonlyMap<string, ServiceManifest> {
    return this.registered;
  }

  /** The supervisor of a service, or undefined when none is registered by that name. */
  find(name: string): ServiceSupervisor | undefined {
    return this.services.get(name);
  }

  /** The supervisor of a registered service. @throws BulkheadError `ERR_UNKNOWN_SERVICE` naming the registered ones */
  supervisor(name: string): ServiceSupervisor {
    const supervisor = this.services.get(name);
    if (supervisor === undefined) {
      const known = [...this.services.keys()];
      throw bulkheadError('ERR_UNKNOWN_SERVICE', `No service named "${name}" is registered${known.length > 0 ? ` (registered: ${known.join(', ')})` : ''}; register it first.`, { service: name });
    }
    return supervisor;
  }

  /** A service's status, with its schedule and idle-exit deadline. @throws BulkheadError `ERR_UNKNOWN_SERVICE` */
  status(name: string): ServiceStatus {
    const automation = this.automations.get(name);
    return { ...this.supervisor(name).status(), schedule: automation?.scheduleStatus() ?? null, idleExitAt: automation?.idleExitDeadline ?? null };
  }

  /** Registers a prepared service with its supervisor and starts its launch policies; if they do not start, nothing stays registered. */
  install(prepared: PreparedService, supervisor: ServiceSupervisor): void {
    const { manifest } = prepared.resolved;
    const automation = this.automate(supervisor, prepared);
    this.services.set(manifest.name, supervisor);
    this.automations.set(manifest.name, automation);
    this.registered.set(manifest.name, manifest);
    try {
      automation.start();
    } catch (err) {
      automation.stop();
      this.services.delete(manifest.name);
      this.automations.delete(manifest.name);
      this.registered.delete(manifest.name);
      throw err;
    }
  }

  /** Records a registered service's new manifest and restarts its launch policies (its supervisor already has the manifest). */
  recordManifest(prepared: PreparedService): void {
    const name = prepared.resolved.manifest.name;
    this.automations.get(name)?.stop();
    this.registered.set(name, prepared.resolved.manifest);
    const automation = this.automate(this.supervisor(name), prepared);
    this.automations.set(name, automation);
    automation.start();
  }

  /**
   * Unregisters a service and stops its launch policies; its supervisor is returned, still running, for the caller to close.
   * @throws BulkheadError `ERR_UNKNOWN_SERVICE`
   */
  remove(name: string): ServiceSupervisor {
    const supervisor = this.supervisor(name);
    this.automations.get(name)?.stop();
    this.automations.delete(name);
    this.services.delete(name);
    this.registered.delete(name);
    return supervisor;
  }

  /** Stops every service's launch policies (the broker is closing); the services stay registered. */
  stopAutomations(): void {
    for (const automation of this.automations.values()) automation.stop();
  }

  private automate(supervisor: ServiceSupervisor, { resolved, source }: PreparedService): LaunchAutomation {
    const { clock, store, root, hooks } = this.options;
    return new LaunchAutomation({
      supervisor,
      policy: resolved.manifest.launch ?? {},
      clock,
      store: resolved.manifest.launch?.schedule === undefined ? undefined : store,
      root,
      source,
      hooks,
    });
  }
}
