/**
 * The daemon's choice at the end of a handshake: a client that asked for a
 * channel of its own (and may have one) gets it here; everything else is
 * routed by daemon.ts as before. Docs: docs/wire.md, "Hand-off".
 * @module
 */
import type { Broker } from '../broker/broker.js';
import { loadFdPassing } from '../broker/fd-passing.js';
import { isBulkheadError } from '../errors.js';
import type { PeerInfo } from '../wire/envelope.js';
import type { ClientRecord } from './client-authority.js';
import { refusal } from './client-auth.js';
import { DirectSession } from './direct-session.js';
import { peerFields, type Gatekeeper, type PendingConnection } from './gatekeeper.js';

/** The daemon's state a hand-off joins. */
export interface DirectAdmissionContext {
  readonly broker: Broker;
  readonly gatekeeper: Gatekeeper;
  readonly sessions: Set<{ close(): void }>;
  readonly connections: Set<ClientRecord>;
  /** Services whose helper cannot take direct channels: their clients are routed. */
  readonly routedOnly: Set<string>;
  /** `daemon.direct` of the settings. */
  readonly enabled: boolean;
  log(entry: Record<string, unknown> & { event: string }): void;
}

/** True when the daemon can hand `service` to a client that asked for it. */
export function mayHandOff(ctx: DirectAdmissionContext, service: string): boolean {
  return ctx.enabled && !ctx.routedOnly.has(service) && !('problem' in loadFdPassing());
}

/**
 * Hands the authenticated, authorised client a channel of its own to the
 * service's helper (`endpoint`: the token it was admitted on, if any). Returns false when nothing reached the client (it is then routed).
 * @throws BulkheadError the refusal when the service cannot take a route (failed, closed)
 */
export function admitDirect(ctx: DirectAdmissionContext, conn: PendingConnection, service: string, peer: PeerInfo, serial: string, endpoint?: string): boolean {
  const { socket, credentials } = conn;
  const who = { client: peer.name, service };
  let session: DirectSession;
  try {
    session = new DirectSession(socket, ctx.broker.supervisorOf(service), peer, (error) => {
      ctx.sessions.delete(handle);
      ctx.connections.delete(record);
      if (error?.data['reason'] === 'no-handoff') ctx.routedOnly.add(service);
      ctx.gatekeeper.disconnected(credentials, who, error);
      ctx.broker.metricsRecorder.disconnected();
    });
  } catch (err) {
    throw refusal(isBulkheadError(err) ? err.code : 'ERR_INVALIDATED', (err as Error).message, { reason: 'no-route', name: peer.name, service });
  }
  const record: ClientRecord = {
    service, peer, credentials, since: Date.now(), path: 'direct', serial, ...(endpoint === undefined ? {} : { endpoint }),
    withdraw: (error) => session.end(error),
    announce: (reason) => session.announce(reason),
  };
  // The daemon closing ends the channel without a word: the client reads that as the daemon gone.
  const handle = { close: () => session.end() };
  const started = session.start({ t: 'ok', peer, range: 0, direct: true });
  if (started === 'not-sent') return false;
  conn.admitted();
  if (started === 'broken') {
    socket.destroy();
    return true;
  }
  ctx.sessions.add(handle);
  ctx.connections.add(record);
  ctx.broker.metricsRecorder.connected();
  ctx.log({ event: 'connect', service, client: peer.name, path: 'direct', channel: session.id, ...peerFields(credentials) });
  return true;
}
