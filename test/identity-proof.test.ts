/**
 * Challenge–response proof of possession: a valid proof verifies; the wrong key,
 * a replayed answer (another nonce), a relayed answer (another socket path or
 * daemon id) and garbage all fail; authenticateClient maps each to its code.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import {
  CertificateAuthority,
  NONCE_BYTES,
  PROOF_DOMAIN,
  answerChallenge,
  authenticateClient,
  createChallenge,
  proofPayload,
  signProof,
  verifyProof,
} from '../lib/identity/index.js';
import { expectCode } from './helpers.js';


const root = mkdtempSync(join(tmpdir(), 'bulkhead-identity-proof-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const ca = await CertificateAuthority.loadOrCreate(join(root, 'ca'));
const otherCa = await CertificateAuthority.loadOrCreate(join(root, 'other-ca'));
const app = ca.issue('app');
const eve = ca.issue('eve');
const foreign = otherCa.issue('app');

const socketPath = '/run/user/1000/bulkhead/daemon.sock';
const daemonId = ca.fingerprint;
const context = { socketPath, daemonId, clientName: 'app' };

t.test('a challenge is 32 fresh random bytes', async (t) => {
  const a = createChallenge().nonce;
  const b = createChallenge().nonce;
  t.equal(a.length, NONCE_BYTES);
  t.equal(NONCE_BYTES, 32);
  t.notOk(a.equals(b), 'two challenges differ');
});

t.test('the payload is canonical: prefix, nonce, then length-prefixed fields', async (t) => {
  const nonce = Buffer.alloc(32, 7);
  const p = proofPayload(nonce, { socketPath: '/s', daemonId: 'd1', clientName: 'app' });
  const expected = Buffer.concat([
    Buffer.from('bulkhead-auth-v1\0'), nonce,
    Buffer.from([0, 0, 0, 2]), Buffer.from('/s'),
    Buffer.from([0, 0, 0, 2]), Buffer.from('d1'),
    Buffer.from([0, 0, 0, 3]), Buffer.from('app'),
  ]);
  t.same(p, expected, 'byte layout');
  t.equal(PROOF_DOMAIN, 'bulkhead-auth-v1\0');
  t.same(proofPayload(new Uint8Array(nonce), { socketPath: '/s', daemonId: 'd1', clientName: 'app' }), p, 'a Uint8Array nonce gives the same bytes');
  // Moving a character from one field to the next changes the bytes.
  const a = proofPayload(nonce, { socketPath: '/sa', daemonId: 'b', clientName: 'app' });
  const b = proofPayload(nonce, { socketPath: '/s', daemonId: 'ab', clientName: 'app' });
  t.notSame(a, b, 'field boundaries are part of the payload');
  expectCode(t, () => proofPayload(Buffer.alloc(16), context), 'ERR_INVALID_OPTION', 'short nonce');
  expectCode(t, () => proofPayload(nonce, { ...context, socketPath: '' }), 'ERR_INVALID_OPTION', 'empty socketPath');
  expectCode(t, () => proofPayload(nonce, { ...context, daemonId: 'x'.repeat(5000) }), 'ERR_INVALID_OPTION', 'oversized daemonId');
  expectCode(t, () => proofPayload(nonce, { ...context, clientName: 42 as unknown as string }), 'ERR_INVALID_OPTION', 'non-string clientName');
});

t.test('a valid proof verifies', async (t) => {
  const { nonce } = createChallenge();
  const payload = proofPayload(nonce, context);
  const signature = signProof(app.keyPem, payload);
  t.equal(signature.length, 256, 'one RSA-2048 block');
  t.ok(verifyProof(app.certPem, payload, signature));
  t.notSame(signProof(app.keyPem, payload), signature, 'PSS is randomised: a second signature differs');
});

t.test('the signature is standard RSASSA-PSS-SHA256 (salt 32): node-forge verifies it too', async (t) => {
  const payload = proofPayload(createChallenge().nonce, context);
  const signature = signProof(app.keyPem, payload);
  const publicKey = forge.pki.certificateFromPem(app.certPem).publicKey as forge.pki.rsa.PublicKey;
  const md = forge.md.sha256.create();
  md.update(payload.toString('binary'));
  const pss = forge.pss.create({ md: forge.md.sha256.create(), mgf: forge.mgf.mgf1.create(forge.md.sha256.create()), saltLength: 32 });
  t.ok(publicKey.verify(md.digest().getBytes(), signature.toString('binary'), pss));
});

t.test('the wrong key (another identity\'s key with this certificate) → false', async (t) => {
  const payload = proofPayload(createChallenge().nonce, context);
  const forged = signProof(eve.keyPem, payload);
  t.notOk(verifyProof(app.certPem, payload, forged), 'eve\'s key does not prove app');
  t.ok(verifyProof(eve.certPem, payload, forged), 'it does prove eve (the check is the key, not luck)');
});

t.test('replay: an answer captured for nonce A fails for nonce B', async (t) => {
  const a = createChallenge().nonce;
  const b = createChallenge().nonce;
  const captured = { payload: proofPayload(a, context), signature: signProof(app.keyPem, proofPayload(a, context)) };
  t.ok(verifyProof(app.certPem, captured.payload, captured.signature), 'valid on its own connection');
  t.notOk(verifyProof(app.certPem, proofPayload(b, context), captured.signature), 'the daemon rebuilds the payload with nonce B: fails');
});

t.test('relay: a signature made for another socket path or daemon id fails', async (t) => {
  const { nonce } = createChallenge();
  const signedForRogue = signProof(app.keyPem, proofPayload(nonce, { ...context, socketPath: '/tmp/rogue.sock' }));
  t.notOk(verifyProof(app.certPem, proofPayload(nonce, context), signedForRogue), 'other socketPath');
  const signedForOtherDaemon = signProof(app.keyPem, proofPayload(nonce, { ...context, daemonId: otherCa.fingerprint }));
  t.notOk(verifyProof(app.certPem, proofPayload(nonce, context), signedForOtherDaemon), 'other daemonId');
  const signedAsEve = signProof(app.keyPem, proofPayload(nonce, { ...context, clientName: 'eve' }));
  t.notOk(verifyProof(app.certPem, proofPayload(nonce, context), signedAsEve), 'other clientName');
});

t.test('garbage never throws from verifyProof, it is false', async (t) => {
  const payload = proofPayload(createChallenge().nonce, context);
  const signature = signProof(app.keyPem, payload);
  t.notOk(verifyProof('not a cert', payload, signature), 'garbage certificate');
  t.notOk(verifyProof(app.certPem, payload, Buffer.alloc(0)), 'empty signature');
  t.notOk(verifyProof(app.certPem, payload, Buffer.alloc(256, 1)), 'random signature');
  t.notOk(verifyProof(app.certPem, payload, signature.subarray(1)), 'truncated signature');
  t.notOk(verifyProof(app.certPem, payload, Buffer.concat([Buffer.alloc(1), signature])), 'a zero byte in front');
  t.notOk(verifyProof(app.certPem, payload, 'abc' as unknown as Uint8Array), 'not bytes');
  const flipped = Buffer.from(payload);
  flipped[flipped.length - 1]! ^= 1;
  t.notOk(verifyProof(app.certPem, flipped, signature), 'one bit of the payload changed');
  t.notOk(verifyProof(app.certPem, Buffer.from('something else entirely, long enough'), signature), 'not a proof payload');
});

t.test('a signature has one encoding: without its leading zero byte it is refused', async (t) => {
  // About 1 in 256 signatures starts with 0x00; OpenSSL alone would accept it without that byte.
  for (let i = 0; i < 4096; i++) {
    const payload = proofPayload(createChallenge().nonce, context);
    const signature = signProof(app.keyPem, payload);
    if (signature[0] !== 0) continue;
    t.ok(verifyProof(app.certPem, payload, signature), 'the full signature verifies');
    t.notOk(verifyProof(app.certPem, payload, signature.subarray(1)), 'the same integer in one byte less does not');
    return;
  }
  t.fail('no signature with a leading zero byte in 4096 tries');
});

t.test('signProof signs proof payloads only, with a usable RSA key', async (t) => {
  expectCode(t, () => signProof(app.keyPem, Buffer.from('{"version":1,"files":{}}')), 'ERR_INVALID_OPTION', 'no domain prefix: refused');
  const payload = proofPayload(createChallenge().nonce, context);
  expectCode(t, () => signProof('garbage', payload), 'ERR_INVALID_OPTION', 'garbage key');
  expectCode(t, () => signProof(app.certPem, payload), 'ERR_INVALID_OPTION', 'a certificate is not a key');
});

t.test('authenticateClient: the daemon side in one call', async (t) => {
  const { nonce } = createChallenge();
  const here = { nonce, socketPath, daemonId };
  const answer = answerChallenge(app, nonce, { socketPath, daemonId });
  t.same(authenticateClient(ca, answer, here), { name: 'app', serial: app.serial, notAfter: app.notAfter }, 'accepted');

  expectCode(t, () => authenticateClient(ca, {}, here), 'ERR_AUTH_REQUIRED', 'nothing presented');
  expectCode(t, () => authenticateClient(ca, { certPem: app.certPem }, here), 'ERR_AUTH_REQUIRED', 'no signature');
  expectCode(t, () => authenticateClient(ca, { signature: answer.signature }, here), 'ERR_AUTH_REQUIRED', 'no certificate');
  expectCode(t, () => authenticateClient(ca, null as unknown as object, here), 'ERR_AUTH_REQUIRED', 'null answer');

  const replay = { nonce: createChallenge().nonce, socketPath, daemonId };
  const e1 = expectCode(t, () => authenticateClient(ca, answer, replay), 'ERR_AUTH_FAILED', 'replayed on a new connection');
  t.equal(e1?.data['reason'], 'bad-proof');

  const stolenCert = { certPem: app.certPem, signature: answerChallenge(eve, nonce, { socketPath, daemonId }).signature };
  expectCode(t, () => authenticateClient(ca, stolenCert, here), 'ERR_AUTH_FAILED', 'app\'s certificate with eve\'s key');

  // The name comes from the verified certificate: eve cannot sign as "app" and present her own cert.
  const eveAsApp = { certPem: eve.certPem, signature: signProof(eve.keyPem, proofPayload(nonce, { socketPath, daemonId, clientName: 'app' })) };
  expectCode(t, () => authenticateClient(ca, eveAsApp, here), 'ERR_AUTH_FAILED', 'eve claiming to be app');

  const relayed = answerChallenge(app, nonce, { socketPath: '/tmp/rogue.sock', daemonId });
  expectCode(t, () => authenticateClient(ca, relayed, here), 'ERR_AUTH_FAILED', 'answer made for a rogue socket');

  expectCode(t, () => authenticateClient(ca, answerChallenge(foreign, nonce, { socketPath, daemonId }), here), 'ERR_CERT_UNTRUSTED', 'another CA');
  expectCode(t, () => authenticateClient(ca, { certPem: 'junk', signature: answer.signature }, here), 'ERR_AUTH_FAILED', 'garbage certificate');
  expectCode(t, () => authenticateClient(ca, answer, here, new Date(app.notAfter.getTime() + 1000)), 'ERR_CERT_EXPIRED', 'expired');
});
