/**
 * Who a daemon client is: the challenge–response half of the handshake
 * (docs/wire.md §8). The daemon sends a fresh nonce; the client answers with
 * its certificate, its name and a signature over the nonce bound to this
 * socket and daemon id; this file checks each and refuses with a typed,
 * documented `data.reason`. What the client may then reach (control or a
 * service, its `clients` list) is daemon.ts's part.
 * @module
 */
import { bulkheadError, isBulkheadError, type BulkheadError, type BulkheadErrorCode } from '../errors.js';
import { createChallenge, proofPayload, verifyProof, type CertificateAuthority } from '../identity/index.js';
import type { PendingConnection } from './gatekeeper.js';
import { writeHandshake } from './handshake-io.js';

/** The names a handshake has learned so far (for the refusal's log line). */
export interface HandshakeNames {
  client?: string | null;
  service?: string | null;
}

/** What {@link authenticateClient} needs of the daemon. */
export interface AuthContext {
  readonly ca: CertificateAuthority;
  /** The daemon id the proof is signed over (its CA's fingerprint). */
  readonly daemonId: string;
  /** The socket path the proof is signed over. */
  readonly socketPath: string;
  readonly handshakeTimeoutMs: number;
  /** Turns a fault on the daemon's side into the error the client may see. */
  fault(err: unknown, who: HandshakeNames): BulkheadError;
}

/** A client that proved who it is: the service it asks for and its verified certificate name. */
export interface AuthenticatedClient {
  service: string;
  identity: { name: string; serial: string };
  /** The client can take a descriptor and asks for a channel of its own (`direct: true` in its auth). */
  direct: boolean;
  /** The endpoint it opens (`endpoint` in its auth; endpoint-admission.ts checks it), if any. */
  endpoint: unknown;
}

/**
 * Challenge → auth: sends the nonce, reads the client's answer and verifies
 * certificate, name and proof. `who` learns the names as they are known.
 * @throws BulkheadError the refusal (ERR_AUTH_FAILED, ERR_AUTH_REQUIRED, ERR_CERT_*, or the fault)
 */
export async function authenticateClient(conn: PendingConnection, who: HandshakeNames, ctx: AuthContext): Promise<AuthenticatedClient> {
  const { socket, reader } = conn;
  const { nonce } = createChallenge();
  writeHandshake(socket, { t: 'challenge', v: 1, nonce, daemon: ctx.daemonId });
  const auth = await reader.next(ctx.handshakeTimeoutMs);
  const service = typeof auth['service'] === 'string' ? auth['service'] : undefined;
  const name = typeof auth['name'] === 'string' ? auth['name'] : undefined;
  who.client = name ?? null;
  who.service = service ?? null;
  const cert = auth['cert'];
  const sig = auth['sig'];
  if (auth['t'] !== 'auth' || service === undefined) {
    throw refusal('ERR_AUTH_FAILED', 'The first message must be { t: "auth", service, name, cert, sig } (see the handshake section of docs/wire.md).', { reason: 'bad-message', name, service });
  }
  if (typeof cert !== 'string' || cert === '' || !(sig instanceof Uint8Array) || name === undefined) {
    throw refusal('ERR_AUTH_REQUIRED', `Connecting to ${service} needs a certificate (text "cert"), the identity name ("name") and a signature over the challenge (byte string "sig"); issue an identity with \`bulkhead identity issue NAME\`.`, { reason: 'no-credentials', name, service });
  }
  let identity: { name: string; serial: string };
  try {
    identity = ctx.ca.verifyClient(cert);
  } catch (err) {
    if (!isBulkheadError(err)) throw err;
    // Not the client's doing (e.g. a corrupt revoked.json): the client learns only that the daemon failed.
    if (!err.code.startsWith('ERR_AUTH_') && !err.code.startsWith('ERR_CERT_')) throw ctx.fault(err, { client: name, service });
    // The CA's own data (reason, subject, serial, which, dates) travels with the refusal.
    const reason = err.data['reason'] ?? (err.code === 'ERR_CERT_REVOKED' ? 'revoked' : 'validity');
    throw refusal(err.code, err.message, { ...err.data, reason, name: typeof err.data['name'] === 'string' ? err.data['name'] : name, service });
  }
  who.client = identity.name;
  if (identity.name !== name) {
    throw refusal('ERR_AUTH_FAILED', `"name" must be the certificate's common name ("${identity.name}"), and the proof is signed over it.`, { reason: 'name-mismatch', name: identity.name, serial: identity.serial, service });
  }
  const payload = proofPayload(nonce, { socketPath: ctx.socketPath, daemonId: ctx.daemonId, clientName: identity.name });
  if (!verifyProof(cert, payload, sig)) {
    throw refusal('ERR_AUTH_FAILED', 'The signature does not prove possession of the certificate\'s key for this connection (wrong key, another socket path or daemon id, or a replayed handshake).', { reason: 'bad-proof', name: identity.name, serial: identity.serial, service });
  }
  return { service, identity, direct: auth['direct'] === true, endpoint: auth['endpoint'] };
}

/** A handshake refusal: its code, message, and `data` as docs/errors.md promises (`reason` always; names when known). */
export function refusal(code: BulkheadErrorCode, message: string, data: Record<string, unknown> & { reason: unknown; name: string | undefined; service: string | undefined }): BulkheadError {
  const { name, service, ...rest } = data;
  return bulkheadError(code, message, { ...rest, name: name ?? null, service: service ?? null });
}
