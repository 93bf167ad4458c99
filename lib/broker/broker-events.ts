/**
 * What a Broker tells its user: the events it emits (state changes,
 * launches, exits, helper output, jobs, refusals, calls), the shape of one
 * output line, and what a reload changed. Split from broker.ts so the
 * broker's observable surface reads on one page (the daemon's log, the
 * metrics and the dashboard all listen here), and how a supervisor's
 * reports become those events.
 * @module
 */
import type { ExitInfo } from './exit-report.js';
import type { JobRunResult } from './job-runner.js';
import type { ServiceState } from './service-state.js';
import type { CallRecord } from './diagnostics.js';
import type { CallBatch } from '../connection/call-meter.js';
import type { SupervisorContext } from './supervisor-types.js';

/** What `Broker.reload` changed. */
export interface ReloadResult {
  /** Services registered anew. */
  added: string[];
  /** Services stopped and unregistered. */
  removed: string[];
  /** Services whose manifest or profile document changed: restarted without downtime (or re-registered when their protocol changed; or, when only `clients` changed, updated with their helper kept running). */
  replaced: string[];
  /**
   * Services whose sandbox profile file was edited in place (same name, other content) since it was read; each is in
   * `replaced` too. In `relaunched` as well when its helper ran: it now runs under the edited profile; otherwise its
   * next launch does.
   */
  editedProfiles: string[];
  /** Services of `replaced` whose running helper this reload replaced by a new one (the others were not running, or only their `clients` changed). */
  relaunched: string[];
}

/** One line a helper printed. */
export interface LogLine {
  service: string;
  pid: number;
  stream: 'stdout' | 'stderr';
  line: string;
}

/** Events of a `Broker`. */
export interface BrokerEvents {
  /** A service changed state. */
  state: [service: string, state: ServiceState, previous: ServiceState];
  /** A helper was spawned. */
  launch: [service: string, pid: number];
  /** A prewarmed spare helper is waiting to take over the service (launch.prewarm). */
  prewarmed: [service: string, pid: number];
  /** A prewarmed spare was refused and killed: its hello did not match, or it sent something before activation. */
  spareRefused: [service: string, pid: number, reason: string];
  /**
   * A prewarmed spare (`pid`) took over new calls from the helper `replacedPid`, whose channel closed
   * without the broker asking; the broker killed that helper. Its `exit` follows, then the spare's
   * `launch` (docs/launch-policies.md, "Prewarm").
   */
  takeover: [service: string, pid: number, replacedPid: number];
  /** A helper exited. */
  exit: [service: string, info: ExitInfo];
  /** A helper printed a line on stdout or stderr. */
  log: [line: LogLine];
  /** A scheduled run finished or was skipped. */
  job: [service: string, result: JobRunResult];
  /** A watched path of a service changed. */
  watch: [service: string, path: string, event: string];
  /** A caller was refused (a helper calling a service outside its `connects`). */
  denied: [denial: { client: string; service: string; code: string }];
  /** Removing an exited helper's scratch dir or cgroup failed, or its mm holder did not die (also sent as a `log` line on stderr). */
  cleanupFailed: [service: string, pid: number, message: string];
  /**
   * A call to a helper settled: answered, or failed because the helper exited (lib/broker/diagnostics.ts).
   * Reported for calls sent while the broker had a `call` listener (or a `bulkhead:call`
   * subscriber, or after its metrics' first render): untimed calls are only counted.
   */
  call: [service: string, call: CallRecord];
  /** Calls a helper answered on its direct channels (which the broker never sees), as its batched report. */
  calls: [service: string, batch: CallBatch];
  [key: string]: unknown[];
}

/** Emits one broker event (the Broker's protected `emit`, handed over as a function). */
export type BrokerEmit = <K extends keyof BrokerEvents & string>(event: K, ...args: BrokerEvents[K]) => void;

/** The broker-wide half of a SupervisorContext: what a supervisor reports, as broker events. */
export type SupervisorEventHooks = Pick<SupervisorContext, 'stateChanged' | 'launched' | 'prewarmed' | 'spareRefused' | 'exited' | 'tookOver' | 'log' | 'cleanupFailed' | 'denied' | 'callSettled' | 'callBatch'>;

/** Turns every supervisor's reports into the broker's events (a failed cleanup is also a stderr `log` line). */
export function supervisorEventHooks(emit: BrokerEmit): SupervisorEventHooks {
  return {
    stateChanged: (name, state, previous) => emit('state', name, state, previous),
    launched: (name, pid) => emit('launch', name, pid),
    prewarmed: (name, pid) => emit('prewarmed', name, pid),
    spareRefused: (name, pid, reason) => {
      emit('spareRefused', name, pid, reason);
      emit('log', { service: name, pid, stream: 'stderr', line: `bulkhead: prewarmed spare refused: ${reason}` });
    },
    exited: (name, info) => emit('exit', name, info),
    tookOver: (name, pid, replacedPid) => emit('takeover', name, pid, replacedPid),
    log: (service, stream, line, pid) => emit('log', { service, pid, stream, line }),
    cleanupFailed: (service, pid, message) => {
      emit('cleanupFailed', service, pid, message);
      emit('log', { service, pid, stream: 'stderr', line: `bulkhead: cleanup after exit failed: ${message}` });
    },
    denied: (caller, target) => emit('denied', { client: caller, service: target, code: 'ERR_NOT_PERMITTED' }),
    callSettled: (name, method, seconds, code) => emit('call', name, { method, seconds, code }),
    callBatch: (name, batch) => emit('calls', name, batch),
  };
}
