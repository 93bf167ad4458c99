/**
 * The shapes a service supervisor shares with its broker: the status snapshot,
 * the broker context it is given, the resolved service it runs, its events.
 * @module
 */
import type { CallTally } from './call-tally.js';
import type { EndpointGrants } from './endpoint-grants.js';
import type { PeerLinks } from './peer-links.js';
import type { SerializedError } from '../errors.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import type { CallBatch } from '../connection/call-meter.js';
import type { EnforcementReport, SandboxProfileRef } from '../sandbox/index.js';
import type { ExitInfo } from './exit-report.js';
import type { JobStatus } from './job-runner.js';
import type { ServiceManifest } from './manifest.js';
import type { RoutableService } from './route.js';
import type { ServiceState } from './service-state.js';

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
  /**
   * The services the running helper calls (`connects`) and the path each
   * takes: `direct` (a channel of its own, see docs/wire.md "Helper-to-helper
   * hand-off") or `routed` (through the broker). Empty until its first call.
   */
  outbound: Record<string, 'direct' | 'routed'>;
  /**
   * How long the running helper's event loop has been silent past its
   * heartbeat, in ms (0: it answers; growing: a handler blocks it; launch.watchdogMs
   * kills it past that). Null when no helper is ready.
   */
  unresponsiveMs: number | null;
  /** When the next launch attempt is due (ms since epoch) while the service waits out its backoff (state throttled), else null. */
  nextAttemptAt: number | null;
}

/** What a supervisor needs from its broker. */
export interface SupervisorContext {
  nodePath: string;
  maxFrameBytes: number;
  /** Paths every helper may read (bulkhead's package). */
  implicitReads: string[];
  /**
   * Where the broker runs, for remedy texts: `broker.reset()` embedded,
   * `bulkhead kickstart` under the daemon.
   * @default 'embedded'
   */
  mode?: 'embedded' | 'daemon';
  /** Broker-wide events. */
  stateChanged(name: string, state: ServiceState, previous: ServiceState): void;
  launched(name: string, pid: number): void;
  /** A prewarmed spare is ready and waiting. */
  prewarmed(name: string, pid: number): void;
  /** A prewarmed spare was refused (its hello did not match, or it spoke before activation) and killed. */
  spareRefused?(name: string, pid: number, reason: string): void;
  exited(name: string, info: ExitInfo): void;
  /** A prewarmed spare (`pid`) took over from a helper whose channel closed unasked; that one's `exited` follows. */
  tookOver?(name: string, pid: number, replacedPid: number): void;
  log(name: string, stream: 'stdout' | 'stderr', line: string, pid: number): void;
  /** Removing a helper's scratch dir or cgroup failed after it exited, or its mm holder did not die. */
  cleanupFailed(name: string, pid: number, message: string): void;
  /**
   * Checks a service's code-signing requirement before a launch; throws
   * ERR_CODE_SIGNATURE. Undefined when the broker has no CA.
   */
  verifyCode?: ((serviceDir: string, requirement: { signedBy: string }) => void) | undefined;
  /** Another registered service, for calls this one makes (`connects`). */
  lookup(service: string): RoutableService | undefined;
  /** A helper was refused a call to another service. */
  denied(caller: string, target: string): void;
  /** The broker's direct helper-to-helper channels (peer-links.ts); undefined: `connects` are routed. */
  peers?: PeerLinks | undefined;
  /** Names of the registered services (who may call whom decides which helpers get a hand-off pipe). */
  serviceNames?(): Iterable<string>;
  /** A helper's request to the broker itself (BROKER_TARGET: minting or opening an endpoint); returns the result or throws a BulkheadError. */
  brokerRequest?(caller: string, connects: readonly string[], method: string, params: unknown, grants: EndpointGrants): unknown;
  /** A call to one of this service's helpers settled (see HelperHooks.callSettled). Optional (metrics). */
  callSettled?(name: string, method: string, seconds: number, code: string | null): void;
  /** Where the helpers of service `name` count their settled calls (see HelperHooks.callTally). Optional (metrics). */
  callTally?(name: string): CallTally;
  /** Whether settled calls must be timed and reported through callSettled now (see HelperHooks.callsObserved). */
  callsObserved?: () => boolean;
  /** Calls one of this service's helpers answered on direct channels, as it reported them (see HelperHooks.callBatch). Optional (metrics). */
  callBatch?(name: string, batch: CallBatch): void;
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
