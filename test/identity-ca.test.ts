/**
 * The daemon's CA: files and modes on creation, reload, issuing, and every way
 * verifyClient refuses a certificate (another CA, expired, not yet valid, revoked,
 * garbage, the CA's own certificate, a tampered one). Keys are generated once per
 * file: RSA keygen is the slow part.
 */
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { CA_FILES, CertificateAuthority, certificateFingerprint, readIdentity, writeIdentity, type IssuedIdentity } from '../lib/identity/index.js';
import { expectCode } from './helpers.js';


const mode = (path: string): number => statSync(path).mode & 0o777;
const DAY = 86_400_000;

const root = mkdtempSync(join(tmpdir(), 'bulkhead-identity-ca-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const caDir = join(root, 'state', 'ca');
const otherCaDir = join(root, 'other-ca');

// Two CAs with the same common name: a certificate from one must not pass the other
// even though its issuer name matches.
const ca = await CertificateAuthority.loadOrCreate(caDir);
const otherCa = await CertificateAuthority.loadOrCreate(otherCaDir);
// Bracketed by the clock, so the check of its back-dated notBefore needs no tolerance for how long the file ran since.
const aliceFrom = Date.now();
const alice = ca.issue('alice');
const aliceTo = Date.now();
const mallory = otherCa.issue('alice');

t.test('first use creates the directory 0700, the key 0600, the certificate and an empty revocation list', async (t) => {
  t.equal(mode(caDir), 0o700, 'CA dir is 0700');
  t.equal(mode(join(caDir, CA_FILES.key)), 0o600, 'ca.key.pem is 0600');
  t.equal(mode(join(caDir, CA_FILES.cert)), 0o644, 'ca.cert.pem is 0644');
  t.same(JSON.parse(readFileSync(join(caDir, CA_FILES.revoked), 'utf8')), { version: 1, revoked: [] });
  t.equal(readFileSync(join(caDir, CA_FILES.cert), 'utf8'), ca.certPem);
  const x = new X509Certificate(ca.certPem);
  t.ok(x.ca, 'OpenSSL sees a CA certificate');
  t.ok(x.verify(x.publicKey), 'self-signed, and OpenSSL verifies it');
  t.equal(x.subject, 'CN=bulkhead CA');
  t.equal(ca.fingerprint, certificateFingerprint(ca.certPem));
  t.equal(ca.fingerprint, x.fingerprint256.replaceAll(':', '').toLowerCase());
});

t.test('a second loadOrCreate loads the same CA (same certificate, same trust)', async (t) => {
  const again = await CertificateAuthority.loadOrCreate(caDir, { commonName: 'ignored on load' });
  t.equal(again.certPem, ca.certPem);
  t.equal(again.fingerprint, ca.fingerprint);
  t.equal(again.verifyClient(alice.certPem).name, 'alice', 'a certificate issued before the reload verifies');
});

t.test('issue → verifyClient accepts, and the certificate is what it claims', async (t) => {
  const v = ca.verifyClient(alice.certPem);
  t.same(v, { name: 'alice', serial: alice.serial, notAfter: alice.notAfter });
  t.match(alice.serial, /^[0-9a-f]{32}$/, '128-bit hex serial');
  t.not(alice.serial, mallory.serial);
  t.equal(alice.notAfter.getTime() - alice.notBefore.getTime(), 365 * DAY, 'default validity 365 days');
  // Issued between aliceFrom and aliceTo, back-dated a minute, then cut to whole seconds.
  const notBefore = alice.notBefore.getTime();
  t.ok(notBefore > aliceFrom - 60_000 - 1000 && notBefore <= aliceTo - 60_000, 'notBefore back-dated one minute from the issue (cut to whole seconds)');
  t.match(alice.keyPem, /^-----BEGIN RSA PRIVATE KEY-----/);
  // Independent check with OpenSSL: issued by the CA, signature verifies, purposes set.
  const x = new X509Certificate(alice.certPem);
  const caX = new X509Certificate(ca.certPem);
  t.ok(x.checkIssued(caX), 'OpenSSL: issued by the CA');
  t.ok(x.verify(caX.publicKey), 'OpenSSL: signature verifies with the CA key');
  t.notOk(x.ca, 'not a CA certificate');
  t.equal(x.subject, 'CN=alice');
  t.same(x.keyUsage, ['1.3.6.1.5.5.7.3.2', '1.3.6.1.5.5.7.3.3'], 'extended key usage: clientAuth, codeSigning');
  t.equal(x.serialNumber.toLowerCase(), alice.serial);
  t.equal(x.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  t.equal(new Date(x.validTo).getTime(), alice.notAfter.getTime());
});

t.test('identity names are validated', async (t) => {
  for (const bad of ['', '-lead', '.hidden', 'a/b', 'a b', 'x'.repeat(129), 'é', '../x', 'a\0b']) {
    expectCode(t, () => ca.issue(bad), 'ERR_INVALID_OPTION', `name ${JSON.stringify(bad)}`);
  }
  expectCode(t, () => ca.issue('ok', { notBefore: new Date(2030, 0, 1), notAfter: new Date(2029, 0, 1) }), 'ERR_INVALID_OPTION', 'notAfter before notBefore');
  expectCode(t, () => ca.issue('ok', { validDays: 0 }), 'ERR_INVALID_OPTION', 'validDays 0');
  expectCode(t, () => ca.issue('ok', { notAfter: new Date('nope') }), 'ERR_INVALID_OPTION', 'invalid Date');
});

t.test('a certificate from another CA → ERR_CERT_UNTRUSTED, even with the same issuer name', async (t) => {
  t.equal(new X509Certificate(mallory.certPem).issuer, new X509Certificate(alice.certPem).issuer, 'issuer names are equal');
  const err = expectCode(t, () => ca.verifyClient(mallory.certPem), 'ERR_CERT_UNTRUSTED');
  t.equal(err?.data['subject'], 'alice');
  expectCode(t, () => otherCa.verifyClient(alice.certPem), 'ERR_CERT_UNTRUSTED', 'and the other way round');
});

t.test('the CA certificate itself is not a client certificate', async (t) => {
  expectCode(t, () => ca.verifyClient(ca.certPem), 'ERR_CERT_UNTRUSTED');
});

t.test('a self-signed certificate with a copied issuer name → ERR_CERT_UNTRUSTED', async (t) => {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - DAY);
  cert.validity.notAfter = new Date(Date.now() + DAY);
  cert.setSubject([{ name: 'commonName', value: 'bulkhead CA' }]);
  cert.setIssuer([{ name: 'commonName', value: 'bulkhead CA' }]);
  cert.setExtensions([{ name: 'basicConstraints', cA: true }, { name: 'keyUsage', keyCertSign: true, digitalSignature: true }]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  expectCode(t, () => ca.verifyClient(forge.pki.certificateToPem(cert)), 'ERR_CERT_UNTRUSTED');
});

t.test('a tampered certificate (subject renamed after signing) → ERR_CERT_UNTRUSTED', async (t) => {
  const cert = forge.pki.certificateFromPem(alice.certPem);
  cert.setSubject([{ name: 'commonName', value: 'admin' }]);
  // Re-encode with the old signature: TBS changed, signature not.
  cert.tbsCertificate = undefined as unknown as forge.asn1.Asn1;
  const pem = forge.pki.certificateToPem(cert);
  t.match(new X509Certificate(pem).subject, 'CN=admin');
  expectCode(t, () => ca.verifyClient(pem), 'ERR_CERT_UNTRUSTED');
});

t.test('outside the validity dates → ERR_CERT_EXPIRED', async (t) => {
  const expired = ca.issue('old', { notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) });
  const e1 = expectCode(t, () => ca.verifyClient(expired.certPem), 'ERR_CERT_EXPIRED', 'notAfter in the past');
  t.equal(e1?.data['state'], 'expired');
  t.equal(e1?.data['name'], 'old');
  const early = ca.issue('early', { notBefore: new Date(Date.now() + DAY), validDays: 30 });
  const e2 = expectCode(t, () => ca.verifyClient(early.certPem), 'ERR_CERT_EXPIRED', 'notBefore in the future');
  t.equal(e2?.data['state'], 'not valid yet');
  // `now` is honoured (it must also fall inside the CA's own validity, which began a minute ago).
  t.equal(ca.verifyClient(early.certPem, new Date(Date.now() + 2 * DAY)).name, 'early');
  const short = ca.issue('short', { notAfter: new Date(Date.now() + 3_600_000) });
  t.equal(ca.verifyClient(short.certPem, new Date(Date.now() + 1_800_000)).name, 'short', 'fine in half an hour');
  expectCode(t, () => ca.verifyClient(short.certPem, new Date(Date.now() + 7_200_000)), 'ERR_CERT_EXPIRED', 'expired in two hours');
  t.equal(ca.verifyClient(alice.certPem, alice.notAfter).name, 'alice', 'notAfter itself is still valid');
  expectCode(t, () => ca.verifyClient(alice.certPem, new Date(alice.notAfter.getTime() + 1000)), 'ERR_CERT_EXPIRED', 'one second later it is not');
  // An untrusted certificate is reported as untrusted, not as expired.
  expectCode(t, () => ca.verifyClient(mallory.certPem, new Date(Date.now() + 3650 * DAY)), 'ERR_CERT_UNTRUSTED', 'trust is checked before dates');
});

t.test('revoked → ERR_CERT_REVOKED, persisted atomically and seen after a reload and by another instance', async (t) => {
  const bob = ca.issue('bob');
  const running = await CertificateAuthority.loadOrCreate(caDir); // e.g. the daemon, already running
  t.equal(running.verifyClient(bob.certPem).name, 'bob');
  t.notOk(ca.isRevoked(bob.serial));
  ca.revoke(bob.serial.toUpperCase()); // serials compare case-insensitively
  ca.revoke(bob.serial); // idempotent
  t.ok(ca.isRevoked(bob.serial));
  const onDisk = JSON.parse(readFileSync(join(caDir, CA_FILES.revoked), 'utf8')) as { revoked: { serial: string }[] };
  t.same(onDisk.revoked.map((r) => r.serial), [bob.serial], 'one entry on disk');
  t.equal(mode(join(caDir, CA_FILES.revoked)), 0o644);
  const err = expectCode(t, () => ca.verifyClient(bob.certPem), 'ERR_CERT_REVOKED');
  t.same(err?.data, { name: 'bob', serial: bob.serial });
  expectCode(t, () => running.verifyClient(bob.certPem), 'ERR_CERT_REVOKED', 'a running instance re-reads the changed list');
  const reloaded = await CertificateAuthority.loadOrCreate(caDir);
  t.ok(reloaded.isRevoked(bob.serial), 'persisted across reload');
  expectCode(t, () => reloaded.verifyClient(bob.certPem), 'ERR_CERT_REVOKED', 'after reload');
  t.equal(reloaded.verifyClient(alice.certPem).name, 'alice', 'others are unaffected');
  expectCode(t, () => ca.revoke('not-hex'), 'ERR_INVALID_OPTION', 'revoke validates the serial');
  t.notOk(ca.isRevoked('zz'), 'a non-serial is never revoked');
});

t.test('garbage instead of a certificate → ERR_AUTH_FAILED', async (t) => {
  const body = alice.certPem.split('\n').slice(1, -2).join('');
  const garbage: [string, unknown][] = [
    ['empty', ''],
    ['text', 'hello'],
    ['not a string', { pem: alice.certPem }],
    ['a private key', alice.keyPem],
    ['bad base64 body', '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n'],
    ['truncated DER', `-----BEGIN CERTIFICATE-----\n${body.slice(0, 200)}\n-----END CERTIFICATE-----\n`],
    ['trailing bytes after the DER', `-----BEGIN CERTIFICATE-----\n${Buffer.concat([Buffer.from(body, 'base64'), Buffer.from([0, 0])]).toString('base64')}\n-----END CERTIFICATE-----\n`],
    ['two certificates', alice.certPem + mallory.certPem],
    ['oversized', `-----BEGIN CERTIFICATE-----\n${'A'.repeat(100_000)}\n-----END CERTIFICATE-----\n`],
  ];
  for (const [what, pem] of garbage) {
    expectCode(t, () => ca.verifyClient(pem as string), 'ERR_AUTH_FAILED', what);
  }
});

t.test('writeIdentity / readIdentity: <name>.cert.pem and <name>.key.pem (0600) in a 0700 directory', async (t) => {
  const dir = join(root, 'identities');
  const paths = writeIdentity(dir, alice);
  t.same(paths, { certPath: join(dir, 'alice.cert.pem'), keyPath: join(dir, 'alice.key.pem') });
  t.equal(mode(dir), 0o700);
  t.equal(mode(paths.keyPath), 0o600);
  t.equal(mode(paths.certPath), 0o644);
  t.same(readIdentity(dir, 'alice'), { certPem: alice.certPem, keyPem: alice.keyPem });
  t.same(readIdentity(paths), { certPem: alice.certPem, keyPem: alice.keyPem });
  chmodSync(paths.keyPath, 0o644);
  expectCode(t, () => readIdentity(dir, 'alice'), 'ERR_UNSAFE_PERMISSIONS', 'a key readable by others is refused');
  expectCode(t, () => readIdentity(dir, 'nobody'), 'ERR_INVALID_OPTION', 'missing files');
  expectCode(t, () => writeIdentity(dir, { ...alice, name: '../escape' } as IssuedIdentity), 'ERR_INVALID_OPTION', 'the name cannot leave the directory');
});

t.test('the CA fails closed on bad state', async (t) => {
  const dir = join(root, 'fragile-ca');
  const fragile = await CertificateAuthority.loadOrCreate(dir, { commonName: 'fragile', validDays: 10 });
  t.equal(new X509Certificate(fragile.certPem).subject, 'CN=fragile');

  chmodSync(join(dir, CA_FILES.key), 0o640);
  await t.rejects(CertificateAuthority.loadOrCreate(dir), { code: 'ERR_UNSAFE_PERMISSIONS' }, 'group-readable key');
  chmodSync(join(dir, CA_FILES.key), 0o600);

  chmodSync(dir, 0o770);
  await t.rejects(CertificateAuthority.loadOrCreate(dir), { code: 'ERR_UNSAFE_PERMISSIONS' }, 'group-writable directory');
  chmodSync(dir, 0o700);

  const revoked = join(dir, CA_FILES.revoked);
  const client = fragile.issue('client');
  t.equal(fragile.verifyClient(client.certPem).name, 'client');
  writeFileSync(revoked, '{ not json');
  expectCode(t, () => fragile.verifyClient(client.certPem), 'ERR_CORRUPT_STATE', 'a corrupt revocation list stops verification');
  await t.rejects(CertificateAuthority.loadOrCreate(dir), { code: 'ERR_CORRUPT_STATE' }, 'and loading');
  rmSync(revoked);
  await t.rejects(CertificateAuthority.loadOrCreate(dir), { code: 'ERR_CORRUPT_STATE' }, 'a missing revocation list too');
  writeFileSync(revoked, '{"version":1,"revoked":[]}');
  t.ok(await CertificateAuthority.loadOrCreate(dir), 'restored');

  writeFileSync(join(dir, CA_FILES.cert), otherCa.certPem);
  await t.rejects(CertificateAuthority.loadOrCreate(dir), { code: 'ERR_CORRUPT_STATE' }, 'key and certificate do not match');

  const half = join(root, 'half-ca');
  mkdirSync(half, { mode: 0o700 });
  writeFileSync(join(half, CA_FILES.cert), ca.certPem); // as if creation stopped before the key was written
  await t.rejects(CertificateAuthority.loadOrCreate(half), { code: 'ERR_CORRUPT_STATE' }, 'a certificate without its key is not silently replaced');

  await t.rejects(CertificateAuthority.loadOrCreate(join(root, 'x'), { validDays: -1 }), { code: 'ERR_INVALID_OPTION' });
  await t.rejects(CertificateAuthority.loadOrCreate(join(root, 'y'), { commonName: '' }), { code: 'ERR_INVALID_OPTION' });
});

t.test('an expired CA certificate makes its clients expire too', async (t) => {
  const dir = join(root, 'short-ca');
  const short = await CertificateAuthority.loadOrCreate(dir, { validDays: 1 });
  const id = short.issue('long-lived', { validDays: 30 });
  t.equal(short.verifyClient(id.certPem).name, 'long-lived');
  const err = expectCode(t, () => short.verifyClient(id.certPem, new Date(Date.now() + 5 * DAY)), 'ERR_CERT_EXPIRED');
  t.equal(err?.data['which'], 'CA');
});
