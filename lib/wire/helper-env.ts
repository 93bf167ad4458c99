/**
 * The helper environment contract: the variables a broker sets for each helper
 * it launches, next to fd 3 (the channel) and fd 4 (outbound calls, only for a
 * service with `connects`). One table, read by the broker that writes them, the
 * helper runtime (bulkhead/service) and the prewarm entry that read them. The
 * rest of a helper's environment is the manifest's `env` and the sandbox's
 * scrubbed allowlist; none of these names may come from there.
 * @module
 */

/** Name of each variable of the contract, by meaning. */
export const HELPER_ENV = {
  /** Absolute path of the protocol file the helper must serve (serve() refuses to run without it). */
  protocolFile: 'BULKHEAD_PROTOCOL_FILE',
  /** Largest frame body in bytes, as a decimal integer: the broker's maxFrameBytes. */
  maxFrameBytes: 'BULKHEAD_MAX_FRAME_BYTES',
  /** "1" to include handler stacks in errors sent to callers; set when the broker runs with BULKHEAD_DEBUG=1. */
  debug: 'BULKHEAD_DEBUG',
  /** Path of the broker's precompiled validators for the protocol, when it has them (the helper then loads no ajv). */
  validators: 'BULKHEAD_VALIDATORS',
  /**
   * The text of that module itself, in place of its path, where the broker's files may hold planted code (a host
   * with neither bubblewrap nor a uid drop: lib/sandbox/cache-trust.ts): bytes the broker generated, which no other
   * process can change once the helper is exec'd. Set: the helper loads it, not a file.
   */
  validatorsSource: 'BULKHEAD_VALIDATORS_SOURCE',
  /** JSON object: service name → protocol file, for each service in the manifest's `connects`. */
  connects: 'BULKHEAD_CONNECTS',
  /** Interval of the heartbeat the broker's watchdog waits for, in ms (0 or unset: none). */
  heartbeatMs: 'BULKHEAD_HEARTBEAT_MS',
  /**
   * The fd of the helper's hand-off pipe (daemon mode): the broker passes direct
   * channels to the helper over it (docs/wire.md, "Hand-off"). Unset: none.
   */
  handoffFd: 'BULKHEAD_HANDOFF_FD',
  /**
   * The manifest's maxInFlight and maxQueued (or their defaults), as decimal
   * integers: the helper's call gate bounds the handlers it runs at once across
   * all its channels, direct ones included (lib/connection/call-gate.ts). Unset: no gate.
   */
  maxInFlight: 'BULKHEAD_MAX_IN_FLIGHT',
  maxQueued: 'BULKHEAD_MAX_QUEUED',
  /**
   * The directory of the broker's V8 code cache for the runtime itself (lib/util/runtime-loader.ts):
   * the helper reads the file made for its runtime, node and flags there, if any. Unset: no cache.
   */
  codeCache: 'BULKHEAD_CODE_CACHE',
  /**
   * Absolute path of the broker's helper runtime (dist/lib/service.runtime.cjs). The `bulkhead/service` facade loads
   * it when its build id is the facade's own (the same code), which spares it resolving `import.meta`
   * (lib/util/runtime-loader.ts, `loadRuntimeFor`); any other file there is ignored. Set only by the broker.
   */
  runtime: 'BULKHEAD_RUNTIME',
  /** For a prewarmed spare only: the service's entry module, which the spare imports before it is needed. */
  entry: 'BULKHEAD_ENTRY',
  /**
   * For an unsandboxed prewarmed spare only: the path of the broker's mm-holder addon; the spare starts its holder
   * and names its pid in the warm frame (lib/prewarm.ts). Set only by the broker, never from a manifest.
   */
  mmHolder: 'BULKHEAD_MM_HOLDER',
} as const;

/** One variable name of the helper environment contract. */
export type HelperEnvName = (typeof HELPER_ENV)[keyof typeof HELPER_ENV];
