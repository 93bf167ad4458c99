// docs/wire.md section 8 (the daemon handshake) cannot drift from the code:
// its example bytes are what the encoder and proofPayload() write, its limits
// are the code's constants, and every refusal row's data keys are exactly
// what a real daemon sends for that refusal.
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, HANDSHAKE_TIMEOUT_MS } from '../lib/daemon/daemon.js';
import { HandshakeReader, MAX_HANDSHAKE_FRAME_BYTES, MAX_HANDSHAKE_PENDING_BYTES } from '../lib/daemon/handshake-io.js';
import { DAEMON_LIMIT_DEFAULTS } from '../lib/daemon/daemon-settings.js';
import { CertificateAuthority, MAX_CONTEXT_FIELD_BYTES, PROOF_DOMAIN, proofPayload, signProof } from '../lib/identity/index.js';
import { MAX_CERT_PEM_CHARS } from '../lib/identity/certificate.js';
import { PSS_SALT_BYTES } from '../lib/identity/signature.js';
import { decodeItem, encodeItem } from '../lib/wire/codec.js';
import { encodeFrame } from '../lib/wire/frame-decoder.js';
import { loadProtocolFile } from '../lib/protocol/registry.js';
import { acceptedPair, FIXTURES, REPO_ROOT, rejection, runCli } from './helpers.js';

const doc = readFileSync(join(REPO_ROOT, 'docs/wire.md'), 'utf8');
const section8 = doc.slice(doc.indexOf('## 8. Daemon handshake'));

const work = mkdtempSync(join(tmpdir(), 'bulkhead-wire-doc-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const config = join(work, 'bulkhead.json');
writeFileSync(config, JSON.stringify({ root: FIXTURES, services: [{ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo', clients: ['app-a', 'old', 'gone'] }] }));
const daemon = await Daemon.start({ config, settings: { socketPath: join(work, 'd.sock'), stateDir: join(work, 'state'), handshakeTimeoutMs: 500, maxUnauthenticatedPerUid: 2 }, log: () => {} });
t.teardown(() => daemon.close());
const ca = daemon.ca;
const appA = ca.issue('app-a');
const appB = ca.issue('app-b');
const expired = ca.issue('old', { notBefore: new Date(Date.now() - 10 * 86400_000), notAfter: new Date(Date.now() - 86400_000) });
const revoked = ca.issue('gone');
ca.revoke(revoked.serial);
const foreign = (await CertificateAuthority.loadOrCreate(join(work, 'other-ca'))).issue('app-a');

function hexDump(bytes: Buffer): string {
  const lines: string[] = [];
  for (let i = 0; i < bytes.length; i += 16) lines.push(`${i.toString(16).padStart(4, '0')}  ${[...bytes.subarray(i, i + 16)].map((b) => b.toString(16).padStart(2, '0')).join(' ')}`);
  return lines.join('\n');
}

t.test('the worked example is what the code writes', async (t) => {
  const nonce = Buffer.from([...Array(32).keys()]);
  const daemon = createHash('sha256').update('example CA certificate').digest('hex');
  t.ok(section8.includes(`\`${daemon.slice(0, 8)}…${daemon.slice(-4)}\``), 'the example daemon id');
  const examples: Array<[string, Buffer]> = [
    ['challenge', encodeFrame(encodeItem({ t: 'challenge', v: 1, nonce, daemon }))],
    ['proof payload', proofPayload(nonce, { socketPath: '/run/bulkhead/bulkhead.sock', daemonId: daemon, clientName: 'app-a' })],
    ['auth (its first 48 bytes)', encodeItem({ t: 'auth', service: 'echo', name: 'app-a', cert: 'C'.repeat(1147), sig: Buffer.alloc(256) }).subarray(0, 48)],
    ['ok', encodeFrame(encodeItem({ t: 'ok', peer: { name: 'app-a', uid: 1000, gid: 1000, pid: 4242 }, range: 1 }))],
    ['error', encodeFrame(encodeItem({ t: 'error', error: { code: 'ERR_NOT_PERMITTED', message: 'no', data: { reason: 'not-in-clients', name: 'app-a', service: 'echo' } } }))],
  ];
  for (const [what, bytes] of examples) t.ok(section8.includes(hexDump(bytes)), `section 8.7 shows the ${bytes.length}-byte ${what}`);
  const auth = encodeItem({ t: 'auth', service: 'echo', name: 'app-a', cert: 'C'.repeat(1147), sig: Buffer.alloc(256) });
  t.ok(auth.includes(Buffer.from('6373696759' + '0100', 'hex')), 'the auth body carries "sig" as bytes(256), as described');
});

t.test('the limits and parameters quoted are the code\'s', async (t) => {
  t.equal(MAX_HANDSHAKE_FRAME_BYTES, 65536);
  t.match(section8, 'at most **65 536 bytes**');
  t.equal(MAX_HANDSHAKE_PENDING_BYTES, 131080);
  t.match(section8, '**131 080 bytes**');
  t.equal(HANDSHAKE_TIMEOUT_MS, 5000);
  t.match(section8, '**5000 ms** (`daemon.handshakeTimeoutMs`)');
  t.equal(MAX_CERT_PEM_CHARS, 16384);
  t.match(section8, 'at most 16 384 characters');
  t.equal(MAX_CONTEXT_FIELD_BYTES, 4096);
  t.match(section8, '1 … 4096 bytes (`MAX_CONTEXT_FIELD_BYTES`)');
  t.equal(PSS_SALT_BYTES, 32);
  t.match(section8, '**salt of exactly 32 bytes**');
  t.equal(Buffer.byteLength(PROOF_DOMAIN), 17);
  t.match(section8, '"bulkhead-auth-v1" 0x00        17 bytes');
  t.equal(DAEMON_LIMIT_DEFAULTS.maxUnauthenticatedPerUid, 32);
  t.equal(DAEMON_LIMIT_DEFAULTS.maxUnauthenticated, 128);
  t.match(section8, '`daemon.maxUnauthenticatedPerUid` (default 32)');
  t.match(section8, '`daemon.maxUnauthenticated` (default 128)');
});

// ---- refusals: the table's data keys against a real daemon ----

interface Row { codes: string[]; reason: string; keys: string[] }
const table = section8.slice(section8.indexOf('### 8.5'), section8.indexOf('### 8.6'));
const rows: Row[] = [...table.matchAll(/^\| (`ERR_[^|]+) \| ([^|]+) \| [^|]+ \| ([^|]+) \|$/gm)].map((m) => ({
  codes: [...m[1]!.matchAll(/`(ERR_[A-Z_]+)`/g)].map((c) => c[1]!),
  reason: m[2]!.replaceAll('`', '').trim(),
  keys: m[3]!.split(',').map((k) => k.trim().split(' ')[0]!).filter((k) => k !== ''),
}));

/** Connects to `path`, runs `send`, and resolves with the refusal the daemon wrote before closing. */
function refusal(send: (socket: Socket, challenge: Record<string, unknown>) => void, path = daemon.socketPath): Promise<{ code: string; data: Record<string, unknown> }> {
  const socket = createConnection(path);
  socket.on('error', () => {});
  const reader = new HandshakeReader(socket);
  return (async () => {
    const challenge = await reader.next(10_000);
    send(socket, challenge);
    const answer = await reader.next(10_000);
    socket.destroy();
    return answer['error'] as { code: string; data: Record<string, unknown> };
  })();
}
const raw = (hex: string) => (s: Socket) => s.write(Buffer.from(hex, 'hex'));
function auth(identity: { name: string; certPem: string; keyPem: string }, fields: Record<string, unknown> = {}, context: { socketPath?: string } = {}) {
  return (s: Socket, challenge: Record<string, unknown>) => {
    const sig = signProof(identity.keyPem, proofPayload(challenge['nonce'] as Uint8Array, { socketPath: context.socketPath ?? daemon.socketPath, daemonId: challenge['daemon'] as string, clientName: identity.name }));
    s.write(encodeFrame(encodeItem({ t: 'auth', service: 'echo', name: identity.name, cert: identity.certPem, sig, ...fields })));
  };
}

/** How to make each refusal happen, by reason. */
const triggers: Record<string, () => Promise<{ code: string; data: Record<string, unknown> }>> = {
  'bad-cbor': () => refusal(raw('00000001ff')),
  'not-a-map': () => refusal(raw('0000000101')),
  'too-large': () => refusal(raw('7fffffff')),
  timeout: () => refusal(() => {}),
  'bad-message': () => refusal(auth(appA, { t: 'hello' })),
  'no-credentials': () => refusal(auth(appA, { sig: 'text' })),
  'malformed-certificate': () => refusal(auth(appA, { cert: 'not a certificate' })),
  'free text: why': () => refusal(auth(foreign)),
  revoked: () => refusal(auth(revoked)),
  validity: () => refusal(auth(expired)),
  'name-mismatch': () => refusal(auth(appA, { name: 'app-b' })),
  'bad-proof': () => refusal(auth(appA, {}, { socketPath: '/elsewhere.sock' })),
  'unknown-service': () => refusal(auth(appA, { service: 'nope' })),
  'not-in-clients': () => refusal(auth(appB)),
  'daemon-stopping': async () => {
    const other = await Daemon.start({ config, settings: { socketPath: join(work, 'stop.sock'), stateDir: join(work, 'state') }, log: () => {} });
    return refusal(() => void other.close(), other.socketPath);
  },
};
/** Rows a test cannot provoke through a daemon socket, and where they are covered instead. */
const elsewhere: Record<string, string> = {
  'too-many-bytes': 'HandshakeReader below: the daemon verifies an auth message before it reads on, so only a reader left unread piles bytes up',
  'bad-subject': 'needs a certificate this CA signed with an invalid name, which ca.issue() refuses to make',
  'no-route': 'needs 4095 routed clients of one service, or a service invalidated between the check and the route',
  'per-uid-limit, total-limit': 'test/daemon-hostile.test.ts (per-uid-limit, with its data) and the AdmissionGate test',
};

t.test('the refusal table parses', async (t) => {
  t.ok(rows.length >= 18, `${rows.length} rows`);
  for (const row of rows) t.ok(row.reason in triggers || row.reason in elsewhere, `row "${row.reason}" is exercised here or says where`);
});

t.test('each refusal sends exactly the data keys the table lists', async (t) => {
  for (const row of rows) {
    const trigger = triggers[row.reason];
    if (trigger === undefined) continue;
    const error = await trigger();
    t.ok(row.codes.includes(error.code), `${row.reason}: code ${error.code} is in the row (${row.codes.join(', ')})`);
    t.same(Object.keys(error.data).sort(), [...row.keys].sort(), `${row.reason}: data keys ${row.keys.join(', ')}`);
    if (row.reason !== 'free text: why') t.equal(error.data['reason'], row.reason, `${row.reason}: data.reason`);
    else t.type(error.data['reason'], 'string');
  }
});

t.test('too-many-bytes carries the keys its row lists', async (t) => {
  const row = rows.find((r) => r.reason === 'too-many-bytes')!;
  const { client, peer } = await acceptedPair(t, join(work, 'raw.sock'));
  const reader = new HandshakeReader(peer);
  let seen = 0;
  const over = new Promise<void>((resolve) => peer.on('data', (c: Buffer) => {
    if ((seen += c.length) > MAX_HANDSHAKE_PENDING_BYTES) resolve();
  }));
  client.write(Buffer.alloc(2 * MAX_HANDSHAKE_PENDING_BYTES));
  await over;
  const err = await rejection(reader.next(1000));
  t.ok(row.codes.includes(err.code));
  t.same(Object.keys(err.data).sort(), [...row.keys].sort());
});

t.test('the error bodies decode as the section-4 error body (code, message, data map)', async (t) => {
  const bytes = encodeItem({ t: 'error', error: { code: 'ERR_AUTH_FAILED', message: 'm', data: { reason: 'timeout', timeoutMs: 5000 } } });
  t.same(decodeItem(bytes), { t: 'error', error: { code: 'ERR_AUTH_FAILED', message: 'm', data: { reason: 'timeout', timeoutMs: 5000 } } });
});

t.test('`bulkhead protocol show bulkhead.control` prints the control protocol and its hash (section 8.6)', async (t) => {
  const file = join(REPO_ROOT, 'protocols/bulkhead.control.json');
  const hash = await runCli(['protocol', 'show', 'bulkhead.control', '--hash']);
  t.equal(hash.code, 0, hash.stderr);
  t.equal(hash.stdout.trim(), loadProtocolFile(file).hash);
  const shown = await runCli(['protocol', 'show', 'bulkhead.control']);
  t.equal(shown.stdout.trim(), readFileSync(file, 'utf8').trim(), 'the document as shipped');
  t.match(shown.stderr, `schema hash ${loadProtocolFile(file).hash}`);
  t.equal((await runCli(['protocol', 'show', 'no.such.protocol'])).code, 1, 'an unknown name exits 1');
  t.match(section8, 'name `bulkhead.control`, version\n`1.0.0`');
});
