/**
 * X.509 plumbing shared by the identity layer: strict PEM parsing, the
 * certificate's common name and fingerprint, and signing a certificate that
 * node-forge built.
 *
 * node-forge builds, encodes, parses and chain-checks every certificate. The
 * one RSA private-key operation (the issuer's signature over the DER
 * TBSCertificate) is done by Node's OpenSSL: forge's pure-JavaScript private-key
 * operation takes hundreds of milliseconds per signature, OpenSSL's about one.
 * @module
 */
import { createHash, createPublicKey, randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { bulkheadError } from '../errors.js';

import { MAX_CERT_PEM_CHARS } from './key-pem.js';

// The forge-free part (limits, name rule, private keys): one file a client can load without node-forge.
export { IDENTITY_NAME_PATTERN, MAX_CERT_PEM_CHARS, MAX_KEY_PEM_CHARS, parsePrivateKeyPem } from './key-pem.js';

/** The only certificate signature algorithm the identity layer issues or accepts. */
export const SHA256_WITH_RSA_OID = forge.pki.oids['sha256WithRSAEncryption'] as string;

/** A parsed certificate together with its exact DER bytes. */
export interface ParsedCertificate {
  /** node-forge's view of the certificate. */
  readonly cert: forge.pki.Certificate;
  /** The DER bytes that were in the PEM. */
  readonly der: Buffer;
}

/** node-forge exports this in JavaScript but @types/node-forge does not declare it. */
const getTBSCertificate = (forge.pki as unknown as { getTBSCertificate(this: void, cert: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate;

/**
 * Parses exactly one `CERTIFICATE` PEM block, strictly (all DER bytes consumed).
 * Returns `undefined` for anything else, so callers choose their own error code.
 */
export function tryParseCertificatePem(pem: unknown): ParsedCertificate | undefined {
  if (typeof pem !== 'string' || pem.length === 0 || pem.length > MAX_CERT_PEM_CHARS) return undefined;
  try {
    const messages = forge.pem.decode(pem);
    if (messages.length !== 1) return undefined;
    const msg = messages[0]!;
    if (msg.type !== 'CERTIFICATE' || msg.procType) return undefined;
    // forge ≥1.3 takes an options object here; @types/node-forge only declares the boolean form.
    const fromDer = forge.asn1.fromDer as unknown as (bytes: string, options: { strict: boolean; parseAllBytes: boolean; decodeBitStrings: boolean }) => forge.asn1.Asn1;
    const asn1 = fromDer(msg.body, { strict: true, parseAllBytes: true, decodeBitStrings: true });
    const cert = forge.pki.certificateFromAsn1(asn1, true);
    return { cert, der: Buffer.from(msg.body, 'binary') };
  } catch {
    // Every parse failure means the same thing to callers: not a certificate we can read.
    return undefined;
  }
}

/**
 * Parses one certificate PEM or throws `ERR_AUTH_FAILED` (a malformed certificate is a
 * failed authentication, whoever sent it).
 * @param what - names the certificate in the error message
 */
export function parseCertificatePem(pem: unknown, what = 'certificate'): ParsedCertificate {
  const parsed = tryParseCertificatePem(pem);
  if (parsed === undefined) {
    throw bulkheadError('ERR_AUTH_FAILED', `The ${what} is not one well-formed PEM X.509 certificate (at most ${MAX_CERT_PEM_CHARS} characters); present the .cert.pem written by \`bulkhead identity issue\`.`, { reason: 'malformed-certificate' });
  }
  return parsed;
}

/** The single commonName of a certificate's subject, or `undefined` if it has none or several. */
export function commonNameOf(cert: forge.pki.Certificate): string | undefined {
  const cns = cert.subject.attributes.filter((a) => a.type === '2.5.4.3');
  if (cns.length !== 1) return undefined;
  const value = cns[0]!.value;
  return typeof value === 'string' ? value : undefined;
}

/** Lower-case hex SHA-256 of a certificate's DER bytes (its fingerprint). */
export function certificateFingerprint(certPem: string): string {
  return createHash('sha256').update(parseCertificatePem(certPem).der).digest('hex');
}

/**
 * Normalises a serial number for comparison: lower-case hex without leading zeros.
 * Returns `undefined` if `serial` is not 1–64 hex digits.
 */
export function normalizeSerial(serial: unknown): string | undefined {
  if (typeof serial !== 'string' || !/^[0-9A-Fa-f]{1,64}$/.test(serial)) return undefined;
  return serial.toLowerCase().replace(/^0+(?=.)/, '');
}

/** The RSA public key of a forge certificate as a Node KeyObject. */
export function publicKeyOf(cert: forge.pki.Certificate): KeyObject {
  return createPublicKey(forge.pki.publicKeyToPem(cert.publicKey));
}

/**
 * Signs a certificate that node-forge built (subject, issuer, validity, extensions
 * and public key already set) with sha256WithRSAEncryption, using `issuerKey`.
 * Equivalent to forge's `cert.sign(key, forge.md.sha256.create())`, with the RSA
 * operation done by OpenSSL.
 */
export function signCertificate(cert: forge.pki.Certificate, issuerKey: KeyObject): void {
  cert.signatureOid = SHA256_WITH_RSA_OID;
  cert.siginfo.algorithmOid = SHA256_WITH_RSA_OID;
  cert.tbsCertificate = getTBSCertificate(cert);
  const tbs = Buffer.from(forge.asn1.toDer(cert.tbsCertificate).getBytes(), 'binary');
  cert.signature = cryptoSign('sha256', tbs, issuerKey).toString('binary');
}

/** 16 random bytes as a positive, fixed-width (32 hex digit) X.509 serial number. */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  // Top bit clear (positive INTEGER), second bit set (no leading zero byte): the hex
  // form round-trips through DER unchanged.
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString('hex');
}
