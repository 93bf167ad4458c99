/**
 * Code-signing requirement for service directories: `bulkhead sign` hashes every
 * file a helper could run and signs the list; before each launch the broker checks
 * the signer, the signature and every hash, and refuses a directory with a
 * missing, modified or added file.
 *
 * The signature file `bulkhead.signature.json`:
 * ```json
 * { "version": 1, "signer": "<certificate PEM>",
 *   "files": { "<relative/posix/path>": "<sha256 hex>" },
 *   "include": ["node_modules"],            // only when sign used options.include
 *   "signature": "<base64 RSASSA-PSS-SHA256>" }
 * ```
 * The signature covers `"bulkhead-codesign-v1\0"` followed by the canonical JSON
 * (RFC 8785 style: keys sorted by UTF-16 code units, no whitespace) of
 * `{ version, files }` plus `include` when present.
 *
 * Walked: regular files under the directory, except `node_modules` and `.git`
 * (at any depth, unless named by `include`) and the signature file itself. A
 * symbolic link is followed if it stays inside the directory (a file link is hashed
 * by content under the link's path, a directory link is walked), and refused if it
 * leaves the directory, dangles, or loops. FIFOs, sockets and devices are refused (lib/identity/service-dir-files.ts).
 * @module
 */
import { lstatSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { bulkheadError, isBulkheadError } from '../errors.js';
import { writeFileAtomic } from './atomic-file.js';
import type { CertificateAuthority } from './ca.js';
import { IDENTITY_NAME_PATTERN, parsePrivateKeyPem, publicKeyOf, tryParseCertificatePem } from './certificate.js';
import type { IdentityFiles } from './files.js';
import { pssSign, pssVerify } from './signature.js';
import { hashFile, listEntries, MAX_SIGNED_FILES, SIGNATURE_FILE } from './service-dir-files.js';

export { DEFAULT_SKIP, MAX_SIGNED_FILES, SIGNATURE_FILE } from './service-dir-files.js';

/** Domain-separation prefix of the bytes a code signature covers. */
export const CODESIGN_DOMAIN = 'bulkhead-codesign-v1\0';

/** Largest signature file read, in bytes. */
export const MAX_SIGNATURE_FILE_BYTES = 64 * 1024 * 1024;

/** The content of `bulkhead.signature.json`. */
export interface SignedManifest {
  /** Format version, 1. */
  version: 1;
  /** The signer's certificate, PEM. */
  signer: string;
  /** SHA-256 (lower-case hex) of every signed file, by path relative to the directory, `/`-separated. */
  files: Record<string, string>;
  /** Paths signed despite {@link DEFAULT_SKIP}, when `include` was given. */
  include?: string[];
  /** Base64 RSASSA-PSS-SHA256 signature (see the module description for the signed bytes). */
  signature: string;
}

/** Options of {@link signServiceDir}. */
export interface SignOptions {
  /**
   * Relative paths to sign even though a component is in {@link DEFAULT_SKIP},
   * e.g. `['node_modules']` to cover the dependencies too.
   * @default []
   */
  include?: string[];
}

/** A code-signing requirement, as a manifest states it. */
export interface CodeRequirement {
  /** The identity name that must have signed the directory. */
  signedBy: string;
}

/** What {@link verifyServiceDir} checked. */
export interface VerifiedServiceDir {
  /** The signer's identity name. */
  signer: string;
  /** How many files were checked. */
  files: number;
}

/** Why a directory failed its code-signing check (`error.data.reason` of `ERR_CODE_SIGNATURE`). */
export type CodeSignatureFailure = 'missing' | 'modified' | 'added' | 'bad-signature' | 'wrong-signer';

/**
 * Signs a service directory with `signer`'s key and writes
 * `dir/bulkhead.signature.json` (replacing any earlier one, atomically).
 *
 * Throws `ERR_INVALID_OPTION` if `dir` is not a directory, if the key does not
 * belong to the certificate, or if the directory holds something that cannot be
 * signed (a link leaving the directory, a dangling or looping link, a FIFO, socket
 * or device), naming it.
 * @param dir - the service directory
 * @param signer - the signing identity's certificate and key
 * @param options - see {@link SignOptions}
 * @returns the manifest written
 */
export function signServiceDir(dir: string, signer: IdentityFiles, options: SignOptions = {}): SignedManifest {
  const include = checkInclude(options.include ?? [], (why) => bulkheadError('ERR_INVALID_OPTION', `include ${why}.`, { option: 'include' }));
  const parsed = tryParseCertificatePem((signer as IdentityFiles | undefined)?.certPem); // JS callers may pass nothing
  if (parsed === undefined) throw bulkheadError('ERR_INVALID_OPTION', 'signer.certPem is not a PEM certificate.', { option: 'signer.certPem' });
  const key = parsePrivateKeyPem(signer.keyPem, 'signer.keyPem');
  if (!publicKeyOf(parsed.cert).export({ type: 'spki', format: 'der' }).equals(createPublicKey(key).export({ type: 'spki', format: 'der' }))) {
    throw bulkheadError('ERR_INVALID_OPTION', 'signer.keyPem does not belong to signer.certPem.', { option: 'signer.keyPem' });
  }
  const entries = listEntries(checkDir(dir), include);
  // No prototype: a file named "__proto__" must become an entry, not a prototype change.
  const files = Object.create(null) as Record<string, string>;
  for (const [rel, entry] of entries) {
    if (!entry.ok) throw bulkheadError('ERR_INVALID_OPTION', `Cannot sign ${join(dir, rel)}: ${entry.why}.`, { option: 'dir', file: rel, detail: entry.why });
    const hash = hashFile(entry.path);
    if (typeof hash !== 'string') throw bulkheadError('ERR_INVALID_OPTION', `Cannot sign ${join(dir, rel)}: ${hash.why}.`, { option: 'dir', file: rel, detail: hash.why });
    files[rel] = hash;
  }
  const signature = pssSign(key, signedBytes(files, include.length > 0 ? include : undefined)).toString('base64');
  const manifest: SignedManifest = { version: 1, signer: signer.certPem, files, ...(include.length > 0 ? { include } : {}), signature };
  writeFileAtomic(join(dir, SIGNATURE_FILE), `${JSON.stringify(manifest, null, 2)}\n`, 0o644);
  return manifest;
}

/**
 * Checks a service directory against its signature and a requirement. In order:
 * the signature file is there and well-formed; the signer's certificate is valid
 * for `ca` at `now` ({@link CertificateAuthority.verifyClient}) and names
 * `requirement.signedBy`; the signature verifies; every listed file exists with its
 * hash; and no other file exists (a new file is tampering too).
 *
 * Throws `ERR_CODE_SIGNATURE` with a message naming the first bad file (in path
 * order) and `data: { dir, file, reason, detail? }`, `reason` one of
 * {@link CodeSignatureFailure}; `ERR_INVALID_OPTION` for a bad `dir` or requirement.
 * @param dir - the service directory
 * @param requirement - who must have signed it
 * @param ca - the CA the signer's certificate must come from
 * @param now - the time to check the signer's certificate at
 */
export function verifyServiceDir(dir: string, requirement: CodeRequirement, ca: CertificateAuthority, now: Date = new Date()): VerifiedServiceDir {
  const signedBy = (requirement as CodeRequirement | undefined)?.signedBy; // JS callers may pass nothing
  if (typeof signedBy !== 'string' || !IDENTITY_NAME_PATTERN.test(signedBy)) {
    throw bulkheadError('ERR_INVALID_OPTION', 'requirement.signedBy must be an identity name.', { option: 'requirement.signedBy' });
  }
  const root = checkDir(dir);
  const fail = (reason: CodeSignatureFailure, file: string, what: string, extra: Record<string, unknown> = {}): never => {
    throw bulkheadError('ERR_CODE_SIGNATURE', `Refusing the service in ${dir}: ${file} ${what}. Re-sign it with \`bulkhead sign\` if the change was deliberate; otherwise treat it as tampering.`, { dir, file, reason, ...extra });
  };

  const manifest = readManifest(root, (detail) => fail('bad-signature', SIGNATURE_FILE, `is not a valid signature file (${detail})`, { detail }));

  try {
    const client = ca.verifyClient(manifest.signer, now);
    if (client.name !== signedBy) fail('wrong-signer', SIGNATURE_FILE, `is signed by "${client.name}", but the requirement is "${signedBy}"`, { signer: client.name, signedBy });
  } catch (err) {
    if (isBulkheadError(err, 'ERR_CODE_SIGNATURE')) throw err;
    if (!isBulkheadError(err)) throw err;
    fail('wrong-signer', SIGNATURE_FILE, `has a signer certificate this daemon does not accept (${err.code}: ${err.message})`, { signerCode: err.code, signedBy });
  }
  const signerCert = tryParseCertificatePem(manifest.signer)!; // verifyClient parsed it
  const signature = Buffer.from(manifest.signature, 'base64');
  if (!pssVerify(publicKeyOf(signerCert.cert), signedBytes(manifest.files, manifest.include), signature)) {
    fail('bad-signature', SIGNATURE_FILE, 'has a signature that does not match its content (the file list or the signature was edited)');
  }

  const actual = listEntries(root, manifest.include ?? []);
  const listed = new Map(Object.entries(manifest.files));
  const paths = [...new Set([...listed.keys(), ...actual.keys()])].sort();
  for (const rel of paths) {
    const expected = listed.get(rel);
    const entry = actual.get(rel);
    if (expected === undefined) {
      fail('added', rel, `was added after signing${entry && !entry.ok ? ` (${entry.why})` : ''}`, entry && !entry.ok ? { detail: entry.why } : {});
    } else if (entry === undefined) {
      fail('missing', rel, 'is missing (it was signed)');
    } else if (!entry.ok) {
      fail('modified', rel, `was modified: ${entry.why}`, { detail: entry.why });
    } else {
      const hash = hashFile(entry.path);
      if (typeof hash !== 'string') {
        if (hash.missing) fail('missing', rel, 'is missing (it was signed)');
        fail('modified', rel, `was modified: ${hash.why}`, { detail: hash.why });
      } else if (hash !== expected) {
        fail('modified', rel, 'was modified (its SHA-256 differs from the signed one)', { expected, actual: hash });
      }
    }
  }
  return { signer: signedBy, files: listed.size };
}

/** The exact bytes a code signature covers. */
function signedBytes(files: Record<string, string>, include: string[] | undefined): Buffer {
  const body: Record<string, unknown> = { version: 1, files };
  if (include !== undefined) body['include'] = include;
  return Buffer.from(CODESIGN_DOMAIN + canonicalJson(body), 'utf8');
}

/** JSON with object keys sorted by UTF-16 code units and no whitespace (RFC 8785 for strings and integers). */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    return `{${Object.keys(record).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Reads and validates the signature file's shape; `bad(detail)` must throw. */
function readManifest(root: string, bad: (detail: string) => never): SignedManifest {
  const path = join(root, SIGNATURE_FILE);
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return bad('the directory is not signed: no bulkhead.signature.json');
  }
  if (!st.isFile()) return bad('not a regular file');
  if (st.size > MAX_SIGNATURE_FILE_BYTES) return bad(`larger than ${MAX_SIGNATURE_FILE_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return bad('not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return bad('not a JSON object');
  const m = doc as Record<string, unknown>;
  const known = new Set(['version', 'signer', 'files', 'include', 'signature']);
  const unknown = Object.keys(m).filter((k) => !known.has(k));
  if (unknown.length > 0) return bad(`unknown field ${JSON.stringify(unknown[0])}`);
  if (m['version'] !== 1) return bad('version is not 1');
  if (typeof m['signer'] !== 'string') return bad('signer is not a PEM string');
  if (typeof m['signature'] !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(m['signature'])) return bad('signature is not base64');
  const files = m['files'];
  if (typeof files !== 'object' || files === null || Array.isArray(files)) return bad('files is not an object');
  const entries = Object.entries(files as Record<string, unknown>);
  if (entries.length > MAX_SIGNED_FILES) return bad(`more than ${MAX_SIGNED_FILES} files`);
  for (const [rel, hash] of entries) {
    const why = checkRelativePath(rel);
    if (why !== undefined || rel === SIGNATURE_FILE) return bad(`file path ${JSON.stringify(rel.slice(0, 200))} is not allowed`);
    if (typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) return bad(`hash of ${JSON.stringify(rel.slice(0, 200))} is not SHA-256 hex`);
  }
  let include: string[] | undefined;
  if (m['include'] !== undefined) include = checkInclude(m['include'], (why) => bad(`include ${why}`));
  return { version: 1, signer: m['signer'], files: files as Record<string, string>, ...(include ? { include } : {}), signature: m['signature'] };
}

/** Validates an include list: relative, normalised, `/`-separated paths. */
function checkInclude(value: unknown, bad: (why: string) => Error | never): string[] {
  if (!Array.isArray(value)) throw bad('must be an array of relative paths');
  const out: string[] = [];
  for (const item of value) {
    const why = typeof item === 'string' ? checkRelativePath(item) : 'is not a string';
    if (why !== undefined) throw bad(`entry ${JSON.stringify(String(item).slice(0, 200))} ${why}`);
    out.push(item as string);
  }
  return [...new Set(out)].sort();
}

/** Returns why `rel` is not a safe relative path inside a directory, or undefined. */
function checkRelativePath(rel: string): string | undefined {
  if (rel.length === 0 || rel.length > 4096) return 'is empty or too long';
  if (rel.includes('\0') || rel.includes('\\')) return 'contains NUL or a backslash';
  if (rel.startsWith('/')) return 'is absolute';
  for (const segment of rel.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') return 'is not a normalised relative path';
  }
  return undefined;
}

/** Resolves `dir` to a real directory path or throws `ERR_INVALID_OPTION`. */
function checkDir(dir: string): string {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch (err) {
    throw bulkheadError('ERR_INVALID_OPTION', `dir ${dir} does not exist.`, { option: 'dir' }, err);
  }
  if (!statSync(real).isDirectory()) throw bulkheadError('ERR_INVALID_OPTION', `dir ${dir} is not a directory.`, { option: 'dir' });
  return real;
}
