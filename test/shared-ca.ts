/**
 * One test CA per tap run, for the test files that start a daemon to test something other than the CA.
 *
 * A daemon started on an empty state dir makes a CA key and an admin key, and each `daemon.ca.issue(name)` one
 * more: 2048-bit RSA keys, 0.2-0.9 s each on Node 20 (OpenSSL 3.0; ~3x Node 24's 3.5). Files that only need a
 * working daemon and a client it accepts seed the daemon's state dir with a copy of this run's CA and admin
 * identity ({@link seedStateDir}) and take client identities issued once per run ({@link sharedIdentity}). All of
 * it is made by the production code (`CertificateAuthority.loadOrCreate`, `issue`), with real keys; the daemon
 * loads the copy as it loads any existing state dir, and accepts a client only because that identity was issued
 * by the CA it loaded. Each daemon has its own copy, so a revocation stays in that daemon's state dir.
 *
 * Under the tap runner the files live in `bulkhead-test-ca-<runner pid>-<its start time>` in the temp dir (the
 * runner is every test file's parent; its start time tells a reused pid apart), made by the first file that needs
 * them and removed by the run's `after` script (`shared-ca-after.ts`). Run on its own (`node file.test.js`), a file
 * gets a directory of its own, removed when it ends. Creation is publish-by-rename, so files of one run that race
 * to make the CA or an identity all end up using the one that was published first.
 */
import t from 'tap';
import { cpSync, existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sharedCaRootOf } from './shared-ca-root.js';
import { CertificateAuthority, writeIdentity, type IssuedIdentity } from '../lib/identity/index.js';

const underRunner = process.env['TAP'] === '1' && process.env['TAP_CHILD_ID'] !== undefined;
const ROOT = sharedCaRootOf(underRunner ? process.ppid : process.pid);
if (!underRunner) t.teardown(() => rmSync(ROOT, { recursive: true, force: true }));

/** `<root>/state`: `ca/` (the CA's files) and `identities/admin.*`, as a daemon leaves them on its first start. */
const STATE = join(ROOT, 'state');
let ca: Promise<CertificateAuthority> | undefined;

/** The run's CA (made on first use; see the module comment). */
export function sharedCa(): Promise<CertificateAuthority> {
  return (ca ??= loadOrMakeState());
}

async function loadOrMakeState(): Promise<CertificateAuthority> {
  mkdirSync(ROOT, { recursive: true, mode: 0o700 });
  // STATE appears whole (a rename) or not at all. Not made yet: make one aside and publish it, or take the one
  // another file published meanwhile.
  if (existsSync(STATE)) return CertificateAuthority.loadOrCreate(join(STATE, 'ca'));
  const aside = join(ROOT, `state.${String(process.pid)}`);
  rmSync(aside, { recursive: true, force: true });
  const made = await CertificateAuthority.loadOrCreate(join(aside, 'ca'));
  writeIdentity(join(aside, 'identities'), made.issue('admin', { validDays: 3650 }));
  try {
    renameSync(aside, STATE);
    return made;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    rmSync(aside, { recursive: true, force: true });
    return CertificateAuthority.loadOrCreate(join(STATE, 'ca'));
  }
}

/**
 * Fills `stateDir` (which must not exist yet) with a copy of the run's CA and admin identity, so a daemon started
 * on it loads them instead of making new keys. Modes are kept (the CA key stays `0600`).
 */
export async function seedStateDir(stateDir: string): Promise<void> {
  await sharedCa();
  cpSync(STATE, stateDir, { recursive: true, errorOnExist: true, force: false });
}

const identities = new Map<string, Promise<IssuedIdentity>>();

/**
 * A client identity `name` issued by the run's CA, made once per run: accepted by every daemon started on a
 * {@link seedStateDir} copy. Not for a test that revokes it or checks its dates: issue a fresh one for that.
 */
export function sharedIdentity(name: string): Promise<IssuedIdentity> {
  let found = identities.get(name);
  if (found === undefined) identities.set(name, (found = loadOrIssue(name)));
  return found;
}

async function loadOrIssue(name: string): Promise<IssuedIdentity> {
  const authority = await sharedCa();
  const path = join(ROOT, `identity-${name}.json`);
  const read = (): IssuedIdentity => {
    const doc = JSON.parse(readFileSync(path, 'utf8')) as IssuedIdentity & { notBefore: string; notAfter: string };
    return { ...doc, notBefore: new Date(doc.notBefore), notAfter: new Date(doc.notAfter) };
  };
  try {
    return read();
  } catch {
    // Not issued yet in this run.
  }
  const issued = authority.issue(name);
  const aside = `${path}.${String(process.pid)}`;
  writeFileSync(aside, JSON.stringify(issued), { mode: 0o600 });
  try {
    linkSync(aside, path);
    return issued;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return read();
  } finally {
    rmSync(aside, { force: true });
  }
}
