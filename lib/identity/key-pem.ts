/**
 * What a daemon client needs of the identity layer, without node-forge: the
 * PEM size limits, the identity name rule and its private key as a Node
 * KeyObject. A client signs its proof with Node's OpenSSL alone
 * (proof-sign.ts), so `connectTo()` and every `bulkhead` command that talks to
 * the daemon no longer load node-forge (~23 ms of a CLI run's CPU on Node 20;
 * bench/README.md, "Round eleven: daemon hand-off and CLI start").
 * certificate.ts re-exports all of it.
 * @module
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { bulkheadError } from '../errors.js';

/** Largest certificate PEM the identity layer will parse (a client cert is about 1.3 KB). */
export const MAX_CERT_PEM_CHARS = 16 * 1024;

/** Largest private key PEM the identity layer will parse. */
export const MAX_KEY_PEM_CHARS = 16 * 1024;

/** Identity names: a letter or digit, then up to 127 letters, digits, `.`, `_` or `-`. */
export const IDENTITY_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Parses a PEM private key (PKCS#1 or PKCS#8, unencrypted) into a Node KeyObject,
 * or throws `ERR_INVALID_OPTION` naming `option`.
 */
export function parsePrivateKeyPem(keyPem: unknown, option: string): KeyObject {
  if (typeof keyPem !== 'string' || keyPem.length === 0 || keyPem.length > MAX_KEY_PEM_CHARS) {
    throw bulkheadError('ERR_INVALID_OPTION', `${option} must be a PEM private key string (at most ${MAX_KEY_PEM_CHARS} characters).`, { option });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyPem, format: 'pem' });
  } catch (err) {
    throw bulkheadError('ERR_INVALID_OPTION', `${option} is not a readable unencrypted PEM private key; pass the .key.pem written by \`bulkhead identity issue\`.`, { option }, err);
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw bulkheadError('ERR_INVALID_OPTION', `${option} must be an RSA private key (got ${String(key.asymmetricKeyType)}).`, { option });
  }
  return key;
}
