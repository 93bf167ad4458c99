/**
 * The daemon's certificate authority: one RSA key and self-signed certificate kept
 * in a private directory, the client certificates it issues, and its revocation
 * list. The daemon calls {@link CertificateAuthority.verifyClient} on every
 * certificate a client presents.
 *
 * Files in the CA directory (created `0700` on first use):
 * - `ca.key.pem` (`0600`): the CA's private key. Whoever reads it can mint identities.
 * - `ca.cert.pem` (`0644`): the CA certificate, the one trust anchor.
 * - `revoked.json` (`0644`): `{ "version": 1, "revoked": [{ "serial", "revokedAt" }] }`,
 *   replaced atomically on every change and re-read when it changes on disk, so a
 *   `bulkhead identity revoke` in another process reaches a running daemon.
 * @module
 */
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';
import { bulkheadError } from '../errors.js';
import { CA_FILES, DAY_MS, NOT_BEFORE_SKEW_MS, RSA_BITS, UTF8_STRING, createCaFiles, readRevocations, wholeSeconds, writeRevocations, type RevocationEntry } from './ca-directory.js';

export { CA_FILES, NOT_BEFORE_SKEW_MS, RSA_BITS } from './ca-directory.js';
import {
  IDENTITY_NAME_PATTERN,
  SHA256_WITH_RSA_OID,
  commonNameOf,
  normalizeSerial,
  parseCertificatePem,
  parsePrivateKeyPem,
  publicKeyOf,
  randomSerial,
  signCertificate,
  tryParseCertificatePem,
} from './certificate.js';

/** Defaults of {@link CertificateAuthorityOptions}. */
export const CA_DEFAULTS = {
  /** @default 'bulkhead CA' */
  commonName: 'bulkhead CA',
  /** @default 3650 */
  validDays: 3650,
} as const;

/** Defaults of {@link IssueOptions}. */
export const ISSUE_DEFAULTS = {
  /** @default 365 */
  validDays: 365,
} as const;

const MAX_VALID_DAYS = 36_500;

/** Options of {@link CertificateAuthority.loadOrCreate}; used only when the CA is created. */
export interface CertificateAuthorityOptions {
  /**
   * Common name of the CA certificate (1–64 characters).
   * @default 'bulkhead CA'
   */
  commonName?: string;
  /**
   * Validity of the CA certificate in days.
   * @default 3650
   */
  validDays?: number;
}

/** Options of {@link CertificateAuthority.issue}. */
export interface IssueOptions {
  /**
   * Validity in days, counted from `notBefore`; ignored when `notAfter` is given.
   * @default 365
   */
  validDays?: number;
  /**
   * Start of validity.
   * @default one minute before now (see {@link NOT_BEFORE_SKEW_MS})
   */
  notBefore?: Date;
  /**
   * End of validity; must be after `notBefore`.
   * @default notBefore + validDays
   */
  notAfter?: Date;
}

/** A freshly issued client identity: certificate, private key and their facts. */
export interface IssuedIdentity {
  /** The identity name, the certificate's subject common name. */
  name: string;
  /** The client certificate, PEM. */
  certPem: string;
  /** The client's RSA private key, PEM (PKCS#1). Keep it `0600`. */
  keyPem: string;
  /** The certificate serial number, lower-case hex; what {@link CertificateAuthority.revoke} takes. */
  serial: string;
  /** Start of validity (whole seconds, as stored in the certificate). */
  notBefore: Date;
  /** End of validity (whole seconds, as stored in the certificate). */
  notAfter: Date;
}

/** What {@link CertificateAuthority.verifyClient} learned from a certificate it accepted. */
export interface VerifiedClient {
  /** The identity name (subject common name), as signed by the CA. */
  name: string;
  /** The certificate serial number, lower-case hex. */
  serial: string;
  /** End of validity. */
  notAfter: Date;
}

/**
 * A certificate authority kept in a directory. Create or open one with
 * {@link CertificateAuthority.loadOrCreate}.
 */
export class CertificateAuthority {
  /** The CA directory. */
  readonly dir: string;
  /** The CA certificate, PEM: the trust anchor clients and signers are checked against. */
  readonly certPem: string;
  /** Lower-case hex SHA-256 of the CA certificate's DER bytes. */
  readonly fingerprint: string;

  readonly #cert: forge.pki.Certificate;
  readonly #key: KeyObject;
  readonly #caPublicKey: KeyObject;
  readonly #store: forge.pki.CAStore;
  #revoked = new Map<string, RevocationEntry>();
  #revokedStamp = '';

  private constructor(dir: string, certPem: string, cert: forge.pki.Certificate, fingerprint: string, key: KeyObject) {
    this.dir = dir;
    this.certPem = certPem;
    this.fingerprint = fingerprint;
    this.#cert = cert;
    this.#key = key;
    this.#caPublicKey = publicKeyOf(cert);
    this.#store = forge.pki.createCaStore([cert]);
  }

  /**
   * Opens the CA in `dir`, creating it on first use: the directory (`0700`), an RSA
   * 2048 key (`ca.key.pem`, `0600`), a self-signed CA certificate (`ca.cert.pem`,
   * `0644`) and an empty revocation list (`revoked.json`). Later calls load those
   * files; `options` then have no effect.
   *
   * Refuses (`ERR_UNSAFE_PERMISSIONS`) a key file readable by group or others and
   * a CA directory writable by group or others, and (`ERR_CORRUPT_STATE`) a key
   * that does not match the certificate, a certificate without a key, and an
   * unreadable revocation list: the CA fails closed.
   * @throws BulkheadError `ERR_INVALID_OPTION` for a bad argument, `ERR_UNSAFE_PERMISSIONS`, `ERR_CORRUPT_STATE`
   * @param dir - the CA directory
   * @param options - used only when the CA is created
   */
  static async loadOrCreate(dir: string, options: CertificateAuthorityOptions = {}): Promise<CertificateAuthority> {
    if (typeof dir !== 'string' || dir.length === 0) throw bulkheadError('ERR_INVALID_OPTION', 'dir must be a non-empty path to the CA directory.', { option: 'dir' });
    const commonName = options.commonName ?? CA_DEFAULTS.commonName;
    const validDays = options.validDays ?? CA_DEFAULTS.validDays;
    if (typeof commonName !== 'string' || commonName.length < 1 || commonName.length > 64) {
      throw bulkheadError('ERR_INVALID_OPTION', 'commonName must be a string of 1 to 64 characters.', { option: 'commonName' });
    }
    checkValidDays(validDays);
    const keyPath = join(dir, CA_FILES.key);
    const certPath = join(dir, CA_FILES.cert);
    if (!existsSync(keyPath)) {
      if (existsSync(certPath)) {
        throw bulkheadError('ERR_CORRUPT_STATE', `${certPath} exists but ${keyPath} does not: another process is creating this CA, or an earlier creation was interrupted. Wait, or remove ${certPath} and retry.`, { dir, file: certPath });
      }
      await createCaFiles(dir, commonName, validDays);
    }
    return CertificateAuthority.#load(dir);
  }

  static #load(dir: string): CertificateAuthority {
    const keyPath = join(dir, CA_FILES.key);
    const certPath = join(dir, CA_FILES.cert);
    const dirMode = statSync(dir).mode & 0o777;
    if ((dirMode & 0o022) !== 0) {
      throw bulkheadError('ERR_UNSAFE_PERMISSIONS', `The CA directory ${dir} is writable by group or others (mode ${dirMode.toString(8)}); run \`chmod 700 ${dir}\`.`, { file: dir, mode: dirMode });
    }
    const keyMode = statSync(keyPath).mode & 0o777;
    if ((keyMode & 0o077) !== 0) {
      throw bulkheadError('ERR_UNSAFE_PERMISSIONS', `The CA key ${keyPath} is readable by group or others (mode ${keyMode.toString(8)}); run \`chmod 600 ${keyPath}\` and consider the CA compromised if others could read it.`, { file: keyPath, mode: keyMode });
    }
    const key = parsePrivateKeyPem(readFileSync(keyPath, 'utf8'), keyPath);
    const certPem = readFileSync(certPath, 'utf8');
    const parsed = tryParseCertificatePem(certPem);
    if (parsed === undefined) throw bulkheadError('ERR_CORRUPT_STATE', `${certPath} is not a PEM certificate; restore it from a backup.`, { dir, file: certPath });
    const bc: { cA?: boolean } | undefined = parsed.cert.getExtension('basicConstraints');
    if (bc?.cA !== true) throw bulkheadError('ERR_CORRUPT_STATE', `${certPath} is not a CA certificate (basicConstraints cA is not set).`, { dir, file: certPath });
    const certSpki = publicKeyOf(parsed.cert).export({ type: 'spki', format: 'der' });
    const keySpki = createPublicKey(key).export({ type: 'spki', format: 'der' });
    if (!certSpki.equals(keySpki)) {
      throw bulkheadError('ERR_CORRUPT_STATE', `${keyPath} does not belong to ${certPath}; restore the matching pair.`, { dir, file: keyPath });
    }
    const fingerprint = new X509Certificate(parsed.der).fingerprint256.replaceAll(':', '').toLowerCase();
    const ca = new CertificateAuthority(dir, certPem, parsed.cert, fingerprint, key);
    ca.#refreshRevocations();
    return ca;
  }

  /**
   * Issues a client certificate for `name` with a new RSA 2048 key (generated with
   * node-forge, which uses Node's native key generation; about a quarter of a second).
   * The certificate: subject CN = `name`, issuer = this CA, a random 128-bit serial,
   * `basicConstraints cA=false`, key usage `digitalSignature`, extended key usage
   * `clientAuth` and `codeSigning`, signed sha256WithRSAEncryption.
   * @param name - the identity name, matching {@link IDENTITY_NAME_PATTERN}
   * @param options - validity; tests may issue expired or not-yet-valid certificates
   */
  issue(name: string, options: IssueOptions = {}): IssuedIdentity {
    if (typeof name !== 'string' || !IDENTITY_NAME_PATTERN.test(name)) {
      throw bulkheadError('ERR_INVALID_OPTION', `name ${JSON.stringify(name)} is not a valid identity name: use 1 to 128 letters, digits, ".", "_" or "-", starting with a letter or digit.`, { option: 'name' });
    }
    const validDays = options.validDays ?? ISSUE_DEFAULTS.validDays;
    checkValidDays(validDays);
    const notBefore = wholeSeconds(checkDate(options.notBefore, 'notBefore') ?? new Date(Date.now() - NOT_BEFORE_SKEW_MS));
    const notAfter = wholeSeconds(checkDate(options.notAfter, 'notAfter') ?? new Date(notBefore.getTime() + validDays * DAY_MS));
    if (notAfter.getTime() <= notBefore.getTime()) {
      throw bulkheadError('ERR_INVALID_OPTION', 'notAfter must be later than notBefore.', { option: 'notAfter' });
    }
    const keys = forge.pki.rsa.generateKeyPair({ bits: RSA_BITS, e: 0x10001 });
    const cert = forge.pki.createCertificate();
    cert.publicKey = keys.publicKey;
    cert.serialNumber = randomSerial();
    cert.validity.notBefore = notBefore;
    cert.validity.notAfter = notAfter;
    cert.setSubject([{ name: 'commonName', value: name, valueTagClass: UTF8_STRING }]);
    cert.setIssuer(this.#cert.subject.attributes);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', clientAuth: true, codeSigning: true },
      { name: 'subjectKeyIdentifier' },
      { name: 'authorityKeyIdentifier', keyIdentifier: this.#cert.generateSubjectKeyIdentifier().getBytes() },
    ]);
    signCertificate(cert, this.#key);
    return {
      name,
      certPem: forge.pki.certificateToPem(cert),
      keyPem: forge.pki.privateKeyToPem(keys.privateKey),
      serial: normalizeSerial(cert.serialNumber)!,
      notBefore,
      notAfter,
    };
  }

  /**
   * Adds `serial` to the revocation list and persists it (temporary file + rename)
   * before returning. Revoking a serial twice is a no-op. Two processes revoking at
   * the same moment can lose one update (read, add, replace): revoke from one place.
   * @param serial - the certificate serial number in hex (as in {@link IssuedIdentity.serial})
   */
  revoke(serial: string): void {
    const normalized = normalizeSerial(serial);
    if (normalized === undefined) throw bulkheadError('ERR_INVALID_OPTION', `serial ${JSON.stringify(serial)} is not a hex certificate serial number.`, { option: 'serial' });
    this.#refreshRevocations();
    if (this.#revoked.has(normalized)) return;
    const entries = [...this.#revoked.values(), { serial: normalized, revokedAt: new Date().toISOString() }];
    writeRevocations(join(this.dir, CA_FILES.revoked), entries);
    this.#refreshRevocations();
  }

  /**
   * True when `serial` is on the revocation list (re-read from disk if it changed).
   * A string that is not a hex serial is never revoked.
   */
  isRevoked(serial: string): boolean {
    const normalized = normalizeSerial(serial);
    if (normalized === undefined) return false;
    this.#refreshRevocations();
    return this.#revoked.has(normalized);
  }

  /**
   * Checks a client certificate, in this order, and returns who it names:
   * 1. one well-formed PEM certificate, else `ERR_AUTH_FAILED`;
   * 2. issued and signed by this CA (node-forge chain verification, then OpenSSL
   *    re-checks the signature), sha256WithRSAEncryption, not a CA certificate,
   *    else `ERR_CERT_UNTRUSTED`;
   * 3. not revoked, else `ERR_CERT_REVOKED`;
   * 4. `now` within the certificate's and the CA's validity, else `ERR_CERT_EXPIRED`.
   *
   * This checks the certificate only; proof that the peer holds its key is
   * {@link verifyProof} (or {@link authenticateClient}, which does both).
   * @param certPem - the certificate the client presented
   * @param now - the time to check validity at
   */
  verifyClient(certPem: string, now: Date = new Date()): VerifiedClient {
    const { cert, der } = parseCertificatePem(certPem, 'client certificate');
    const subject = commonNameOf(cert);
    // Until the CA's signature is checked the subject is attacker-chosen text: quote and cut it.
    const shown = subject === undefined ? '' : ` for ${JSON.stringify(subject.slice(0, 128))}`;
    const untrusted = (why: string): never => {
      throw bulkheadError('ERR_CERT_UNTRUSTED', `The certificate${shown} is not trusted by this daemon: ${why}. Issue the identity from the daemon you connect to (\`bulkhead identity issue\` with its state directory).`, { reason: why, ...(subject === undefined ? {} : { subject: subject.slice(0, 128) }) });
    };
    try {
      forge.pki.verifyCertificateChain(this.#store, [cert], { validityCheckDate: null });
    } catch (err) {
      const message = typeof (err as { message?: unknown } | null)?.message === 'string' ? (err as { message: string }).message : String(err);
      untrusted(`not issued by this CA (${message})`);
    }
    if (cert.signatureOid !== SHA256_WITH_RSA_OID) untrusted('its signature algorithm is not sha256WithRSAEncryption');
    const bc: { cA?: boolean } | undefined = cert.getExtension('basicConstraints');
    if (bc?.cA === true || cert.isIssuer(cert)) untrusted('it is a CA certificate, not a client certificate');
    let opensslAgrees: boolean;
    try {
      opensslAgrees = new X509Certificate(der).verify(this.#caPublicKey);
    } catch {
      opensslAgrees = false; // OpenSSL cannot parse what forge accepted: do not trust it
    }
    if (!opensslAgrees) untrusted('its signature does not verify with the CA key');
    if (subject === undefined || !IDENTITY_NAME_PATTERN.test(subject)) {
      throw bulkheadError('ERR_AUTH_FAILED', 'The client certificate has no valid identity name (exactly one subject common name matching the identity name pattern).', { reason: 'bad-subject' });
    }
    const serial = normalizeSerial(cert.serialNumber) ?? untrusted('its serial number is malformed');
    if (this.isRevoked(serial)) {
      throw bulkheadError('ERR_CERT_REVOKED', `The certificate for "${subject}" (serial ${serial}) is revoked. Issue a new identity with \`bulkhead identity issue ${subject}\`.`, { name: subject, serial });
    }
    const when = now.getTime();
    for (const [which, c] of [['client', cert], ['CA', this.#cert]] as const) {
      if (when < c.validity.notBefore.getTime() || when > c.validity.notAfter.getTime()) {
        const state = when < c.validity.notBefore.getTime() ? 'not valid yet' : 'expired';
        throw bulkheadError('ERR_CERT_EXPIRED', `The ${which} certificate${which === 'client' ? ` for "${subject}"` : ''} is ${state} (valid ${c.validity.notBefore.toISOString()} to ${c.validity.notAfter.toISOString()}, now ${now.toISOString()}). ${which === 'client' ? `Issue a new one with \`bulkhead identity issue ${subject}\`.` : 'The daemon\'s CA must be renewed.'}`, {
          name: subject, serial, which, state,
          notBefore: c.validity.notBefore.toISOString(), notAfter: c.validity.notAfter.toISOString(), now: now.toISOString(),
        });
      }
    }
    return { name: subject, serial, notAfter: cert.validity.notAfter };
  }

  #refreshRevocations(): void {
    const path = join(this.dir, CA_FILES.revoked);
    let stamp: string;
    try {
      const st = statSync(path);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (err) {
      throw bulkheadError('ERR_CORRUPT_STATE', `The revocation list ${path} cannot be read (${(err as Error).message}); restore it (an empty list is {"version":1,"revoked":[]}). The CA refuses to run without it.`, { dir: this.dir, file: path }, err);
    }
    if (stamp === this.#revokedStamp) return;
    this.#revoked = readRevocations(path);
    this.#revokedStamp = stamp;
  }
}

function checkValidDays(days: unknown): void {
  if (typeof days !== 'number' || !Number.isFinite(days) || days <= 0 || days > MAX_VALID_DAYS) {
    throw bulkheadError('ERR_INVALID_OPTION', `validDays must be a number of days greater than 0 and at most ${MAX_VALID_DAYS}.`, { option: 'validDays' });
  }
}

function checkDate(value: unknown, option: string): Date | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw bulkheadError('ERR_INVALID_OPTION', `${option} must be a valid Date.`, { option });
  }
  return value;
}

