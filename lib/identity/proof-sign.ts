/**
 * The client's half of the challenge–response proof (proof.ts has the whole
 * protocol and the daemon's half): the payload a client signs and its
 * signature, with Node's OpenSSL only, so a daemon client never loads
 * node-forge (key-pem.ts). proof.ts re-exports every name.
 * @module
 */
import { bulkheadError } from '../errors.js';
import { parsePrivateKeyPem } from './key-pem.js';
import { MIN_RSA_BITS, pssSign } from './signature.js';

/** Domain-separation prefix of every handshake proof payload. */
export const PROOF_DOMAIN = 'bulkhead-auth-v1\0';

/** Length of a challenge nonce in bytes. */
export const NONCE_BYTES = 32;

/** Longest accepted context field (socket path, daemon id, client name), in UTF-8 bytes. */
export const MAX_CONTEXT_FIELD_BYTES = 4096;

const DOMAIN_BYTES = Buffer.from(PROOF_DOMAIN, 'utf8');

/** The connection parameters a proof is bound to. */
export interface ProofContext {
  /** The daemon socket path, as the client dialled it and as the daemon listens on it. */
  socketPath: string;
  /** The daemon's identity; the CA fingerprint (`CertificateAuthority.fingerprint`) is a good choice because the client can know it in advance. */
  daemonId: string;
  /** The client's identity name (its certificate's common name). */
  clientName: string;
}

/**
 * The canonical bytes a client signs: {@link PROOF_DOMAIN}, the nonce, then the
 * three context fields, each preceded by its byte length (so no two different
 * contexts give the same bytes). Throws `ERR_INVALID_OPTION` for a nonce that is not
 * {@link NONCE_BYTES} bytes or a context field that is not a non-empty string of at
 * most {@link MAX_CONTEXT_FIELD_BYTES} bytes.
 * @param nonce - the challenge nonce
 * @param context - this connection's parameters
 */
export function proofPayload(nonce: Uint8Array, context: ProofContext): Buffer {
  if (!(nonce instanceof Uint8Array) || nonce.byteLength !== NONCE_BYTES) {
    throw bulkheadError('ERR_INVALID_OPTION', `nonce must be ${NONCE_BYTES} bytes (from createChallenge()).`, { option: 'nonce' });
  }
  if (typeof context !== 'object' || (context as ProofContext | null) === null) throw bulkheadError('ERR_INVALID_OPTION', 'context must be { socketPath, daemonId, clientName }.', { option: 'context' });
  const parts: Buffer[] = [DOMAIN_BYTES, Buffer.from(nonce.buffer, nonce.byteOffset, nonce.byteLength)];
  for (const field of ['socketPath', 'daemonId', 'clientName'] as const) {
    const value: unknown = context[field];
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : undefined;
    if (bytes === undefined || bytes.length === 0 || bytes.length > MAX_CONTEXT_FIELD_BYTES) {
      throw bulkheadError('ERR_INVALID_OPTION', `context.${field} must be a non-empty string of at most ${MAX_CONTEXT_FIELD_BYTES} UTF-8 bytes.`, { option: `context.${field}` });
    }
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    parts.push(length, bytes);
  }
  return Buffer.concat(parts);
}

/**
 * Signs a proof payload with the client's private key (RSASSA-PSS-SHA256).
 * Refuses (`ERR_INVALID_OPTION`) a payload that does not start with
 * {@link PROOF_DOMAIN}, so this function cannot be used to sign anything else, and a
 * key that is not RSA of at least 2048 bits.
 * @param keyPem - the client's `.key.pem`
 * @param payload - from {@link proofPayload}
 */
export function signProof(keyPem: string, payload: Uint8Array): Buffer {
  if (!hasProofDomain(payload)) throw bulkheadError('ERR_INVALID_OPTION', 'payload must come from proofPayload().', { option: 'payload' });
  const key = parsePrivateKeyPem(keyPem, 'keyPem');
  if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) {
    throw bulkheadError('ERR_INVALID_OPTION', `keyPem must be an RSA key of at least ${MIN_RSA_BITS} bits.`, { option: 'keyPem' });
  }
  return pssSign(key, payload);
}

/** True when `payload` starts with {@link PROOF_DOMAIN} (and has more after it). */
export function hasProofDomain(payload: unknown): payload is Uint8Array {
  return payload instanceof Uint8Array && payload.byteLength > DOMAIN_BYTES.length && Buffer.from(payload.buffer, payload.byteOffset, DOMAIN_BYTES.length).equals(DOMAIN_BYTES);
}
