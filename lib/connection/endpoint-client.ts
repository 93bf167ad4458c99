/**
 * A helper's side of endpoints (docs/wire.md section 11), over its broker
 * requests on the outbound channel: minting one for a receiver, and opening
 * one minted for this helper (a client routed by the broker, which checks the
 * grant on every call). `bulkhead/service` exports the public functions.
 * @module
 */
import { bulkheadError } from '../errors.js';
import { isEndpoint, type Endpoint } from '../protocol/endpoint-keyword.js';
import { CompiledProtocol } from '../protocol/compiled-protocol.js';
import type { PeerInfo } from '../wire/envelope.js';
import type { FramedChannel } from '../wire/framed-channel.js';
import type { BrokerRequests } from './broker-requests.js';
import type { ServiceEndpoint } from './connection.js';
import { RpcClient } from './rpc-client.js';

/**
 * Who an endpoint is for: the peer a handler is answering (`ctx.peer`, as the
 * broker verified it), another service (`{ service }`), or a daemon client
 * identity (`{ client, uid? }`).
 */
export type EndpointReceiver = PeerInfo | { service: string } | { client: string; uid?: number };

/** Options of `mintEndpoint()` (bulkhead/service). */
export interface MintEndpointOptions {
  /**
   * How long the endpoint may wait to be opened, in ms (at most 1 h); once
   * opened it lives as long as its service.
   * @default 300000
   */
  ttlMs?: number;
}

/** Asks the broker to mint an endpoint (see `mintEndpoint()` in bulkhead/service). */
export async function requestMint<S extends string>(broker: BrokerRequests, service: S, receiver: EndpointReceiver, options: MintEndpointOptions): Promise<Endpoint<S>> {
  const result = await broker.request('mintEndpoint', { service, receiver: receiverOnWire(receiver), ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }) });
  if (!isEndpoint(result, service)) throw bulkheadError('ERR_BAD_FRAME', `The broker answered mintEndpoint for ${service} with something that is not an endpoint.`);
  return result as Endpoint<S>;
}

/** The wire form of a receiver (docs/wire.md 11.2): a peer with a uid is a daemon client, "main-app" the embedding app, any other peer a service. */
function receiverOnWire(receiver: EndpointReceiver): Record<string, unknown> {
  if ('client' in receiver) return { kind: 'client', name: receiver.client, ...(receiver.uid === undefined ? {} : { uid: receiver.uid }) };
  if ('service' in receiver) return { kind: 'service', name: receiver.service };
  if (receiver.uid !== undefined) return { kind: 'client', name: receiver.name, uid: receiver.uid };
  return receiver.name === 'main-app' ? { kind: 'app' } : { kind: 'service', name: receiver.name };
}

/** What opening an endpoint needs of the helper's outbound channel. */
export interface OutboundState {
  channel: FramedChannel;
  /** One client per target service, by service; its position is its id range minus one. */
  targets: Map<string, RpcClient>;
  broker: BrokerRequests;
}

/**
 * Asks the broker to open `endpoint` for this helper; returns the Connection
 * side of the target's client (see `connectEndpoint()` in bulkhead/service).
 * @throws BulkheadError `ERR_ENDPOINT_INVALID`, `ERR_ENDPOINT_NOT_YOURS`, `ERR_ENDPOINT_DEAD`
 */
export async function openEndpoint(outbound: OutboundState, endpoint: Endpoint): Promise<ServiceEndpoint> {
  if (!isEndpoint(endpoint)) throw bulkheadError('ERR_ENDPOINT_INVALID', 'Not an endpoint: expected { service, token } exactly as the issuing service passed it on.', { reason: 'malformed' });
  const { channel, targets, broker } = outbound;
  const service = endpoint.service;
  const answer = await broker.request('openEndpoint', { endpoint: { service, token: endpoint.token } }) as { document?: unknown };
  let rpc = targets.get(service);
  if (rpc === undefined) {
    // The broker's copy of the service's protocol: this helper validates the service's answers against it.
    const protocol = CompiledProtocol.from(answer.document, `protocol of ${service} (from the broker)`, { eager: false });
    rpc = new RpcClient(channel, protocol, { broadcast: () => {}, eventError: () => {} }, { service, idRange: targets.size + 1, skipHello: true, trustPeerCodes: true });
    targets.set(service, rpc);
  }
  const client = rpc;
  // Routed by the broker, never a direct channel: the broker checks the grant on every call.
  return { service, protocol: client.protocol, callMeta: { service }, current: () => client, acquire: () => Promise.resolve(client), detach: () => {} };
}
