/**
 * The one signature scheme of the identity layer for data that is not a
 * certificate (handshake proofs, code-signing manifests): RSASSA-PSS with SHA-256,
 * MGF1-SHA-256 and a 32-byte salt (RFC 8017), computed by Node's OpenSSL.
 *
 * Why PSS rather than PKCS#1 v1.5: PSS is randomised and has a security proof,
 * RFC 8017 recommends it for new applications, and TLS 1.3 requires it for the
 * handshake signature our proof imitates (CertificateVerify). PKCS#1 v1.5
 * verifiers have a history of forgeries through lenient DigestInfo parsing
 * (node-forge's own CVE-2022-24771/24772/24773, fixed in 1.3.0); PSS leaves no
 * ASN.1 to parse. The salt length is fixed, and verification requires exactly it.
 *
 * Every caller prefixes its payload with its own domain-separation string, so a
 * signature made for one purpose never verifies for another.
 * @module
 */
import { constants, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';

/** PSS salt length in bytes (the SHA-256 digest length). */
export const PSS_SALT_BYTES = 32;

/** Smallest RSA modulus, in bits, this layer signs with or accepts. */
export const MIN_RSA_BITS = 2048;

/** Signs `data` with RSASSA-PSS-SHA256. `key` must be an RSA private key. */
export function pssSign(key: KeyObject, data: Uint8Array): Buffer {
  return cryptoSign('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: PSS_SALT_BYTES });
}

/**
 * Verifies an RSASSA-PSS-SHA256 signature. Returns false (never throws) for a
 * wrong signature, a key that is not RSA or is smaller than {@link MIN_RSA_BITS},
 * or a malformed signature.
 */
export function pssVerify(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  const modulusBits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (key.asymmetricKeyType !== 'rsa' || modulusBits < MIN_RSA_BITS) return false;
  // OpenSSL accepts a signature shorter than the modulus as the same integer (leading zero bytes
  // dropped); we take exactly one encoding, so a signature has one valid form.
  if (signature.length !== Math.ceil(modulusBits / 8)) return false;
  try {
    return cryptoVerify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: PSS_SALT_BYTES }, signature);
  } catch {
    return false; // a malformed signature is a failed verification, not an exception
  }
}
