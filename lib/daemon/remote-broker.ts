/**
 * What an app holds to use a daemon's services: `connectTo(socket, identity)`
 * returns one. Each `connect()` gives the same Connection API as
 * embedded mode, over its own authenticated socket.
 * @module
 */
import { resolve } from 'node:path';
import { Connection, CONNECT_OPTION_NAMES, type ConnectionOptions } from '../connection/connection.js';
import { bulkheadError } from '../errors.js';
import { checkOptionsObject, checkStringOption } from '../util/options.js';
import { loadProtocol } from '../protocol/registry.js';
import type { AnyProtocol, ProtocolShape } from '../protocol/types.js';
import { CONTROL_SERVICE, loadControlProtocol } from './control.js';
import { isEndpoint, type Endpoint } from '../protocol/endpoint-keyword.js';
import { RemoteEndpoint, type ClientIdentity } from './remote-endpoint.js';

/** Options of {@link RemoteBroker}. */
export interface RemoteBrokerOptions {
  /**
   * Where the client's copies of the services' protocols are: results and
   * events are validated against them, and the hello checks they match the daemon's.
   * @default `<cwd>/protocols`
   */
  protocolsDir?: string;
  /**
   * The daemon id to insist on: the SHA-256 fingerprint of the daemon's CA
   * certificate (64 hex digits, printed by `bulkhead identity issue`). A daemon
   * whose challenge names another id is refused before anything is signed
   * (`ERR_AUTH_FAILED`, `data.reason: "daemon-mismatch"`), so an impostor
   * reached under the real socket path cannot obtain a proof.
   * @default any id the challenge names
   */
  daemonId?: string;
  /**
   * Ask the daemon for a channel of our own to each service (hand-off,
   * docs/wire.md): calls then go straight to the helper, the daemon keeps only
   * lifecycle authority. Falls back to routing on its own when this process
   * cannot take a descriptor (koffi missing) or the daemon routes the service
   * (`daemon.direct: false`, a helper that cannot take channels). `false`
   * forces the routed path. Both paths pace a slow reader and cut off a
   * stalled one the same way (docs/daemon.md, "Direct channels").
   * @default true
   */
  direct?: boolean;
}

/** Options of {@link RemoteBroker.connect}. */
export interface RemoteConnectOptions extends ConnectionOptions {
  /**
   * The protocol the service speaks, when its name differs from the service's
   * (the client's copy is read from `protocolsDir`).
   * @default the service's name
   */
  protocol?: string;
}

const WHERE = 'connectTo(socketPath, identity, options)';

/** A client's handle to a bulkhead daemon. */
export class RemoteBroker {
  private readonly protocolsDir: string;
  private readonly daemonId: string | undefined;
  private readonly direct: boolean;
  /** Endpoints of the connections still open; a closed connection leaves the set. */
  private readonly endpoints = new Set<RemoteEndpoint>();
  private closing: Promise<void> | undefined;
  private readonly identity: ClientIdentity;
  /** Absolute socket path: the handshake's proof signs it, and the daemon knows its own path as absolute. */
  readonly socketPath: string;

  /**
   * @param socketPath - the daemon's socket (relative paths resolve against the working directory)
   * @param identity - a certificate the daemon's CA issued, and its key
   * @throws BulkheadError `ERR_INVALID_OPTION` naming the argument or option that is wrong
   */
  constructor(socketPath: string, identity: ClientIdentity, options: RemoteBrokerOptions = {}) {
    const o = checkOptionsObject(options, ['protocolsDir', 'daemonId', 'direct'], WHERE);
    this.socketPath = resolve(checkStringOption(socketPath, 'socketPath', WHERE, 'the path of the daemon\'s socket') ?? '');
    this.identity = checkIdentity(identity);
    this.protocolsDir = resolve(checkStringOption(o.protocolsDir, 'protocolsDir', WHERE, 'a directory path') ?? 'protocols');
    if (o.daemonId !== undefined && !/^[0-9a-f]{64}$/.test(o.daemonId)) {
      throw bulkheadError('ERR_INVALID_OPTION', 'options.daemonId must be the daemon CA\'s SHA-256 fingerprint: 64 lowercase hex digits (`bulkhead identity issue` prints it).', { option: 'daemonId' });
    }
    this.daemonId = o.daemonId;
    if (o.direct !== undefined && typeof o.direct !== 'boolean') throw bulkheadError('ERR_INVALID_OPTION', 'options.direct must be true or false.', { option: 'direct' });
    this.direct = o.direct ?? true;
  }

  /**
   * Opens a connection to one of the daemon's services; nothing is sent until the first call.
   * Pass `options.protocol` when the protocol's name differs from the service's.
   * @throws BulkheadError `ERR_CLOSED` once {@link RemoteBroker.close} was called, `ERR_INVALID_OPTION` naming a bad or unknown option
   */
  connect<P extends ProtocolShape = AnyProtocol>(service: string, options: RemoteConnectOptions = {}): Connection<P> {
    return this.open<P>(service, options, undefined);
  }

  private open<P extends ProtocolShape>(service: string, options: RemoteConnectOptions, grant: Endpoint | undefined): Connection<P> {
    if (this.closing !== undefined) throw bulkheadError('ERR_CLOSED', 'This RemoteBroker is closed; call connectTo() again.');
    const where = `connect("${service}", options)`;
    checkOptionsObject(options, [...CONNECT_OPTION_NAMES, 'protocol'], where);
    const protocolName = checkStringOption(options.protocol, 'protocol', where, 'a protocol name') ?? service;
    const protocol = protocolName === CONTROL_SERVICE ? loadControlProtocol() : loadProtocol(this.protocolsDir, protocolName);
    const endpoint = new RemoteEndpoint(service, protocol, this.socketPath, this.identity, this.daemonId, this.direct);
    const connection = new Connection<P>(endpoint, options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs });
    endpoint.connection = connection;
    endpoint.grant = grant;
    endpoint.onDetached = () => this.endpoints.delete(endpoint);
    this.endpoints.add(endpoint);
    return connection;
  }

  /**
   * Opens a connection from an endpoint a service minted for this client's
   * identity (a field typed `Endpoint<'S'>` in a result or event). The daemon
   * admits it on the endpoint, not on the service's `clients`; it lives until
   * the service is stopped, removed or fails (then `invalidated` carries
   * ERR_ENDPOINT_DEAD). Refusals reject the first call: ERR_ENDPOINT_INVALID,
   * ERR_ENDPOINT_NOT_YOURS, ERR_ENDPOINT_DEAD. Pass `options.protocol` when the
   * service's protocol name differs from its name.
   * @throws BulkheadError `ERR_ENDPOINT_INVALID` when `endpoint` does not even have an endpoint's shape, `ERR_CLOSED`, `ERR_INVALID_OPTION`
   */
  connectEndpoint<P extends ProtocolShape = AnyProtocol>(endpoint: Endpoint, options: RemoteConnectOptions = {}): Connection<P> {
    if (!isEndpoint(endpoint)) throw bulkheadError('ERR_ENDPOINT_INVALID', 'Not an endpoint: expected { service, token } exactly as the issuing service passed it on.', { reason: 'malformed' });
    return this.open<P>(endpoint.service, options, endpoint);
  }

  /** The daemon's control API (list, status, kickstart, stop, reload). */
  control(): Connection {
    return this.connect(CONTROL_SERVICE);
  }

  /** Connections open through this handle (closed ones are not kept). */
  get openConnections(): number {
    return this.endpoints.size;
  }

  /**
   * Closes every connection made through this handle (each waits for its calls
   * to settle). Idempotent: every call returns the same promise.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const open = [...this.endpoints];
      await Promise.all(open.flatMap((e) => (e.connection === undefined ? [] : [e.connection.close()])));
      for (const endpoint of open) endpoint.detach();
      this.endpoints.clear();
    })();
    return this.closing;
  }

  /** `await using daemon = connectTo(...)` closes it at scope end. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** The identity argument, checked: three strings. */
function checkIdentity(identity: ClientIdentity): ClientIdentity {
  const value: unknown = identity; // JS callers may pass anything
  if (typeof value !== 'object' || value === null) {
    throw bulkheadError('ERR_INVALID_OPTION', `${WHERE}: identity must be { name, certPem, keyPem } (readIdentity() or \`bulkhead identity issue\` gives one).`, { option: 'identity' });
  }
  // Strings, checked here; whether they prove anything is the daemon's to say (an empty
  // certificate is its ERR_AUTH_REQUIRED, not a type error).
  for (const key of ['name', 'certPem', 'keyPem'] as const) {
    const field: unknown = (identity as Partial<ClientIdentity>)[key];
    if (typeof field !== 'string') throw bulkheadError('ERR_INVALID_OPTION', `${WHERE}: identity.${key} must be a string (the PEM text \`bulkhead identity issue\` wrote).`, { option: `identity.${key}` });
  }
  return { name: identity.name, certPem: identity.certPem, keyPem: identity.keyPem };
}

/**
 * Connects to a `bulkhead daemon` as `identity` (a certificate its CA issued
 * and the matching key). Each `connect()` on the result gives the same
 * Connection API as an embedded broker. (A function of its own, not a static
 * of `Broker`: the embedded broker never imports the daemon client.)
 */
export function connectTo(socketPath: string, identity: ClientIdentity, options: RemoteBrokerOptions = {}): RemoteBroker {
  return new RemoteBroker(socketPath, identity, options);
}
