/**
 * A reload applied as one transaction ("prepare all, then commit all"). Every
 * step that can fail happens first, beside what runs: each changed service
 * that runs gets a new helper of its new manifest, started next to the old one
 * and ready; a service whose protocol changed gets a new supervisor whose
 * helper is started. If any of them fails, the others are killed and nothing
 * changed: every service keeps its manifest, its helper and its pid, none is
 * added or removed, and the error (ERR_RELOAD_FAILED) names the service and
 * why. Otherwise everything is committed at once, synchronously: new calls go
 * to the new helpers, the old ones drain and stop (a zero-downtime restart),
 * removed services are stopped, new ones registered. A service whose only
 * change is `clients` gets its new manifest without a restart. A service whose
 * profile file was edited (reload-plan.ts) is a changed one: the same rules.
 * @module
 */
import { bulkheadError, isBulkheadError, type BulkheadError } from '../errors.js';
import type { ReloadResult } from './broker-events.js';
import type { PreparedService, ReloadPlan } from './reload-plan.js';
import { launchSpec, type ServiceSupervisor, type StagedHelper } from './service-supervisor.js';

/** What a reload needs from its broker. */
export interface ReloadHost {
  /** The registered supervisor of a service. */
  supervisor(name: string): ServiceSupervisor;
  /** A new supervisor for a prepared service, not registered yet. */
  create(prepared: PreparedService): ServiceSupervisor;
  /** Registers a supervisor made by create() and starts its launch policies. */
  install(prepared: PreparedService, supervisor: ServiceSupervisor): void;
  /** Records a registered service's new manifest and restarts its launch policies (its supervisor already has it). */
  recordManifest(prepared: PreparedService): void;
  /** Stops and unregisters a service; the table changes before the first await. */
  unregister(name: string): Promise<void>;
  /** The broker's ERR_CLOSED once it is closing, else undefined. */
  closedError(): BulkheadError | undefined;
  /** A line for the broker's log (the `log` event), about one service. */
  log(service: string, line: string): void;
}

/** What the prepare step made for one service. */
type Prepared =
  | { kind: 'staged'; name: string; staged: StagedHelper }
  | { kind: 'fresh'; name: string; supervisor: ServiceSupervisor };

/** Why one preparation failed. */
interface Failure { name: string; error: BulkheadError }

/**
 * Applies a checked plan to a broker, all or nothing.
 * @throws BulkheadError `ERR_RELOAD_FAILED` when a new helper did not start (nothing changed), `ERR_CLOSED`
 */
export async function applyReload(plan: ReloadPlan, wanted: ReadonlyMap<string, PreparedService>, host: ReloadHost): Promise<ReloadResult> {
  const prepared: Prepared[] = [];
  const failures: Failure[] = [];
  const prepare = async (name: string, step: () => Promise<Prepared | undefined>): Promise<void> => {
    try {
      const made = await step();
      if (made !== undefined) prepared.push(made);
    } catch (err) {
      failures.push({ name, error: isBulkheadError(err) ? err : bulkheadError('ERR_LAUNCH_FAILED', `${name}: ${String(err)}`, {}, err) });
    }
  };
  await Promise.all([
    ...plan.replaced.map((name) => prepare(name, async () => {
      const staged = await host.supervisor(name).stage(launchSpec(wanted.get(name)!.resolved));
      return staged === undefined ? undefined : { kind: 'staged', name, staged };
    })),
    ...plan.reregistered.filter((name) => runsNow(host.supervisor(name)) && !isWholeProcessJob(wanted.get(name)!)).map((name) => prepare(name, async () => {
      const supervisor = host.create(wanted.get(name)!);
      try {
        await supervisor.acquire();
      } catch (err) {
        await supervisor.close();
        throw err;
      }
      return { kind: 'fresh', name, supervisor };
    })),
  ]);
  // A new helper that died after it was ready fails the reload too: checked in the same tick as the commit.
  for (const made of prepared) {
    const helper = made.kind === 'staged' ? made.staged.launched.helper : made.supervisor.process;
    if (helper === undefined || helper.isExited) failures.push({ name: made.name, error: bulkheadError('ERR_LAUNCH_FAILED', `${made.name}'s new helper exited after it was ready, before the reload could switch to it.`, { service: made.name }) });
  }
  const closed = host.closedError();
  if (failures.length > 0 || closed !== undefined) {
    await rollBack(prepared, host);
    if (closed !== undefined) throw closed;
    throw reloadFailed(failures, plan, host);
  }
  // Commit: synchronous from here to the end of the loop, so nothing runs half-reloaded.
  const staged = new Map(prepared.flatMap((made) => (made.kind === 'staged' ? [[made.name, made.staged] as const] : [])));
  const fresh = new Map(prepared.flatMap((made) => (made.kind === 'fresh' ? [[made.name, made.supervisor] as const] : [])));
  for (const name of plan.replaced) {
    const next = wanted.get(name)!;
    const helper = staged.get(name);
    if (helper === undefined) host.supervisor(name).update(next.resolved);
    else host.supervisor(name).commit(helper, 'reloaded');
    host.recordManifest(next);
  }
  for (const name of plan.updated) {
    // Only `clients` changed: the helper keeps running; the daemon's re-check ends what the new list withdraws.
    const next = wanted.get(name)!;
    host.supervisor(name).update(next.resolved);
    host.recordManifest(next);
  }
  const stopping = [...plan.removed, ...plan.reregistered].map((name) => host.unregister(name));
  for (const name of plan.reregistered) host.install(wanted.get(name)!, fresh.get(name) ?? host.create(wanted.get(name)!));
  for (const name of plan.added) host.install(wanted.get(name)!, host.create(wanted.get(name)!));
  await Promise.all(stopping);
  return {
    added: plan.added, removed: plan.removed, replaced: [...plan.replaced, ...plan.updated, ...plan.reregistered].sort(),
    editedProfiles: plan.editedProfiles, relaunched: [...staged.keys(), ...fresh.keys()].sort(),
  };
}

/** True when the service has a helper serving (a reload replaces it before it commits). */
function runsNow(supervisor: ServiceSupervisor): boolean {
  return supervisor.currentState === 'running';
}

/** A whole-process scheduled job runs when its schedule says, not because a reload happened. */
function isWholeProcessJob({ resolved }: PreparedService): boolean {
  const schedule = resolved.manifest.launch?.schedule;
  return schedule !== undefined && schedule.method === undefined;
}

/** Kills every new helper the prepare step started; resolves once they are gone. */
async function rollBack(prepared: readonly Prepared[], host: ReloadHost): Promise<void> {
  await Promise.all(prepared.map((made) => (made.kind === 'staged' ? host.supervisor(made.name).abandon(made.staged) : made.supervisor.close())));
}

/** The error of a rolled-back reload, naming the first service (in plan order) whose new helper failed; logged for it. */
function reloadFailed(failures: readonly Failure[], plan: ReloadPlan, host: ReloadHost): BulkheadError<'ERR_RELOAD_FAILED'> {
  const order = [...plan.replaced, ...plan.reregistered];
  const first = [...failures].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name))[0]!;
  const cause = first.error;
  const others = failures.filter((f) => f.name !== first.name).map((f) => f.name);
  const data = cause.data as Record<string, unknown>;
  const error = bulkheadError(
    'ERR_RELOAD_FAILED',
    `Reload rolled back: ${first.name}'s new helper did not start (${cause.code}: ${cause.message})${others.length > 0 ? `; nor did ${others.join(', ')}'s` : ''}. Nothing changed: every service keeps its old manifest and helper, none was added or removed. Fix ${first.name} and reload again.`,
    {
      service: first.name, cause: cause.code, failed: failures.map((f) => f.name).sort(),
      ...(data['thrown'] === undefined ? {} : { thrown: data['thrown'] as string | null }),
      ...(data['exitCode'] === undefined ? {} : { exitCode: data['exitCode'] as number | null }),
      ...(data['signal'] === undefined ? {} : { signal: data['signal'] as string | null }),
      ...(data['stderrTail'] === undefined ? {} : { stderrTail: data['stderrTail'] as string[] }),
    },
    cause,
  );
  host.log(first.name, `bulkhead: ${error.message}`);
  return error;
}
