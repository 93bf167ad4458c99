/**
 * The CA directory on disk: its file names, creating the files (key,
 * certificate, empty revocation list) without ever leaving a mismatched pair,
 * and reading and writing the revocation list, failing closed (ERR_CORRUPT_STATE)
 * when it is damaged. `CertificateAuthority` (ca.ts) is the API over it.
 * @module
 */
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import forge from 'node-forge';
import { bulkheadError } from '../errors.js';
import { writeFileAtomic, writeFileExclusive } from './atomic-file.js';
import { normalizeSerial, parsePrivateKeyPem, randomSerial, signCertificate } from './certificate.js';

/** File names inside a CA directory. */
export const CA_FILES = {
  /** The CA private key, mode `0600`. */
  key: 'ca.key.pem',
  /** The CA certificate, mode `0644`. */
  cert: 'ca.cert.pem',
  /** The revocation list, mode `0644`. */
  revoked: 'revoked.json',
} as const;

/** RSA modulus size of every key the CA generates. */
export const RSA_BITS = 2048;

/** How far `notBefore` is back-dated by default, to absorb small clock differences. */
export const NOT_BEFORE_SKEW_MS = 60_000;

/** Milliseconds in a day. */
export const DAY_MS = 86_400_000;
/** forge takes the ASN.1 string type here; @types/node-forge types the field as a tag class. */
export const UTF8_STRING = forge.asn1.Type.UTF8 as unknown as forge.asn1.Class;

/** One entry of revoked.json. */
export interface RevocationEntry {
  serial: string;
  revokedAt: string;
}

/** Reads and validates revoked.json; throws `ERR_CORRUPT_STATE` (fail closed) if it is bad. */
export function readRevocations(path: string): Map<string, RevocationEntry> {
  const bad = (why: string, cause?: unknown): never => {
    throw bulkheadError('ERR_CORRUPT_STATE', `The revocation list ${path} is invalid (${why}); fix or restore it. The CA refuses to run without it.`, { dir: dirname(path), file: path }, cause);
  };
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    return bad('not JSON', err);
  }
  if (typeof doc !== 'object' || doc === null || (doc as { version?: unknown }).version !== 1 || !Array.isArray((doc as { revoked?: unknown }).revoked)) {
    return bad('expected {"version":1,"revoked":[...]}');
  }
  const out = new Map<string, RevocationEntry>();
  for (const entry of (doc as { revoked: unknown[] }).revoked) {
    const serial = normalizeSerial((entry as { serial?: unknown } | null)?.serial);
    const revokedAt = (entry as { revokedAt?: unknown } | null)?.revokedAt;
    if (serial === undefined) return bad('an entry has no hex "serial"');
    out.set(serial, { serial, revokedAt: typeof revokedAt === 'string' ? revokedAt : '' });
  }
  return out;
}

/** Replaces revoked.json atomically (temporary file + rename) with `entries`. */
export function writeRevocations(path: string, entries: RevocationEntry[]): void {
  writeFileAtomic(path, `${JSON.stringify({ version: 1, revoked: entries }, null, 2)}\n`, 0o644);
}

/** Creates the CA files. The certificate is published first with an exclusive link, so
 * two processes creating the same CA cannot end up with a mismatched pair. */
export async function createCaFiles(dir: string, commonName: string, validDays: number): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const keys = await new Promise<forge.pki.rsa.KeyPair>((resolve, reject) => {
    forge.pki.rsa.generateKeyPair({ bits: RSA_BITS, e: 0x10001 }, (err: Error | null, pair) => (err ? reject(err) : resolve(pair)));
  });
  const keyPem = forge.pki.privateKeyToPem(keys.privateKey);
  const notBefore = wholeSeconds(new Date(Date.now() - NOT_BEFORE_SKEW_MS));
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = new Date(notBefore.getTime() + validDays * DAY_MS);
  const attrs = [{ name: 'commonName', value: commonName, valueTagClass: UTF8_STRING }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  signCertificate(cert, parsePrivateKeyPem(keyPem, 'generated CA key'));

  const revokedPath = join(dir, CA_FILES.revoked);
  if (!existsSync(revokedPath)) writeFileAtomic(revokedPath, `${JSON.stringify({ version: 1, revoked: [] }, null, 2)}\n`, 0o644);
  publishExclusive(join(dir, CA_FILES.cert), forge.pki.certificateToPem(cert), 0o644, dir);
  publishExclusive(join(dir, CA_FILES.key), keyPem, 0o600, dir);
}

/** Writes `path` atomically, failing (`ERR_CORRUPT_STATE`: a concurrent creation) if it already exists. */
function publishExclusive(path: string, data: string, mode: number, dir: string): void {
  try {
    writeFileExclusive(path, data, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw bulkheadError('ERR_CORRUPT_STATE', `Another process created ${path} while this one was creating the CA in ${dir}; open the CA again.`, { dir, file: path }, err);
    }
    throw err;
  }
}

/** X.509 times have whole seconds; keep what we report equal to what is stored. */
export function wholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}
