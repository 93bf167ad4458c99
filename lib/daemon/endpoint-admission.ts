/**
 * A daemon client that opens an endpoint (docs/wire.md, "Endpoints"): its
 * handshake's `auth` carries the endpoint; the daemon admits it on the
 * endpoint instead of the service's `clients`, once the broker's endpoint
 * table says this verified client is the receiver it was minted for and the
 * service still lives. The connection then lives like any other (routed or
 * handed off) until the service's endpoints die: then the daemon withdraws it
 * with ERR_ENDPOINT_DEAD.
 * @module
 */
import type { Broker } from '../broker/broker.js';
import { isBulkheadError } from '../errors.js';
import type { ClientRecord } from './client-authority.js';
import { refusal } from './client-auth.js';
import type { VerifiedPeer } from './client-policy.js';

/**
 * Checks the endpoint a client presented for `service`; returns its token.
 * @throws BulkheadError the refusal: ERR_ENDPOINT_INVALID (also when it names another service than the handshake), ERR_ENDPOINT_NOT_YOURS, ERR_ENDPOINT_DEAD
 */
export function admitEndpoint(broker: Broker, endpoint: unknown, service: string, peer: VerifiedPeer): string {
  let granted: { service: string; token: string };
  try {
    granted = broker.endpoints.check(endpoint, { kind: 'client', name: peer.name, uid: peer.uid });
  } catch (err) {
    if (!isBulkheadError(err)) throw err;
    // The table's own data (reason, opener, issuer) travels with the refusal, as 8.5's do.
    throw refusal(err.code, err.message, { ...err.data, reason: err.data['reason'] ?? 'endpoint', name: peer.name, service });
  }
  if (granted.service !== service) {
    throw refusal('ERR_ENDPOINT_INVALID', `The endpoint opens ${granted.service}, but the handshake asks for ${service}; name the endpoint's service.`, { reason: 'wrong-service', name: peer.name, service });
  }
  return granted.token;
}

/**
 * The daemon's admitted connections. A connection opened from an endpoint
 * (`record.endpoint`) is registered with the endpoint table while it is in
 * the set: the table withdraws it when the service's endpoints die, and an
 * endpoint with an open connection does not expire (a direct channel that
 * re-brokers after a helper crash presents it again).
 */
export class ClientRecords extends Set<ClientRecord> {
  private readonly untrack = new Map<ClientRecord, () => void>();

  constructor(private readonly broker: Broker) {
    super();
  }

  override add(record: ClientRecord): this {
    super.add(record);
    const token = record.endpoint;
    if (token !== undefined && !this.untrack.has(record)) this.untrack.set(record, this.broker.endpoints.table.track(token, (error) => record.withdraw(error)));
    return this;
  }

  override delete(record: ClientRecord): boolean {
    this.untrack.get(record)?.();
    this.untrack.delete(record);
    return super.delete(record);
  }
}
