/**
 * The daemon's authority over connections it already admitted: a client whose
 * certificate is revoked, or whom a reload removed from the service's
 * `clients`, loses its connection at once (a direct channel is shut down, a
 * routed one fails its calls), with the code a new handshake would be refused
 * with. The handshake checks once; this re-checks when what it checked changes.
 * @module
 */
import { watch, type FSWatcher } from 'node:fs';
import { bulkheadError, type BulkheadError } from '../errors.js';
import type { CertificateAuthority } from '../identity/index.js';
import type { PeerInfo } from '../wire/envelope.js';
import { admits } from './client-policy.js';
import type { PeerCredentials } from './peer-credentials.js';

/** One authenticated client connection, as `bulkhead ps --clients` shows it. */
export interface ClientRecord {
  service: string;
  peer: PeerInfo;
  credentials: PeerCredentials;
  since: number;
  /** How its calls travel: on a channel handed to it ("direct"), or through the daemon ("routed"). */
  path: 'direct' | 'routed';
  /** Serial of the certificate it proved (revocation is checked against it while it stays connected); '' for control. */
  serial: string;
  /** Token of the endpoint it was admitted on (then `clients` does not apply to it; endpoint-admission.ts). */
  endpoint?: string;
  /** Ends the connection now, telling the client `error`. */
  withdraw(error: BulkheadError): void;
  /** Direct channels: the reason it will end for if its helper goes first (undefined: withdrawn no more). */
  announce?(reason: BulkheadError | undefined): void;
}

/** What the daemon knows of one admitted connection. */
export interface AdmittedClient {
  service: string;
  name: string;
  uid: number;
  gid: number;
  /** Serial of the certificate it proved. */
  serial: string;
  /** Admitted on an endpoint, not on the service's `clients`: only revocation (and the endpoint's death) withdraws it. */
  endpoint?: boolean;
}

/**
 * Why `client` may no longer hold its connection, or undefined while it may.
 * @param clientsOf - the service's current `clients` (undefined: the service is gone, which its route reports itself)
 */
export function withdrawal(client: AdmittedClient, ca: CertificateAuthority, clientsOf: (service: string) => readonly string[] | undefined): BulkheadError | undefined {
  if (ca.isRevoked(client.serial)) {
    return bulkheadError('ERR_CERT_REVOKED', `The certificate for "${client.name}" (serial ${client.serial}) was revoked; the daemon closed its connection to ${client.service}.`, { name: client.name, serial: client.serial, service: client.service });
  }
  const clients = clientsOf(client.service);
  if (clients !== undefined && client.endpoint !== true && !admits(clients, client)) {
    return bulkheadError('ERR_NOT_PERMITTED', `Identity "${client.name}" (uid ${client.uid}, gid ${client.gid}) is no longer among ${client.service}'s clients after a reload; the daemon closed its connection.`, { reason: 'not-in-clients', name: client.name, service: client.service });
  }
  return undefined;
}

/** What a record's withdrawal check needs. */
function admitted(record: ClientRecord): AdmittedClient {
  return { service: record.service, name: record.peer.name, uid: record.credentials.uid, gid: record.credentials.gid, serial: record.serial, endpoint: record.endpoint !== undefined };
}

/**
 * Re-checks every admitted connection (control ones aside) against the
 * revocation list and the services' `clients`: a client that would now be
 * refused loses its connection at once. Returns what was withdrawn.
 * @throws BulkheadError ERR_CORRUPT_STATE when the revocation list cannot be read (nothing is withdrawn on a guess)
 */
export function recheckClients(records: Iterable<ClientRecord>, skipService: string, ca: CertificateAuthority, clientsOf: (service: string) => readonly string[] | undefined): Array<{ record: ClientRecord; error: BulkheadError }> {
  const verdicts: Array<{ record: ClientRecord; error: BulkheadError }> = [];
  for (const record of records) {
    if (record.service === skipService) continue;
    const error = withdrawal(admitted(record), ca, clientsOf);
    if (error !== undefined) verdicts.push({ record, error });
  }
  for (const { record, error } of verdicts) record.withdraw(error);
  return verdicts;
}

/**
 * Before a reload applies `next` (service → clients of the new config): tells
 * each direct channel the new config withdraws why it is about to end, since
 * the reload may restart its helper first. Returns them (to take it back if the reload fails).
 */
export function announceWithdrawals(records: Iterable<ClientRecord>, ca: CertificateAuthority, next: Map<string, readonly string[]>): ClientRecord[] {
  const announced: ClientRecord[] = [];
  for (const record of records) {
    if (record.announce === undefined) continue;
    const error = withdrawal(admitted(record), ca, (name) => next.get(name));
    if (error === undefined) continue;
    record.announce(error);
    announced.push(record);
  }
  return announced;
}

/**
 * Each service's `clients` in a config's raw `services` array (not yet
 * checked: what a reload is about to apply), by service name.
 */
export function clientsInConfig(services: readonly unknown[]): Map<string, readonly string[]> {
  const out = new Map<string, readonly string[]>();
  for (const entry of services) {
    if (typeof entry !== 'object' || entry === null) continue;
    const { name, clients } = entry as { name?: unknown; clients?: unknown };
    if (typeof name !== 'string') continue;
    out.set(name, Array.isArray(clients) ? clients.filter((c): c is string => typeof c === 'string') : []);
  }
  return out;
}

/**
 * Calls `changed` whenever the CA directory's revocation list changes
 * (`bulkhead identity revoke` replaces it atomically). Returns the stopper.
 */
export function watchRevocations(caDir: string, revokedFile: string, changed: () => void): () => void {
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(caDir, { persistent: false }, (_event, file) => {
      if (file === null || file === revokedFile) changed();
    });
    watcher.on('error', () => watcher?.close());
  } catch {
    // No inotify here: revocation still applies from the next handshake on.
  }
  return () => watcher?.close();
}
