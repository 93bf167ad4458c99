/**
 * What an app holds to use a daemon's services: `connectTo(socket, identity)`
 * returns one. Each `connect()` gives the same Connection API as
 * embedded mode, over its own authenticated socket.
 * @module
 */
import { join, resolve } from 'node:path';
import { Connection, type ConnectionOptions } from '../connection/connection.js';
import { bulkheadError } from '../errors.js';
import { PACKAGE_ROOT } from '../broker/package-paths.js';
import { loadProtocol } from '../protocol/registry.js';
import type { AnyProtocol, ProtocolShape } from '../protocol/types.js';
import { CONTROL_SERVICE } from './control.js';
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
}

/** A client's handle to a bulkhead daemon. */
export class RemoteBroker {
  private readonly protocolsDir: string;
  private readonly daemonId: string | undefined;
  private readonly endpoints = new Set<RemoteEndpoint>();
  private closed = false;
  /** Absolute socket path: the handshake's proof signs it, and the daemon knows its own path as absolute. */
  readonly socketPath: string;

  constructor(socketPath: string, private readonly identity: ClientIdentity, options: RemoteBrokerOptions = {}) {
    this.socketPath = resolve(socketPath);
    this.protocolsDir = resolve(options.protocolsDir ?? 'protocols');
    if (options.daemonId !== undefined && !/^[0-9a-f]{64}$/.test(options.daemonId)) {
      throw bulkheadError('ERR_INVALID_OPTION', 'options.daemonId must be the daemon CA\'s SHA-256 fingerprint: 64 lowercase hex digits (`bulkhead identity issue` prints it).', { option: 'daemonId' });
    }
    this.daemonId = options.daemonId;
  }

  /**
   * Opens a connection to one of the daemon's services; nothing is sent until the first call.
   * Pass `options.protocol` when the protocol's name differs from the service's.
   */
  connect<P extends ProtocolShape = AnyProtocol>(service: string, options: ConnectionOptions & { protocol?: string } = {}): Connection<P> {
    if (this.closed) throw bulkheadError('ERR_CLOSED', 'This RemoteBroker is closed.');
    const protocolName = options.protocol ?? service;
    const protocol = protocolName === CONTROL_SERVICE
      ? loadProtocol(join(PACKAGE_ROOT, 'protocols'), CONTROL_SERVICE)
      : loadProtocol(this.protocolsDir, protocolName);
    const endpoint = new RemoteEndpoint(service, protocol, this.socketPath, this.identity, this.daemonId);
    const connection = new Connection<P>(endpoint, options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs });
    endpoint.connection = connection;
    this.endpoints.add(endpoint);
    return connection;
  }

  /** The daemon's control API (list, status, kickstart, stop, reload). */
  control(): Connection {
    return this.connect(CONTROL_SERVICE);
  }

  /** Closes every connection made through this handle. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.endpoints].flatMap((e) => (e.connection === undefined ? [] : [e.connection.close()])));
    for (const endpoint of this.endpoints) endpoint.detach();
  }
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
