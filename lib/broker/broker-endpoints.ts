/**
 * A broker's side of endpoints: what a helper's mint request does (checked
 * against its `connects`), how the embedding app opens one
 * (`broker.connectEndpoint`), and what the daemon asks before it admits a
 * client with one. The table itself is endpoint-table.ts.
 * @module
 */
import { bulkheadError } from '../errors.js';
import { Connection, type ConnectionOptions, type ServiceEndpoint } from '../connection/connection.js';
import { BROKER_TARGET, type Endpoint } from '../protocol/endpoint-keyword.js';
import type { ProtocolShape } from '../protocol/types.js';
import type { ServiceManifest } from './manifest.js';
import { EndpointTable, parseReceiver, type EndpointDeath, type EndpointOpener } from './endpoint-table.js';
import type { ServiceSupervisor } from './service-supervisor.js';
import type { EndpointGrants } from './endpoint-grants.js';


/** What {@link BrokerEndpoints} needs of its broker. */
export interface BrokerEndpointsContext {
  manifest(name: string): ServiceManifest | undefined;
  supervisor(name: string): ServiceSupervisor | undefined;
  now(): number;
}

/** A broker's endpoints. */
export class BrokerEndpoints {
  readonly table: EndpointTable;

  constructor(private readonly ctx: BrokerEndpointsContext) {
    this.table = new EndpointTable({ now: () => ctx.now() });
  }

  /**
   * A request a helper sent to {@link BROKER_TARGET}:
   * - `mintEndpoint` `{ service, receiver, ttlMs? }`: the caller's launch-time `connects` must name the service;
   * - `openEndpoint` `{ endpoint }`: the caller must be the endpoint's receiver; its router then
   *   routes calls to the service (`grants`) until the endpoint dies. Answers `{ service, document }`
   *   (the service's protocol document, for the helper to validate its answers).
   * @throws BulkheadError ERR_UNKNOWN_METHOD, ERR_INVALID_PARAMS, ERR_NOT_PERMITTED, ERR_UNKNOWN_SERVICE, ERR_BACKPRESSURE, ERR_ENDPOINT_*
   */
  request(caller: string, connects: readonly string[], method: string, params: unknown, grants: EndpointGrants): unknown {
    const p = (typeof params === 'object' && params !== null && !Array.isArray(params) ? params : {}) as Record<string, unknown>;
    if (method === 'openEndpoint') {
      const { service, token } = this.check(p['endpoint'], { kind: 'service', name: caller });
      const supervisor = this.ctx.supervisor(service);
      if (supervisor === undefined) throw bulkheadError('ERR_ENDPOINT_DEAD', `${service} is no longer registered.`, { reason: 'removed', service });
      grants.add(service, (close) => this.table.track(token, close));
      return { service, document: supervisor.protocol.document };
    }
    if (method !== 'mintEndpoint') throw bulkheadError('ERR_UNKNOWN_METHOD', `The broker answers only "mintEndpoint" and "openEndpoint" on ${BROKER_TARGET}, not "${method}".`, { method });
    const service = p['service'];
    const ttlMs = p['ttlMs'];
    if (typeof service !== 'string' || (ttlMs !== undefined && ttlMs !== null && typeof ttlMs !== 'number')) {
      throw bulkheadError('ERR_INVALID_PARAMS', 'mintEndpoint needs { service, receiver, ttlMs? } (docs/wire.md, "Endpoints").', { method, part: 'params' });
    }
    const receiver = parseReceiver(p['receiver']);
    if (!connects.includes(service)) {
      throw bulkheadError('ERR_NOT_PERMITTED', `Service ${caller} may not mint an endpoint for ${service}: an endpoint passes on a right its issuer holds; add "${service}" to ${caller}'s connects.`, { reason: 'not-in-connects', caller, target: service });
    }
    if (this.ctx.supervisor(service) === undefined) throw bulkheadError('ERR_UNKNOWN_SERVICE', `No service named "${service}" is registered.`, { service });
    return this.table.mint(caller, service, receiver, typeof ttlMs === 'number' ? ttlMs : undefined);
  }

  /**
   * Checks that `opener` may open `endpoint` now.
   * @throws BulkheadError ERR_ENDPOINT_INVALID, ERR_ENDPOINT_NOT_YOURS, ERR_ENDPOINT_DEAD
   */
  check(endpoint: unknown, opener: EndpointOpener): { service: string; issuer: string; token: string } {
    return this.table.check(endpoint, opener, (issuer, service) => this.ctx.manifest(issuer)?.connects?.includes(service) === true);
  }

  /**
   * The embedding app opens an endpoint bound to it: a connection like
   * `broker.connect(service)`, closed with ERR_ENDPOINT_DEAD when the
   * service's endpoints die.
   */
  connect<P extends ProtocolShape>(endpoint: Endpoint, options: ConnectionOptions): Connection<P> {
    const { service, token } = this.check(endpoint, { kind: 'app' });
    const supervisor = this.ctx.supervisor(service);
    if (supervisor === undefined) throw bulkheadError('ERR_ENDPOINT_DEAD', `${service} is no longer registered.`, { reason: 'removed', service });
    let untrack = (): void => undefined;
    const proxy: ServiceEndpoint = {
      service,
      protocol: supervisor.protocol,
      callMeta: supervisor.callMeta,
      current: () => supervisor.current(),
      acquire: () => supervisor.acquire(),
      acquireForCall: () => supervisor.acquireForCall(),
      detach: (connection) => {
        untrack();
        supervisor.detach(connection);
      },
    };
    const timeoutMs = options.timeoutMs ?? supervisor.defaultTimeoutMs;
    const connection = new Connection<P>(proxy, timeoutMs === undefined ? {} : { timeoutMs });
    supervisor.attach(connection);
    untrack = this.table.track(token, (error) => {
      connection.notifyInvalidated(error);
      connection.destroy(error);
    });
    return connection;
  }

  /** `service`'s endpoints die (see endpoint-table.ts for when). */
  died(service: string, why: EndpointDeath): void {
    this.table.died(service, why);
  }
}
