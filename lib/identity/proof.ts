/**
 * Challenge–response proof of possession for the daemon socket.
 *
 * The daemon sends a fresh random nonce on every connection. The client signs
 * {@link proofPayload}: a domain-separation prefix, the nonce, and the
 * connection's parameters (the socket path the client dialled, the daemon id it
 * expects, its own identity name). The daemon rebuilds the same bytes from its own
 * nonce and parameters, and verifies the signature with the public key in the
 * client's certificate. A recorded answer fails on the next connection (another
 * nonce), and an answer a rogue daemon relays from its own socket fails on the real
 * one (another socket path or daemon id).
 *
 * Signatures: RSASSA-PSS-SHA256 with a 32-byte salt, by Node's OpenSSL (see
 * `signature.ts` for why).
 *
 * Payload layout (all lengths unsigned 32-bit big-endian, strings UTF-8):
 * ```
 * "bulkhead-auth-v1\0" (17 bytes) | nonce (32 bytes)
 * | len | socketPath | len | daemonId | len | clientName
 * ```
 * @module
 */
import { randomBytes } from 'node:crypto';
import { bulkheadError } from '../errors.js';
import type { CertificateAuthority, VerifiedClient } from './ca.js';
import { commonNameOf, parseCertificatePem, publicKeyOf, tryParseCertificatePem } from './certificate.js';
import type { IdentityFiles } from './files.js';
import { pssVerify } from './signature.js';
import { hasProofDomain, NONCE_BYTES, proofPayload, signProof } from './proof-sign.js';

// The client's half lives in proof-sign.ts (no node-forge); every name stays importable from here.
export { MAX_CONTEXT_FIELD_BYTES, NONCE_BYTES, PROOF_DOMAIN, proofPayload, signProof, type ProofContext } from './proof-sign.js';

/** A challenge the daemon sends to one connecting client. */
export interface Challenge {
  /** {@link NONCE_BYTES} random bytes, never reused. */
  nonce: Buffer;
}

/** A client's answer to a challenge. */
export interface ChallengeAnswer {
  /** The client certificate, PEM. */
  certPem: string;
  /** The PSS signature over {@link proofPayload}. */
  signature: Buffer;
}

/** Creates a challenge with a fresh {@link NONCE_BYTES}-byte random nonce. One per connection. */
export function createChallenge(): Challenge {
  return { nonce: randomBytes(NONCE_BYTES) };
}

/**
 * True when `signature` is a valid RSASSA-PSS-SHA256 signature of `payload` by the
 * key in `certPem`, and `payload` is a proof payload. Never throws: a malformed
 * certificate or signature is simply `false`.
 *
 * This does not check that the certificate is trusted; call
 * {@link CertificateAuthority.verifyClient} too, or use {@link authenticateClient}.
 * @param certPem - the certificate the client presented
 * @param payload - rebuilt by the verifier with {@link proofPayload} from its own nonce and parameters
 * @param signature - the client's signature
 */
export function verifyProof(certPem: string, payload: Uint8Array, signature: Uint8Array): boolean {
  if (!hasProofDomain(payload) || !(signature instanceof Uint8Array)) return false;
  const parsed = tryParseCertificatePem(certPem);
  if (parsed === undefined) return false;
  try {
    return pssVerify(publicKeyOf(parsed.cert), payload, signature);
  } catch {
    return false; // a public key OpenSSL cannot import verifies nothing
  }
}

/**
 * The client side of the handshake: signs the proof for this challenge and
 * connection with the identity's key. The client name is read from the identity's
 * own certificate.
 * @param identity - the client's certificate and key
 * @param nonce - the nonce the daemon sent
 * @param connection - the socket path the client dialled and the daemon id it expects
 */
export function answerChallenge(identity: IdentityFiles, nonce: Uint8Array, connection: { socketPath: string; daemonId: string }): ChallengeAnswer {
  const { cert } = parseCertificatePem(identity.certPem, 'identity certificate');
  const clientName = commonNameOf(cert);
  if (clientName === undefined) throw bulkheadError('ERR_INVALID_OPTION', 'identity.certPem has no single subject common name; use a certificate from `bulkhead identity issue`.', { option: 'identity.certPem' });
  const payload = proofPayload(nonce, { socketPath: connection.socketPath, daemonId: connection.daemonId, clientName });
  return { certPem: identity.certPem, signature: signProof(identity.keyPem, payload) };
}

/**
 * The daemon side of the handshake, in one call: checks the certificate with
 * {@link CertificateAuthority.verifyClient}, then the proof over this connection's
 * nonce and parameters with the client name taken from the verified certificate
 * (never from the client's own message).
 *
 * Throws `ERR_AUTH_REQUIRED` when the answer has no certificate or no signature,
 * the codes of `verifyClient` for a bad certificate, and `ERR_AUTH_FAILED` when the
 * proof does not verify (wrong key, replayed or relayed answer).
 * @param ca - the daemon's CA
 * @param answer - what the client sent (untrusted)
 * @param challenge - the nonce this connection was sent, and the daemon's own parameters
 * @param now - the time to check certificate validity at
 */
export function authenticateClient(
  ca: CertificateAuthority,
  answer: { certPem?: unknown; signature?: unknown } | undefined,
  challenge: { nonce: Uint8Array; socketPath: string; daemonId: string },
  now: Date = new Date(),
): VerifiedClient {
  const { certPem, signature } = answer ?? {};
  if (typeof certPem !== 'string' || certPem.length === 0 || !(signature instanceof Uint8Array) || signature.byteLength === 0) {
    throw bulkheadError('ERR_AUTH_REQUIRED', 'The client presented no certificate and proof. Issue an identity with `bulkhead identity issue NAME` and connect with it.', {});
  }
  const client = ca.verifyClient(certPem, now);
  const payload = proofPayload(challenge.nonce, { socketPath: challenge.socketPath, daemonId: challenge.daemonId, clientName: client.name });
  if (!verifyProof(certPem, payload, signature)) {
    throw bulkheadError('ERR_AUTH_FAILED', `The proof of possession for "${client.name}" did not verify: the key does not belong to the certificate, or the answer was made for another connection (replayed or relayed). Use the key issued with the certificate and a fresh connection.`, { name: client.name, serial: client.serial, reason: 'bad-proof' });
  }
  return client;
}
