/**
 * A helper's calls to other services (the `connect`, `connectEndpoint` and `mintEndpoint` that
 * `bulkhead/service` exports): its outbound channel (fd 4), opened on first use, one client per
 * target service on it, and a direct channel per target where the broker hands one over.
 * Split from lib/service.ts, which re-exports these.
 * @module
 */
import { Socket } from 'node:net';
import { bulkheadError } from '../errors.js';
import { HELPER_ENV } from '../wire/helper-env.js';
import { loadProtocolFile } from '../protocol/registry.js';
import type { AnyProtocol, ProtocolShape } from '../protocol/types.js';
import type { Endpoint } from '../protocol/endpoint-keyword.js';
import { FramedChannel } from '../wire/framed-channel.js';
import { ID_RANGE_SIZE } from '../wire/envelope.js';
import { Connection, type ServiceEndpoint } from './connection.js';
import { RpcClient } from './rpc-client.js';
import { openHelperPipe } from './helper-pipe.js';
import { PeerLink, requestPeerChannel } from './peer-link.js';
import { BROKER_REQUEST_RANGE, BrokerRequests } from './broker-requests.js';
import { openEndpoint, requestMint, type EndpointReceiver, type MintEndpointOptions } from './endpoint-client.js';

/** Outbound channel (fd 4) and one client per target service, made on first use. */
let outbound: { channel: FramedChannel; targets: Map<string, RpcClient>; files: Record<string, string>; links: Map<string, PeerLink>; broker: BrokerRequests } | undefined;

/**
 * Opens a connection from this helper to another service. The helper's
 * manifest must list the service in `connects`; the broker refuses anything
 * else with ERR_NOT_PERMITTED, and the target's handlers see this service as
 * `ctx.peer`. Calls go over a direct channel the broker hands both helpers
 * (docs/wire.md, "Helper-to-helper hand-off"), or through the broker where it
 * cannot (no hand-off pipe, or the target's runtime takes no channels).
 * @example
 * ```ts
 * const store = connect<StoreProtocol>('com.example.store');
 * await store.call('put', { key, value });
 * ```
 * @throws BulkheadError `ERR_NOT_PERMITTED` when the manifest has no `connects`
 *   for `service` (no outbound channel, or the service is not among the targets)
 */
export function connect<P extends ProtocolShape = AnyProtocol>(service: string): Connection<P> {
  outbound ??= openOutbound();
  const { channel, targets, files, links } = outbound;
  const file = files[service];
  if (file === undefined) {
    throw bulkheadError('ERR_NOT_PERMITTED', `This helper may not call ${service}: add "${service}" to its manifest's connects (targets: ${Object.keys(files).join(', ') || 'none'}).`, { target: service });
  }
  let rpc = targets.get(service);
  if (rpc === undefined) {
    // One id range per target on the shared channel, so answers find their client.
    rpc = new RpcClient(channel, loadProtocolFile(file, undefined, { eager: false }), { broadcast: () => {}, eventError: () => {} }, { service, idRange: targets.size + 1, skipHello: true, trustPeerCodes: true });
    targets.set(service, rpc);
  }
  const client = rpc;
  let link = links.get(service);
  if (link === undefined && openHelperPipe(Number(process.env[HELPER_ENV.handoffFd] ?? ''))) {
    link = new PeerLink(service, client.protocol, () => client);
    links.set(service, link);
  }
  const direct = link;
  const endpoint: ServiceEndpoint = {
    service,
    protocol: client.protocol,
    // The routed path needs the target's name; a direct channel's helper ignores it.
    callMeta: { service },
    current: () => (direct === undefined ? client : direct.current()),
    acquire: () => (direct === undefined ? Promise.resolve(client) : direct.acquire()),
    detach: () => {},
  };
  return new Connection<P>(endpoint);
}

/**
 * Opens a connection from an endpoint minted for this service (a field typed
 * `Endpoint<'S'>` in a result, params or event it received): the broker checks
 * that this service is the receiver and that S lives, then routes this
 * helper's calls to S as if its manifest `connects` to it, until S's endpoints
 * die (then calls fail with ERR_ENDPOINT_DEAD). Needs the outbound channel,
 * which a helper has when its manifest lists any `connects`.
 * @throws BulkheadError `ERR_ENDPOINT_INVALID`, `ERR_ENDPOINT_NOT_YOURS`, `ERR_ENDPOINT_DEAD`, `ERR_NOT_PERMITTED` (no outbound channel)
 */
export async function connectEndpoint<P extends ProtocolShape = AnyProtocol>(endpoint: Endpoint): Promise<Connection<P>> {
  outbound ??= openOutbound();
  return new Connection<P>(await openEndpoint(outbound, endpoint));
}

/**
 * @internal For tests of the broker's checks: asks the broker for a raw
 * direct channel to `service`, as connect() does on first use (the broker
 * authorizes it the same way); `"routed"` where there is no hand-off.
 */
export function openPeerSocket(service: string): Promise<{ id: number; socket: Socket } | 'routed'> {
  if (!openHelperPipe(Number(process.env[HELPER_ENV.handoffFd] ?? ''))) return Promise.resolve('routed');
  return requestPeerChannel(service);
}

function openOutbound(): NonNullable<typeof outbound> {
  const files = JSON.parse(process.env[HELPER_ENV.connects] ?? '{}') as Record<string, string>;
  let socket: Socket;
  try {
    socket = new Socket({ fd: 4, readable: true, writable: true });
  } catch (err) {
    throw bulkheadError('ERR_NOT_PERMITTED', 'This helper has no outbound channel: its manifest lists no services in connects.', {}, err);
  }
  const channel = new FramedChannel(socket);
  const targets = new Map<string, RpcClient>();
  const broker = new BrokerRequests(channel);
  channel.attach({
    envelope: (e, body) => {
      const id = e.kind === 'reply' || e.kind === 'error' || e.kind === 'item' || e.kind === 'credit' ? e.id : e.kind === 'event' ? e.callId : 0;
      const range = Math.floor(id / ID_RANGE_SIZE);
      if (range === BROKER_REQUEST_RANGE) broker.receive(e);
      else [...targets.values()][range - 1]?.receive(e, body.length);
    },
    closed: () => {
      for (const rpc of targets.values()) rpc.interrupt(bulkheadError('ERR_INTERRUPTED', 'The broker connection closed.'));
      broker.interrupt(bulkheadError('ERR_INTERRUPTED', 'The broker connection closed.'));
    },
  });
  // The broker never closes this channel by itself; it must not keep the helper alive.
  socket.unref();
  return { channel, targets, files, links: new Map(), broker };
}

/**
 * Asks the broker for an endpoint to `service` bound to `receiver`, to return
 * or send in a field the protocol types `{ "x-bulkhead-endpoint": service }`.
 * The receiver opens a connection from it (`broker.connectEndpoint(ep)`, or
 * `daemon.connectEndpoint(ep)`); nobody else can. An endpoint passes on a
 * right this helper holds, so its manifest must `connects` to `service`.
 * @example
 * ```ts
 * serve('com.example.directory', {
 *   open: async (_params, ctx) => ({ store: await mintEndpoint('com.example.store', ctx.peer) }),
 * });
 * ```
 * @throws BulkheadError `ERR_NOT_PERMITTED` (not in connects), `ERR_UNKNOWN_SERVICE`, `ERR_BACKPRESSURE` (too many live endpoints), `ERR_INVALID_OPTION`
 */
export async function mintEndpoint<S extends string>(service: S, receiver: EndpointReceiver, options: MintEndpointOptions = {}): Promise<Endpoint<S>> {
  outbound ??= openOutbound();
  return await requestMint(outbound.broker, service, receiver, options);
}
