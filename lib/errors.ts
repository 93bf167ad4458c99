/**
 * The one error family of bulkhead. Errors cross process boundaries, so callers
 * brand-check by {@link BulkheadError.code} (see {@link isBulkheadError}), never by
 * `instanceof` alone. On the wire an error is `{ code, message, data }`.
 *
 * Every code is listed in {@link ERROR_CODES} with what it means and what to do;
 * a test checks that `docs/errors.md` mentions each one.
 * @module
 */

/**
 * Every stable error code, with a one-line meaning and the remedy a user should try.
 * The keys are the public contract: never rename one, only add. A new code also needs
 * its data shape in {@link ErrorDataMap} (tsc says "Type 'C' cannot be used to index
 * type 'ErrorDataMap'" until it has one) and a section in docs/errors.md.
 */
export const ERROR_CODES = {
  ERR_FRAME_TOO_LARGE: {
    meaning: 'A peer declared a frame larger than the connection\'s maxFrameBytes; the connection was closed before the body was read.',
    remedy: 'Send smaller messages, or raise maxFrameBytes on both ends if large frames are intended.',
  },
  ERR_BAD_FRAME: {
    meaning: 'A frame was not one well-formed CBOR item, or not a valid bulkhead envelope (wrong shape, unsupported CBOR tag, too deep, more arrays/maps/byte strings than its length allows).',
    remedy: 'The peer is not speaking the bulkhead wire format (docs/wire.md); fix or replace the peer.',
  },
  ERR_UNKNOWN_METHOD: {
    meaning: 'The called method is not declared in the service\'s protocol, or the service has no handler for it.',
    remedy: 'Check the method name against protocols/<name>.json and the handlers passed to serve().',
  },
  ERR_INVALID_PARAMS: {
    meaning: 'The call\'s params failed the method\'s params JSON Schema; the handler did not run.',
    remedy: 'Fix the caller: error.data.errors holds ajv\'s path and message for each failure.',
  },
  ERR_INVALID_RESULT: {
    meaning: 'A result or event sent by the service failed its JSON Schema (checked by the receiver).',
    remedy: 'Fix the service\'s handler (or the protocol\'s result/event schema): error.data.errors holds ajv\'s details.',
  },
  ERR_PROTOCOL_MISMATCH: {
    meaning: 'At hello, the two ends disagreed on protocol name, version or schema hash.',
    remedy: 'Make the helper call serve() with the protocol its manifest names, and rebuild/redeploy both ends from the same protocols/ file.',
  },
  ERR_DEADLINE: {
    meaning: 'The call did not complete within its timeoutMs; the service was told to cancel it.',
    remedy: 'Raise timeoutMs for this call or make the handler faster.',
  },
  ERR_CANCELLED: {
    meaning: 'The caller aborted the call through its AbortSignal; the service\'s ctx.signal was aborted too.',
    remedy: 'Nothing to fix if the abort was intended.',
  },
  ERR_SERVICE_ERROR: {
    meaning: 'The service\'s handler threw; error.data.remoteCode carries the handler\'s own code if it had one.',
    remedy: 'Read the message (the handler\'s error message) and fix the service or the input.',
  },
  ERR_INTERRUPTED: {
    meaning: 'The helper process died or stopped while the call was in flight. The next call relaunches it.',
    remedy: 'Retry if the call is idempotent; error.data has the exit code/signal. Check `broker.status()` and the helper\'s stderr.',
  },
  ERR_INVALIDATED: {
    meaning: 'The service can no longer be reached: its crash-loop breaker tripped, it was unregistered, or its launch is refused.',
    remedy: 'Read the message for the last exit and stderr tail, fix the helper, then call broker.reset(name) or re-register it.',
  },
  ERR_UNKNOWN_SERVICE: {
    meaning: 'No service with that name is registered with the broker.',
    remedy: 'Register it first (broker.register) or check the spelling against the manifest.',
  },
  ERR_UNKNOWN_PROTOCOL: {
    meaning: 'No protocols/<name>.json exists for the protocol name given.',
    remedy: 'Create the protocol file under <root>/protocols/ or fix the name in the manifest or serve() call.',
  },
  ERR_INVALID_PROTOCOL: {
    meaning: 'A protocol file is not valid: bad JSON, a missing field, or a schema ajv cannot compile in strict mode.',
    remedy: 'Fix the file at the JSON pointer given in error.data.pointer; `bulkhead validate` checks protocols.',
  },
  ERR_INVALID_MANIFEST: {
    meaning: 'A service manifest (passed to register() or read by Broker.fromConfig) has a bad field.',
    remedy: 'Fix the field named in the message (error.data.pointer); the message says what is expected.',
  },
  ERR_INVALID_OPTION: {
    meaning: 'An argument or option passed to a bulkhead API has a bad value or an unknown name (error.data.option names it).',
    remedy: 'Fix the option named in the message; for a typo, the message suggests the closest known name.',
  },
  ERR_LAUNCH_FAILED: {
    meaning: 'The helper could not be started, or exited before it completed the hello handshake.',
    remedy: 'Check the entry path, that the helper calls serve(), and its stderr tail in the message.',
  },
  ERR_RELOAD_FAILED: {
    meaning: 'A reload was rolled back: the new helper of a changed service (error.data.service) did not start, so nothing changed; every service keeps its old manifest and helper.',
    remedy: 'Fix that service (error.data.thrown and error.data.cause say why its new helper failed), then reload again.',
  },
  ERR_CLOSED: {
    meaning: 'The broker or connection was closed; no new calls are accepted.',
    remedy: 'Create a new broker or connection.',
  },
  ERR_BACKPRESSURE: {
    meaning: 'Too much is waiting: calls for a free in-flight slot, or bytes for a peer that does not read them.',
    remedy: 'Await earlier calls before issuing more, or raise maxInFlight / maxQueued; a peer cut off for not reading must read replies and events as they come.',
  },
  ERR_SANDBOX_UNENFORCEABLE: {
    meaning: 'A sandbox profile rule cannot be enforced by any layer this host has, and the profile is strict.',
    remedy: 'Install the missing layer named in the message (e.g. bubblewrap), relax the rule, or set enforcement: "best-effort".',
  },
  ERR_INVALID_PROFILE: {
    meaning: 'A sandbox profile file is not valid.',
    remedy: 'Fix the field at error.data.pointer; sandbox-profiles/*.json are checked against the profile schema.',
  },
  ERR_AUTH_REQUIRED: {
    meaning: 'A daemon client connected without presenting a certificate and a proof of its key.',
    remedy: 'Issue an identity with `bulkhead identity issue NAME` and pass it to connectTo().',
  },
  ERR_AUTH_FAILED: {
    meaning: 'A daemon client\'s proof of possession did not verify: wrong key, a replayed or tampered handshake, or a malformed certificate.',
    remedy: 'Use the key that belongs to the certificate, and a fresh connection for each handshake.',
  },
  ERR_CERT_EXPIRED: {
    meaning: 'The client certificate is outside its validity dates.',
    remedy: 'Issue a new certificate with `bulkhead identity issue NAME`.',
  },
  ERR_CERT_UNTRUSTED: {
    meaning: 'The client certificate was not signed by this daemon\'s CA.',
    remedy: 'Issue the identity from the daemon you connect to (`bulkhead identity issue` with its --state-dir).',
  },
  ERR_CERT_REVOKED: {
    meaning: 'The client certificate is on the daemon\'s revocation list.',
    remedy: 'Issue a new identity; revoked certificates are never accepted again.',
  },
  ERR_NOT_PERMITTED: {
    meaning: 'The caller is not authorised to reach that service or method.',
    remedy: 'Add the caller\'s identity to the service manifest\'s clients (or connects) list if it should be allowed.',
  },
  ERR_UNSAFE_PERMISSIONS: {
    meaning: 'A key file or state directory bulkhead relies on can be read or written by group or others, so it refused to use it.',
    remedy: 'Run the chmod the message names (600 for keys, 700 for directories); if others could read a key, treat it as compromised and reissue.',
  },
  ERR_CORRUPT_STATE: {
    meaning: 'A file bulkhead keeps (the CA certificate and key, revoked.json) is missing, unreadable, malformed, or does not match its pair; bulkhead fails closed.',
    remedy: 'Restore the file named in error.data.file from a backup (an empty revocation list is {"version":1,"revoked":[]}), or open the CA again after a concurrent creation.',
  },
  ERR_DAEMON_FAULT: {
    meaning: 'The daemon could not serve the request because of a fault on its side (its state or configuration); the details are in the daemon\'s log, never sent to clients.',
    remedy: 'Nothing is wrong with the client: ask the daemon\'s administrator to check `bulkhead logs` and fix the daemon, then retry.',
  },
  ERR_TOO_MANY_CONNECTIONS: {
    meaning: 'A daemon connection that had not authenticated yet was closed because too many were pending (per uid or in all).',
    remedy: 'Authenticate promptly after connecting; if many honest clients connect at once, raise daemon.maxUnauthenticated / maxUnauthenticatedPerUid.',
  },
  ERR_CODE_SIGNATURE: {
    meaning: 'The helper\'s files do not match their signed manifest, so the broker refused to launch it.',
    remedy: 'Re-sign the service with `bulkhead sign` after a deliberate change; otherwise treat it as tampering.',
  },
  ERR_SOCKET_ACTIVATION: {
    meaning: 'systemd passed the daemon a socket it cannot use: more than one, not a listening Unix stream socket, or bound to another path than the daemon\'s socketPath.',
    remedy: 'Give the .socket unit one ListenStream= equal to the daemon\'s socketPath; `bulkhead unit` writes matching units.',
  },
  ERR_DAEMON_RUNNING: {
    meaning: 'Another bulkhead daemon already listens on this socket path, so a second one did not start.',
    remedy: 'Use the running daemon (`bulkhead ps`), stop it first, or give this one another socketPath.',
  },
  ERR_ENDPOINT_INVALID: {
    meaning: 'An endpoint is not one this broker issued: malformed, forged, altered (its service does not match its token), or expired unopened.',
    remedy: 'Pass endpoints on exactly as received, and open them before they expire; ask the issuing service for a new one.',
  },
  ERR_ENDPOINT_NOT_YOURS: {
    meaning: 'An endpoint was opened by someone other than the receiver it was issued to (another identity, uid, service or the app).',
    remedy: 'Only the receiver named when the endpoint was minted may open it; ask the issuing service for an endpoint bound to you.',
  },
  ERR_ENDPOINT_DEAD: {
    meaning: 'The service an endpoint names was stopped, removed, re-registered or failed since it was minted (or its issuer may no longer reach it); connections opened from it were closed.',
    remedy: 'Ask the issuing service for a new endpoint; it dies with the service incarnation it named.',
  },
} as const satisfies Record<string, { meaning: string; remedy: string }>;

/** Every stable error code as a string literal union. */
export type BulkheadErrorCode = keyof typeof ERROR_CODES;

/** The plain form of one ajv error that travels in `error.data.errors`. */
export interface ValidationIssue {
  instancePath: string;
  schemaPath: string;
  keyword: string;
  message: string;
  params: Record<string, unknown>;
}

/** How a helper ended, as interruption and invalidation errors carry it. (Types, not interfaces, so they fit `data`'s open index.) */
export type ExitData = {
  /** Exit code, or null when a signal ended it. */
  exitCode?: number | null;
  signal?: string | null;
  /** Why the broker stopped it (idle, watchdog, ...), or null for a crash. */
  reason?: string | null;
  /** The last lines the helper wrote on stderr. */
  stderrTail?: string[];
};

/** Where a bad field is: the file (or the file and `/services/<n>`) and its JSON pointer. */
export type SourceData = {
  source?: string;
  pointer?: string;
};

/** Who a daemon refused: the identity it claimed or proved, and the service it asked for. */
export type RefusalData = {
  client?: string | null;
  service?: string | null;
  name?: string;
  reason?: string;
  serial?: string;
};

/**
 * What `error.data` holds, per code. Fields marked optional may be missing: some
 * throw sites have less to say, and an error rebuilt from the wire carries what
 * the peer sent (a service may send only the codes of a service runtime; treat
 * their data as that service's word). `service` is added to errors rebuilt from
 * the wire: which service (or daemon route) the error came from.
 */
export interface ErrorDataMap {
  ERR_FRAME_TOO_LARGE: { limit?: number; size?: number; declared?: number };
  ERR_BAD_FRAME: { reason?: string };
  ERR_UNKNOWN_METHOD: { method?: string };
  /** `accepts`: an item a client streamed to the service; `index` is its position in the stream. */
  ERR_INVALID_PARAMS: { method?: string; part?: 'params' | 'accepts'; index?: number; errors?: ValidationIssue[] };
  /** `yields`: an item the service streamed; `index` is its position in the stream. */
  ERR_INVALID_RESULT: { method?: string; event?: string; part?: 'result' | 'event' | 'yields'; index?: number; errors?: ValidationIssue[] };
  ERR_PROTOCOL_MISMATCH: {
    expected?: string | { protocol: string; version: string; schemaHash: string };
    actual?: string | { protocol: string; version: string; schemaHash: string; role: string };
  };
  ERR_DEADLINE: { method?: string; timeoutMs?: number };
  ERR_CANCELLED: { method?: string };
  ERR_SERVICE_ERROR: ExitData & {
    /** The handler's own error code, when it had one. */
    remoteCode?: string;
    /** The handler's error data, as plain data (or '[unserializable]'). */
    remoteData?: unknown;
    /** The handler's stack, only when the helper runs with BULKHEAD_DEBUG=1. */
    stack?: string;
    data?: unknown;
  };
  ERR_INTERRUPTED: ExitData & { errno?: string | null; cause?: string; launchTimeoutMs?: number };
  ERR_INVALIDATED: ExitData & { cause?: string; crashes?: number };
  ERR_UNKNOWN_SERVICE: { service?: string };
  ERR_UNKNOWN_PROTOCOL: { protocol?: string; file?: string };
  ERR_INVALID_PROTOCOL: { source?: string; pointer?: string; file?: string; /** ajv's errors about the protocol document itself. */ errors?: unknown[] };
  ERR_INVALID_MANIFEST: SourceData & { service?: string; key?: string; name?: string; placeholder?: string; profile?: string; available?: string[]; errors?: unknown[]; index?: number };
  ERR_INVALID_OPTION: { option?: string; file?: string; dir?: string; detail?: string; field?: string; key?: string };
  ERR_LAUNCH_FAILED: ExitData & { launchTimeoutMs?: number };
  /** `service`: the first service whose new helper failed; `failed`: every such service; `cause`: that helper's error code. */
  ERR_RELOAD_FAILED: ExitData & { cause?: string; failed?: string[]; thrown?: string | null };
  ERR_CLOSED: { reason?: string };
  ERR_BACKPRESSURE: { limit?: number; buffered?: number; maxInFlight?: number; maxQueued?: number };
  ERR_SANDBOX_UNENFORCEABLE: { profile?: string; service?: string; rule?: string; missing?: string | null; rules?: Array<{ rule: string; missing: string | null }> };
  ERR_INVALID_PROFILE: SourceData & { profile?: string; problems?: unknown[] };
  ERR_AUTH_REQUIRED: RefusalData;
  ERR_AUTH_FAILED: RefusalData;
  ERR_CERT_EXPIRED: RefusalData & { notBefore?: string; notAfter?: string; now?: string; which?: string; state?: string };
  ERR_CERT_UNTRUSTED: RefusalData & { subject?: string };
  ERR_CERT_REVOKED: RefusalData;
  ERR_NOT_PERMITTED: RefusalData & { caller?: string; target?: string };
  ERR_UNSAFE_PERMISSIONS: { file: string; mode: number };
  ERR_CORRUPT_STATE: { file: string; dir?: string };
  ERR_DAEMON_FAULT: RefusalData;
  ERR_CODE_SIGNATURE: { reason?: string; file?: string; dir?: string; extra?: unknown };
  ERR_SOCKET_ACTIVATION: { fds?: number; socketPath?: string };
  ERR_DAEMON_RUNNING: { socketPath: string };
  ERR_TOO_MANY_CONNECTIONS: RefusalData & { limit?: number };
  /** `reason`: why (e.g. `malformed`, `unknown`, `tampered`, `expired`, `stopped`, `removed`, `failed`, `not-in-connects`). */
  ERR_ENDPOINT_INVALID: { reason?: string; service?: string | null };
  ERR_ENDPOINT_NOT_YOURS: { reason?: string; service?: string | null; opener?: string };
  ERR_ENDPOINT_DEAD: { reason?: string; service?: string | null; issuer?: string };
}

/**
 * The `data` of an error of code `C`: the fields {@link ErrorDataMap} gives that code, typed,
 * plus the wire's `service`; any other key reads as `unknown` (data is open: a peer, or a
 * newer bulkhead, may send more).
 */
export type ErrorData<C extends BulkheadErrorCode> = ErrorDataMap[C] & { service?: string | null } & Record<string, unknown>;

/** The plain form an error takes on the wire and in logs. */
export interface SerializedError {
  /** Stable code; for errors raised by user handlers, whatever code they carried. */
  code: string;
  /** Human-readable message that says what to do. */
  message: string;
  /** Structured details (ajv errors, exit code, ...). Plain data only. */
  data?: Record<string, unknown>;
}

/**
 * The base (and only) error class of bulkhead. `code` is a literal type, so a
 * `switch (err.code)` is checked by the compiler.
 */
export class BulkheadError<C extends BulkheadErrorCode = BulkheadErrorCode> extends Error {
  /** Stable machine-readable code. */
  readonly code: C;
  /** Structured details, typed per code ({@link ErrorDataMap}). Plain data only, so it survives a trip over the wire. */
  readonly data: ErrorData<C>;

  /**
   * @param code - one of {@link ERROR_CODES}
   * @param message - what happened and what to do
   * @param data - plain structured details
   * @param options - standard `cause`
   */
  constructor(code: C, message: string, data?: ErrorData<C>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BulkheadError';
    this.code = code;
    this.data = data ?? ({} as ErrorData<C>);
  }

  /** The wire form `{ code, message, data }`. */
  toJSON(): SerializedError {
    return { code: this.code, message: this.message, data: this.data };
  }
}

/** True when `value` is a known bulkhead error code. */
export function isErrorCode(value: unknown): value is BulkheadErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/**
 * Brand check by code: true for any bulkhead error (optionally of one code),
 * including ones rebuilt from the wire.
 */
export function isBulkheadError<C extends BulkheadErrorCode>(err: unknown, code?: C): err is BulkheadError<C> {
  if (typeof err !== 'object' || err === null) return false;
  const actual = (err as { code?: unknown }).code;
  return isErrorCode(actual) && (code === undefined || actual === code);
}

/** Shorthand used inside the framework. */
export function bulkheadError<C extends BulkheadErrorCode>(code: C, message: string, data?: ErrorData<C>, cause?: unknown): BulkheadError<C> {
  return new BulkheadError(code, message, data, cause === undefined ? undefined : { cause });
}
