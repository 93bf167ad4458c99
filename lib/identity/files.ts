/**
 * Identity files on disk: `<name>.cert.pem` (`0644`) and `<name>.key.pem` (`0600`),
 * as written by `bulkhead identity issue NAME` and read by a client or by
 * `bulkhead sign --identity NAME`.
 * @module
 */
import { chmodSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { bulkheadError } from '../errors.js';
import { writeFileAtomic } from './atomic-file.js';
import { IDENTITY_NAME_PATTERN, MAX_CERT_PEM_CHARS, MAX_KEY_PEM_CHARS } from './key-pem.js';

/** A certificate and its private key, both PEM. */
export interface IdentityFiles {
  /** The certificate, PEM. */
  certPem: string;
  /** The private key, PEM. */
  keyPem: string;
}

/** Where an identity's two files are. */
export interface IdentityPaths {
  /** Path of `<name>.cert.pem`. */
  certPath: string;
  /** Path of `<name>.key.pem`. */
  keyPath: string;
}

/** The paths of identity `name`'s files in `dir`. Throws `ERR_INVALID_OPTION` for an invalid name. */
export function identityPaths(dir: string, name: string): IdentityPaths {
  if (typeof name !== 'string' || !IDENTITY_NAME_PATTERN.test(name)) {
    throw bulkheadError('ERR_INVALID_OPTION', `name ${JSON.stringify(name)} is not a valid identity name.`, { option: 'name' });
  }
  return { certPath: join(dir, `${name}.cert.pem`), keyPath: join(dir, `${name}.key.pem`) };
}

/**
 * Writes an identity to `dir` (created `0700` if missing): `<name>.cert.pem` with
 * mode `0644` and `<name>.key.pem` with mode `0600`, each replaced atomically.
 * @param dir - the directory to write to
 * @param identity - an {@link IssuedIdentity} or any `{ name, certPem, keyPem }`
 * @returns the two paths
 */
export function writeIdentity(dir: string, identity: IdentityFiles & { name: string }): IdentityPaths {
  const paths = identityPaths(dir, identity.name);
  if (typeof identity.certPem !== 'string' || typeof identity.keyPem !== 'string') {
    throw bulkheadError('ERR_INVALID_OPTION', 'identity must have certPem and keyPem strings.', { option: 'identity' });
  }
  const created = mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (created !== undefined) chmodSync(dir, 0o700);
  writeFileAtomic(paths.keyPath, identity.keyPem, 0o600);
  writeFileAtomic(paths.certPath, identity.certPem, 0o644);
  return paths;
}

/**
 * Reads an identity: `readIdentity(dir, name)` reads `<name>.cert.pem` and
 * `<name>.key.pem` from `dir`; `readIdentity({ certPath, keyPath })` reads the two
 * files named. Refuses (`ERR_UNSAFE_PERMISSIONS`) a key file readable by group or
 * others, as ssh does.
 */
export function readIdentity(dir: string, name: string): IdentityFiles;
export function readIdentity(files: IdentityPaths): IdentityFiles;
export function readIdentity(source: string | IdentityPaths, name?: string): IdentityFiles {
  const paths = typeof source === 'string' ? identityPaths(source, name as string) : source;
  if (typeof (paths as IdentityPaths | undefined)?.certPath !== 'string' || typeof paths.keyPath !== 'string') { // JS callers may pass anything
    throw bulkheadError('ERR_INVALID_OPTION', 'readIdentity takes (dir, name) or { certPath, keyPath }.', { option: 'files' });
  }
  let mode: number;
  try {
    mode = statSync(paths.keyPath).mode & 0o777;
  } catch (err) {
    throw bulkheadError('ERR_INVALID_OPTION', `Cannot read ${paths.keyPath}: ${(err as Error).message}.`, { option: 'keyPath', file: paths.keyPath }, err);
  }
  if ((mode & 0o077) !== 0) {
    throw bulkheadError('ERR_UNSAFE_PERMISSIONS', `The key file ${paths.keyPath} is readable by group or others (mode ${mode.toString(8)}); run \`chmod 600 ${paths.keyPath}\`.`, { file: paths.keyPath, mode });
  }
  return { certPem: readBounded(paths.certPath, MAX_CERT_PEM_CHARS, 'certPath'), keyPem: readBounded(paths.keyPath, MAX_KEY_PEM_CHARS, 'keyPath') };
}

function readBounded(path: string, max: number, option: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw bulkheadError('ERR_INVALID_OPTION', `Cannot read ${path}: ${(err as Error).message}.`, { option, file: path }, err);
  }
  if (text.length > max) throw bulkheadError('ERR_INVALID_OPTION', `${path} is larger than ${max} characters; it is not a PEM identity file.`, { option, file: path });
  return text;
}
