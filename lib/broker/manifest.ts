/**
 * A service manifest (launchd.plist's role): what to run, which protocol it
 * serves, its sandbox profile and its launch policy. Checked against a JSON
 * Schema, with one clear error per bad field (ERR_INVALID_MANIFEST, with the
 * JSON pointer of the field).
 * @module
 */
import { bulkheadError } from '../errors.js';
import { sharedAjv } from '../protocol/ajv.js';
import { explainAjvError } from '../protocol/explain.js';
import { NAME_PATTERN } from '../protocol/document.js';
import type { ScheduleSpec } from './schedule.js';

/**
 * Pattern of one `clients` entry: an identity name or "*", optionally
 * "@uid:N" / "@gid:N"; or "uid:N" / "gid:N" alone (lib/daemon/client-policy.ts applies them).
 */
export const CLIENT_ENTRY_PATTERN = '^(?:(?:\\*|[A-Za-z0-9][A-Za-z0-9._-]{0,127})(?:@(?:uid|gid):[0-9]{1,10})?|(?:uid|gid):[0-9]{1,10})$';

/** launchd's KeepAlive sub-keys: which unrequested exits trigger a relaunch. */
export interface KeepAliveConditions {
  /** Relaunch after a crash: a non-zero exit code or a signal. */
  crashed?: boolean;
  /** Relaunch after a clean exit (code 0). */
  successfulExit?: boolean;
}

/** When and how a service runs, and how it is relaunched and stopped. */
export interface LaunchPolicy {
  /**
   * Launch when the service is registered, without waiting for a call (launchd RunAtLoad).
   * @default false
   */
  runAtLoad?: boolean;
  /**
   * Relaunch whenever the helper exits without being asked to (true), or only
   * on the exits named (launchd KeepAlive). Implies runAtLoad. Relaunches obey
   * throttleMs and the crash-loop breaker.
   * @default false
   */
  keepAlive?: boolean | KeepAliveConditions;
  /**
   * Stop the helper gracefully after this many ms with no call in flight and no
   * open transaction (`ctx.keepAlive()`); the next call relaunches it. Open
   * connections do not count: a call relaunches the helper transparently.
   * @default undefined (never)
   */
  idleExitMs?: number;
  /**
   * Keep a prewarmed spare helper (node started, sandbox applied, the service
   * module loaded, its hello checked, serve() waiting for the broker's hello),
   * so an on-demand launch or a relaunch after a crash costs one write each
   * way, not a start-up. The
   * module's top level runs when the spare starts. Costs one idle process
   * (≈ 48–55 MiB RSS, most of it node's binary shared with other node
   * processes; ≈ 9–13 MiB of its own). See docs/launch-policies.md, "Prewarm".
   * @default false
   */
  prewarm?: boolean;
  /** Run a method, or the whole helper, on a timer or calendar (launchd StartInterval / StartCalendarInterval, systemd timers). @default none: no timed runs */
  schedule?: ScheduleSpec;
  /** Paths (relative to the root) whose changes launch the helper, or call watchMethod (launchd WatchPaths). @default [] (nothing watched) */
  watchPaths?: string[];
  /** Method called with `{ path, event }` when a watched path changes. @default none: a change just launches the helper */
  watchMethod?: string;
  /**
   * Least time between two launches of the helper (launchd's ThrottleInterval).
   * A call that needs a relaunch sooner waits for it (state "throttled").
   * @default 1000
   */
  throttleMs?: number;
  /**
   * Unrequested exits allowed within restartWindowMs before the service is
   * marked failed and its connections invalidated (systemd's StartLimitBurst).
   * @default 5
   */
  maxRestarts?: number;
  /**
   * Window for maxRestarts, in ms (systemd's StartLimitIntervalSec).
   * @default 60000
   */
  restartWindowMs?: number;
  /**
   * On stop: after goodbye, wait this long for the helper to exit, then SIGTERM;
   * after as long again, SIGKILL (launchd's ExitTimeOut).
   * @default 5000
   */
  exitTimeoutMs?: number;
  /**
   * Time from spawn to the helper's hello before the launch fails (ERR_LAUNCH_FAILED).
   * @default 10000
   */
  launchTimeoutMs?: number;
  /**
   * Kill the helper when its event loop sends nothing for this long (systemd's
   * WatchdogSec): its runtime sends a heartbeat from its own event loop, so a
   * handler that spins or blocks stops it. The kill is an unrequested exit
   * (`lastExit.reason` "watchdog"): pending calls fail with ERR_INTERRUPTED and
   * the service is relaunched under the backoff and the breaker. Choose seconds:
   * above the longest synchronous stretch of a handler and the longest time a
   * loaded host may leave the helper without CPU (at least 100).
   * @default undefined (no watchdog; status still shows `unresponsiveMs`)
   */
  watchdogMs?: number;
  /**
   * Factor by which the wait before a relaunch grows after each crash in a row
   * (from throttleMs, ±20% jitter).
   * @default 1.6
   */
  backoffMultiplier?: number;
  /**
   * Longest wait before a relaunch, in ms (before jitter).
   * @default 60000
   */
  backoffMaxMs?: number;
  /**
   * A helper that ran this long before it crashed starts the backoff over at throttleMs.
   * @default 10000
   */
  stableRunMs?: number;
}

/** The tunables that have defaults. */
export type LaunchTunables = Required<Pick<LaunchPolicy, 'throttleMs' | 'maxRestarts' | 'restartWindowMs' | 'exitTimeoutMs' | 'launchTimeoutMs' | 'backoffMultiplier' | 'backoffMaxMs' | 'stableRunMs'>>;

/** Defaults of {@link LaunchPolicy}. */
export const LAUNCH_DEFAULTS: LaunchTunables = {
  throttleMs: 1000,
  maxRestarts: 5,
  restartWindowMs: 60_000,
  exitTimeoutMs: 5000,
  launchTimeoutMs: 10_000,
  backoffMultiplier: 1.6,
  backoffMaxMs: 60_000,
  stableRunMs: 10_000,
};

/** Declares one service. */
export interface ServiceManifest {
  /** Unique service name, e.g. "com.example.echo". */
  name: string;
  /** The helper's entry module, relative to the broker's root (or absolute). */
  entry: string;
  /** Name of the protocol it serves: `<root>/protocols/<protocol>.json`. */
  protocol: string;
  /** Sandbox profile name: `<root>/sandbox-profiles/<sandbox>.json`, or a profile shipped with bulkhead. Omit to run unsandboxed (env still scrubbed). */
  sandbox?: string;
  /**
   * Named directories for `${name}` placeholders in the sandbox profile's paths
   * (e.g. `{ "data": "./data" }` for a profile that reads `${data}`), relative to the root.
   * `${root}` (the broker root) and `${serviceDir}` are always defined.
   */
  sandboxPaths?: Record<string, string>;
  /** Extra flags for node, placed before the entry. */
  nodeArgs?: string[];
  /** Variables set for the helper (in addition to what its profile lets through). */
  env?: Record<string, string>;
  /** Default deadline for calls to this service, in ms. */
  timeoutMs?: number;
  /**
   * Calls in flight to one helper; more wait in a queue.
   * @default 1024
   */
  maxInFlight?: number;
  /**
   * Calls that may wait for an in-flight slot; one more fails with ERR_BACKPRESSURE.
   * @default 65536
   */
  maxQueued?: number;
  /**
   * Bytes that may wait in the broker for the helper to read them (calls to a
   * slow or hung helper); past it a call fails at once with ERR_BACKPRESSURE.
   * The broker holds at most this plus one frame per helper.
   * @default 2 × maxFrameBytes + 1 MiB (33 MiB with the default frame limit)
   */
  maxQueuedBytes?: number;
  /** Relaunch and stop tunables. */
  launch?: LaunchPolicy;
  /**
   * Daemon mode: who may connect. Identity names (certificate CNs); "*" for
   * any identity the daemon's CA issued; "uid:N" / "gid:N" for any identity
   * from a process the kernel says runs as that uid / gid; "NAME@uid:N" for
   * both. Omitted: no daemon client may connect.
   */
  clients?: string[];
  /** Services this service's helper may call through the broker. */
  connects?: string[];
  /**
   * Code-signing requirement: before each launch the broker checks that every
   * file in the service's directory matches `bulkhead.signature.json`, signed
   * by this identity (issued by the broker's CA). A mismatch refuses the launch
   * with ERR_CODE_SIGNATURE.
   */
  requirement?: { signedBy: string };
}

const positiveInt = { type: 'integer', minimum: 0, maximum: 2 ** 31 - 1 } as const;

/** JSON Schema of a manifest. */
export const SERVICE_MANIFEST_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  required: ['name', 'entry', 'protocol'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: NAME_PATTERN },
    entry: { type: 'string', minLength: 1 },
    protocol: { type: 'string', pattern: NAME_PATTERN },
    sandbox: { type: 'string', pattern: NAME_PATTERN },
    sandboxPaths: { type: 'object', propertyNames: { pattern: '^[A-Za-z][A-Za-z0-9]*$', not: { enum: ['serviceDir', 'scratch', 'root'] } }, additionalProperties: { type: 'string', minLength: 1 } },
    nodeArgs: { type: 'array', items: { type: 'string', pattern: '^-' } },
    env: { type: 'object', propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }, additionalProperties: { type: 'string' } },
    timeoutMs: positiveInt,
    maxInFlight: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    maxQueued: { type: 'integer', minimum: 0, maximum: 10_000_000 },
    maxQueuedBytes: { type: 'integer', minimum: 0, maximum: 2 ** 40 },
    clients: { type: 'array', items: { type: 'string', pattern: CLIENT_ENTRY_PATTERN } },
    connects: { type: 'array', items: { type: 'string', pattern: NAME_PATTERN } },
    requirement: { type: 'object', additionalProperties: false, required: ['signedBy'], properties: { signedBy: { type: 'string', pattern: NAME_PATTERN } } },
    launch: {
      type: 'object',
      additionalProperties: false,
      properties: {
        throttleMs: positiveInt,
        maxRestarts: { type: 'integer', minimum: 1, maximum: 10_000 },
        restartWindowMs: positiveInt,
        exitTimeoutMs: positiveInt,
        launchTimeoutMs: { type: 'integer', minimum: 1, maximum: 2 ** 31 - 1 },
        watchdogMs: { type: 'integer', minimum: 100, maximum: 2 ** 31 - 1 },
        backoffMultiplier: { type: 'number', minimum: 1, maximum: 100 },
        backoffMaxMs: positiveInt,
        stableRunMs: positiveInt,
        runAtLoad: { type: 'boolean' },
        prewarm: { type: 'boolean' },
        keepAlive: {
          anyOf: [
            { type: 'boolean' },
            { type: 'object', additionalProperties: false, minProperties: 1, properties: { crashed: { type: 'boolean' }, successfulExit: { type: 'boolean' } } },
          ],
        },
        idleExitMs: { type: 'integer', minimum: 1, maximum: 2 ** 31 - 1 },
        schedule: {
          type: 'object',
          additionalProperties: false,
          oneOf: [{ required: ['intervalMs'], properties: { intervalMs: true } }, { required: ['calendar'], properties: { calendar: true } }],
          properties: {
            intervalMs: { type: 'integer', minimum: 1, maximum: 2 ** 31 - 1 },
            calendar: { type: 'string', minLength: 1 },
            timezone: { type: 'string', minLength: 1 },
            method: { type: 'string', pattern: '^[A-Za-z_$][A-Za-z0-9_$]{0,127}$' },
            params: { type: 'object' },
            timeoutMs: positiveInt,
            persistent: { type: 'boolean' },
          },
        },
        watchPaths: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
        watchMethod: { type: 'string', pattern: '^[A-Za-z_$][A-Za-z0-9_$]{0,127}$' },
      },
    },
  },
} as const;

let validateManifest: ReturnType<ReturnType<typeof sharedAjv>['compile']> | undefined;

/**
 * Checks a manifest.
 * @param source - where it came from, for messages (e.g. "bulkhead.json /services/0")
 * @throws BulkheadError `ERR_INVALID_MANIFEST` naming the first bad field
 */
export function checkManifest(value: unknown, source = 'register()'): ServiceManifest {
  validateManifest ??= sharedAjv().compile(SERVICE_MANIFEST_SCHEMA);
  if (!validateManifest(value)) {
    const { pointer, detail } = explainAjvError(validateManifest.errors?.[0], SERVICE_MANIFEST_SCHEMA, value);
    const name = typeof (value as { name?: unknown } | null)?.name === 'string' ? ` for service "${(value as { name: string }).name}"` : '';
    throw bulkheadError('ERR_INVALID_MANIFEST', `Manifest${name} (${source}): ${pointer} ${detail}`, { source, pointer, errors: validateManifest.errors ?? [] });
  }
  return value as ServiceManifest;
}
