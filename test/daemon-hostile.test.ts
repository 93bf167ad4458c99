// Hostile local clients against a real daemon: garbage, oversize, slow and
// silent peers are refused with their code and closed by the daemon (the
// silent ones by its handshake timeout, never earlier, and none is held); caps evict the oldest pending connection; every refusal is logged
// with the peer's kernel credentials and counted. Positive controls: an honest
// client still connects alongside, and every assertion reads a real socket.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../lib/daemon/daemon.js';
import { RemoteBroker } from '../lib/daemon/remote-broker.js';
import { decodeItem, encodeItem } from '../lib/wire/codec.js';
import { encodeFrame } from '../lib/wire/frame-decoder.js';
import { proofPayload, signProof } from '../lib/identity/index.js';
import { FIXTURES, rejection } from './helpers.js';

const TIMEOUT_MS = 1500;
const work = mkdtempSync(join(tmpdir(), 'bulkhead-hostile-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const config = join(work, 'bulkhead.json');
const uid = process.getuid!();
const gid = process.getgid!();
writeFileSync(config, JSON.stringify({
  root: FIXTURES,
  services: [
    { name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo', clients: ['app-a'] },
    { name: 'by-uid', entry: './echo-service.js', protocol: 'com.test.echo', clients: [`uid:${uid}`] },
    { name: 'by-gid', entry: './echo-service.js', protocol: 'com.test.echo', clients: [`*@gid:${gid}`] },
    { name: 'other-uid', entry: './echo-service.js', protocol: 'com.test.echo', clients: [`app-a@uid:${uid + 4242}`, `gid:${gid + 4242}`] },
  ],
}));
const logged: Array<Record<string, unknown>> = [];
const logWaiters: Array<{ match: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }> = [];
/** Resolves with the next log entry that matches (an event to wait on, not a sleep). */
const nextLog = (match: (e: Record<string, unknown>) => boolean) => new Promise<Record<string, unknown>>((resolve) => logWaiters.push({ match, resolve }));
const daemon = await Daemon.start({
  config,
  settings: { socketPath: join(work, 'd.sock'), stateDir: join(work, 'state'), handshakeTimeoutMs: TIMEOUT_MS, maxUnauthenticated: 1000, maxUnauthenticatedPerUid: 1000 },
  log: (e) => {
    logged.push(e);
    for (const w of [...logWaiters]) {
      if (w.match(e)) {
        logWaiters.splice(logWaiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  },
});
t.teardown(() => daemon.close());
const appA = daemon.ca.issue('app-a');
const remote = () => new RemoteBroker(daemon.socketPath, appA, { protocolsDir: join(FIXTURES, 'protocols') });

/**
 * What a raw peer saw: every byte the daemon sent, how the daemon closed the
 * socket (its FIN, or a reset when our unread bytes were dropped), and when
 * (ms after we started connecting, on the monotonic clock).
 */
interface Outcome { bytes: Buffer; closedBy: 'end' | 'ECONNRESET' | 'EPIPE' | undefined; closedAfterMs: number }

/**
 * A hang guard, not a speed claim: the daemon's close is awaited as an event;
 * this bound (10 × the handshake timeout) only turns "the daemon never closed
 * it" into a failure with a message instead of tap's 240 s timeout.
 */
const HANG_GUARD_MS = 10 * TIMEOUT_MS;

/** Connects, writes `send` (or nothing), and resolves when the daemon closes the socket. Never reads more than it is sent, never closes it itself. */
function rawPeer(send?: (socket: Socket) => void): { socket: Socket; outcome: Promise<Outcome> } {
  const socket = createConnection(daemon.socketPath);
  const started = performance.now();
  const chunks: Buffer[] = [];
  let closedBy: Outcome['closedBy'];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.once('end', () => (closedBy ??= 'end'));
  socket.on('error', (e: NodeJS.ErrnoException) => { // EPIPE / ECONNRESET after a refusal are expected: the daemon dropped our unread bytes
    if (e.code === 'ECONNRESET' || e.code === 'EPIPE') closedBy ??= e.code;
  });
  const closed = new Promise<Outcome>((resolve) => socket.once('close', () => resolve({ bytes: Buffer.concat(chunks), closedBy, closedAfterMs: performance.now() - started })));
  let guard: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    guard = setTimeout(() => {
      socket.destroy();
      reject(new Error(`hang guard: the daemon did not close this socket within ${HANG_GUARD_MS} ms (handshake timeout ${TIMEOUT_MS} ms)`));
    }, HANG_GUARD_MS);
  });
  const outcome = Promise.race([closed, hung]).finally(() => clearTimeout(guard));
  if (send !== undefined) socket.once('connect', () => send(socket));
  return { socket, outcome };
}

/** The daemon's count of handshake timeouts (the refusal it records when its deadline fires). */
const timeouts = () => daemon.connectionStatus().refusals['ERR_AUTH_FAILED:timeout'] ?? 0;

/**
 * Asserts the daemon, not the peer, closed the socket, after a typed refusal;
 * for a timeout, that the refusal is the daemon's deadline (it names
 * `timeoutMs`) and came no earlier than it: a timer cannot fire early, so this
 * lower bound holds under any load (5 ms of slack for clock granularity).
 */
function assertClosedByDaemon(t: Test, what: string, o: Outcome): void {
  t.ok(o.closedBy !== undefined, `${what}: the daemon closed the socket (${o.closedBy ?? 'no FIN or reset seen'})`);
  const refusal = refusalOf(o);
  if (refusal?.data['reason'] !== 'timeout') return;
  t.equal(refusal.data['timeoutMs'], TIMEOUT_MS, `${what}: closed by the daemon's handshake deadline (timeoutMs ${TIMEOUT_MS})`);
  t.ok(o.closedAfterMs >= TIMEOUT_MS - 5, `${what}: not before the deadline (closed ${o.closedAfterMs.toFixed(0)} ms after connecting)`);
}

/** The CBOR maps in a byte run of frames (the challenge, then the refusal). */
function messages(bytes: Buffer): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  let at = 0;
  while (at + 4 <= bytes.length) {
    const length = bytes.readUInt32BE(at);
    if (at + 4 + length > bytes.length) break;
    out.push(decodeItem(bytes.subarray(at + 4, at + 4 + length)) as Record<string, unknown>);
    at += 4 + length;
  }
  return out;
}

function refusalOf(o: Outcome): { code: string; data: Record<string, unknown> } | undefined {
  const last = messages(o.bytes).at(-1);
  return last?.['t'] === 'error' ? last['error'] as { code: string; data: Record<string, unknown> } : undefined;
}

/** Answers the challenge with `auth` fields of our choosing (a genuine proof unless overridden). */
function authWith(fields: Record<string, unknown>): (socket: Socket) => void {
  return (socket) => {
    socket.once('data', (c: Buffer) => {
      const challenge = messages(c)[0]!;
      const sig = signProof(appA.keyPem, proofPayload(challenge['nonce'] as Uint8Array, { socketPath: daemon.socketPath, daemonId: challenge['daemon'] as string, clientName: 'app-a' }));
      socket.write(encodeFrame(encodeItem({ t: 'auth', service: 'echo', name: 'app-a', cert: appA.certPem, sig, ...fields })));
    });
  };
}

const frame = (hex: string) => Buffer.from(hex.replaceAll(' ', ''), 'hex');

t.test('each malformed handshake is refused with its code and reason, then closed', async (t) => {
  const cases: Array<[string, (s: Socket) => void, string, string]> = [
    ['5 bytes: a frame whose item is not a map', (s) => s.write(frame('00000001 01')), 'ERR_BAD_FRAME', 'not-a-map'],
    ['a frame holding an array', (s) => s.write(frame('00000003 82 01 02')), 'ERR_BAD_FRAME', 'not-a-map'],
    ['invalid CBOR (a lone break)', (s) => s.write(frame('00000001 ff')), 'ERR_BAD_FRAME', 'bad-cbor'],
    ['a forbidden tag (a date)', (s) => s.write(frame('00000002 c0 00')), 'ERR_BAD_FRAME', 'bad-cbor'],
    ['a header over 64 KiB, then bytes that keep coming', (s) => { s.write(frame('7fffffff')); s.write(Buffer.alloc(1 << 20)); }, 'ERR_FRAME_TOO_LARGE', 'too-large'],
    ['a map that is not an auth message', authWith({ t: 'hello' }), 'ERR_AUTH_FAILED', 'bad-message'],
    ['an auth message without a signature', authWith({ sig: undefined }), 'ERR_AUTH_REQUIRED', 'no-credentials'],
    ['a signature as text, not bytes', authWith({ sig: 'abcd' }), 'ERR_AUTH_REQUIRED', 'no-credentials'],
    ['a name that is not the certificate\'s', authWith({ name: 'app-b' }), 'ERR_AUTH_FAILED', 'name-mismatch'],
    ['a proof signed over another socket path', (s) => s.once('data', (c: Buffer) => {
      const ch = messages(c)[0]!;
      const sig = signProof(appA.keyPem, proofPayload(ch['nonce'] as Uint8Array, { socketPath: '/elsewhere.sock', daemonId: ch['daemon'] as string, clientName: 'app-a' }));
      s.write(encodeFrame(encodeItem({ t: 'auth', service: 'echo', name: 'app-a', cert: appA.certPem, sig })));
    }), 'ERR_AUTH_FAILED', 'bad-proof'],
    ['silence', () => {}, 'ERR_AUTH_FAILED', 'timeout'],
    ['half a header, then silence', (s) => s.write(frame('0000')), 'ERR_AUTH_FAILED', 'timeout'],
    ['a frame trickled one byte at a time, too slowly', (s) => {
      const bytes = encodeFrame(encodeItem({ t: 'auth', service: 'echo' }));
      let i = 0;
      const timer = setInterval(() => (i < bytes.length && s.writable ? s.write(bytes.subarray(i++, i)) : clearInterval(timer)), 200);
      s.once('close', () => clearInterval(timer));
    }, 'ERR_AUTH_FAILED', 'timeout'],
  ];
  const timedOutBefore = timeouts();
  const outcomes = await Promise.all(cases.map(([, send]) => rawPeer(send).outcome));
  cases.forEach(([what, , code, reason], i) => {
    const refusal = refusalOf(outcomes[i]!);
    t.equal(refusal?.code, code, `${what}: ${code}`);
    t.equal(refusal?.data['reason'], reason, `${what}: data.reason ${reason}`);
    assertClosedByDaemon(t, what, outcomes[i]!);
  });
  t.equal(timeouts() - timedOutBefore, cases.filter((c) => c[3] === 'timeout').length, 'the daemon counted one handshake timeout per silent or slow peer');
  t.equal(daemon.connectionStatus().pendingHandshakes, 0, 'none is still pending');
  const oversize = refusalOf(outcomes[4]!)!;
  t.same(oversize.data, { reason: 'too-large', declared: 0x7fffffff, limit: 65536 }, 'ERR_FRAME_TOO_LARGE carries { declared, limit }');
  // Positive control: with all that going on, an honest client gets in.
  const client = remote();
  t.teardown(() => client.close());
  t.equal((await client.connect('echo', { protocol: 'com.test.echo' }).call('echo', { text: 'still here' })).text, 'still here');
});

t.test('200 garbage sockets are all closed by the daemon (the silent ones by its handshake timeout); none is held', async (t) => {
  const garbage = ['00000001 01', '00000001 ff', '7fffffff 00', '00000005 a1 61 74 61', ''];
  const timedOutBefore = timeouts();
  const peers = Array.from({ length: 200 }, (_, i) => rawPeer(garbage[i % garbage.length] === '' ? undefined : (s) => s.write(frame(garbage[i % garbage.length]!))));
  const outcomes = await Promise.all(peers.map((p) => p.outcome));
  t.equal(outcomes.filter((o) => refusalOf(o) !== undefined).length, 200, 'every one got a typed refusal before the close');
  t.equal(outcomes.filter((o) => o.closedBy !== undefined).length, 200, 'the daemon closed every one (its FIN or a reset; this side never closes)');
  // The silent ones and the truncated frame ('00000005' then 4 bytes) wait for bytes that never come.
  const waiting = outcomes.filter((_, i) => garbage[i % garbage.length] === '' || garbage[i % garbage.length]!.startsWith('00000005'));
  const timedOut = outcomes.filter((o) => refusalOf(o)?.data['reason'] === 'timeout');
  t.equal(timedOut.length, waiting.length, `the ${waiting.length} that wait for bytes, and only they, were refused by the handshake timeout`);
  t.ok(waiting.every((o) => refusalOf(o)?.data['timeoutMs'] === TIMEOUT_MS), `by the daemon's own deadline (timeoutMs ${TIMEOUT_MS})`);
  const earliest = Math.min(...waiting.map((o) => o.closedAfterMs));
  t.ok(earliest >= TIMEOUT_MS - 5, `none of them before it (the earliest closed ${earliest.toFixed(0)} ms after connecting)`);
  t.equal(timeouts() - timedOutBefore, waiting.length, 'the daemon counted exactly those as handshake timeouts');
  t.equal(daemon.connectionStatus().pendingHandshakes, 0, 'no connection is still pending');
  t.ok(daemon.connectionStatus().held > 0, `a uid that keeps being refused has its next connections held (${daemon.connectionStatus().held} were)`);
  // Positive control: an honest client of that same uid is slower to get in, but gets in.
  const client = remote();
  t.teardown(() => client.close());
  t.equal((await client.connect('echo', { protocol: 'com.test.echo' }).call('echo', { text: 'after the storm' })).text, 'after the storm');
});

t.test('every refusal is logged with the peer\'s kernel uid/gid/pid and counted per reason', async (t) => {
  const before = daemon.connectionStatus().refusals['ERR_BAD_FRAME:not-a-map'] ?? 0;
  const { outcome } = rawPeer((s) => s.write(frame('00000001 01')));
  await outcome;
  t.equal(daemon.connectionStatus().refusals['ERR_BAD_FRAME:not-a-map'], before + 1, 'status counts it under its code and reason');
  const entry = logged.filter((e) => e['event'] === 'refused' && e['reason'] === 'not-a-map').at(-1);
  t.match(entry, { code: 'ERR_BAD_FRAME', uid, gid, peerPid: process.pid }, 'the log names the peer as the kernel saw it (this test process)');
});

t.test('pending connections are capped per uid: the oldest is evicted with ERR_TOO_MANY_CONNECTIONS', async (t) => {
  const small = await Daemon.start({
    config,
    settings: { socketPath: join(work, 'small.sock'), stateDir: join(work, 'state'), handshakeTimeoutMs: 60_000, maxUnauthenticatedPerUid: 3, maxUnauthenticated: 5 },
    log: () => {},
  });
  t.teardown(() => small.close());
  const silent = (): { outcome: Promise<Outcome>; challenged: Promise<void> } => {
    const socket = createConnection(small.socketPath);
    socket.on('error', () => {});
    const chunks: Buffer[] = [];
    const challenged = new Promise<void>((resolve) => socket.once('data', () => resolve()));
    socket.on('data', (c: Buffer) => chunks.push(c));
    const started = Date.now();
    return { challenged, outcome: new Promise((resolve) => socket.once('close', () => resolve({ bytes: Buffer.concat(chunks), closedBy: undefined, closedAfterMs: Date.now() - started }))) };
  };
  const first = silent();
  await first.challenged;
  const rest = [silent(), silent()];
  await Promise.all(rest.map((r) => r.challenged));
  t.equal(small.connectionStatus().pendingHandshakes, 3);
  const fourth = silent();
  const evicted = refusalOf(await first.outcome);
  t.same(evicted?.code, 'ERR_TOO_MANY_CONNECTIONS', 'the oldest pending one was closed, with its code');
  t.same(evicted?.data, { reason: 'per-uid-limit', limit: 3 });
  await fourth.challenged;
  t.equal(small.connectionStatus().pendingHandshakes, 3, 'never more than the per-uid cap');
  // Positive control: an honest client of the same uid still gets in (it evicts a silent one).
  const client = new RemoteBroker(small.socketPath, appA, { protocolsDir: join(FIXTURES, 'protocols') });
  t.teardown(() => client.close());
  t.equal((await client.connect('echo', { protocol: 'com.test.echo' }).call('echo', { text: 'in' })).text, 'in');
});

t.test('clients may name kernel uids and gids; the helper sees them in ctx.peer', async (t) => {
  const client = remote();
  t.teardown(() => client.close());
  const byUid = client.connect('by-uid', { protocol: 'com.test.echo' });
  t.same((await byUid.call('whoami', {})).peer, { name: 'app-a', uid, gid, pid: process.pid }, `"uid:${uid}" admits this process`);
  t.same((await client.connect('by-gid', { protocol: 'com.test.echo' }).call('whoami', {})).peer.gid, gid, `"*@gid:${gid}" admits this process`);
  const refused = await rejection(client.connect('other-uid', { protocol: 'com.test.echo' }).call('echo', { text: 'x' }));
  t.equal(refused.code, 'ERR_NOT_PERMITTED', 'another uid or gid is refused, whatever the certificate');
  t.same(refused.data, { reason: 'not-in-clients', name: 'app-a', service: 'other-uid' });
  const status = daemon.connectionStatus();
  const mine = status.clients.find((c) => c.service === 'by-uid');
  t.match(mine, { name: 'app-a', uid, gid, pid: process.pid, alive: true }, 'status lists the client with its kernel credentials; the pidfd says the pid is still it');
  t.equal(status.id, daemon.ca.fingerprint, 'the daemon id is its CA\'s fingerprint');
  t.match(logged.filter((e) => e['event'] === 'connect' && e['service'] === 'by-uid').at(-1), { client: 'app-a', uid, gid, peerPid: process.pid });
  const before = daemon.connectionStatus().disconnects['clean'] ?? 0;
  const disconnected = nextLog((e) => e['event'] === 'disconnect' && e['service'] === 'by-uid');
  await client.close();
  t.match(await disconnected, { client: 'app-a', code: null, uid, gid, peerPid: process.pid }, 'the disconnect is logged with the peer\'s credentials');
  t.ok((daemon.connectionStatus().disconnects['clean'] ?? 0) > before, 'and counted');
});

t.test('the daemon id is its CA fingerprint, the same after a restart, and a client may pin it', async (t) => {
  const stateDir = join(work, 'state-pin');
  const first = await Daemon.start({ config, settings: { socketPath: join(work, 'pin.sock'), stateDir }, log: () => {} });
  const id = first.id;
  await first.close();
  const again = await Daemon.start({ config, settings: { socketPath: join(work, 'pin.sock'), stateDir }, log: () => {} });
  t.teardown(() => again.close());
  t.equal(again.id, id, 'same CA, same id across restarts');
  t.equal(id, again.ca.fingerprint);
  const identity = again.ca.issue('app-a');
  const pinned = new RemoteBroker(again.socketPath, identity, { protocolsDir: join(FIXTURES, 'protocols'), daemonId: id });
  t.teardown(() => pinned.close());
  t.equal((await pinned.connect('echo', { protocol: 'com.test.echo' }).call('echo', { text: 'pinned' })).text, 'pinned', 'the right id connects');
  const wrong = new RemoteBroker(again.socketPath, identity, { protocolsDir: join(FIXTURES, 'protocols'), daemonId: daemon.id });
  t.teardown(() => wrong.close());
  const err = await rejection(wrong.connect('echo', { protocol: 'com.test.echo' }).call('echo', { text: 'x' }));
  t.equal(err.code, 'ERR_AUTH_FAILED', 'another daemon\'s id is refused by the client');
  t.equal(err.data['reason'], 'daemon-mismatch');
  t.throws(() => new RemoteBroker(again.socketPath, identity, { daemonId: 'abc' }), { code: 'ERR_INVALID_OPTION' });
});
