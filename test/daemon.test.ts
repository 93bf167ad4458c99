// Daemon mode end to end: a real daemon on a Unix socket, real certificates,
// real helpers. Every refusal has its own code and routes nothing.
import t from 'tap';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { isBulkheadError, type BulkheadError } from 'bulkhead';
import { Daemon } from '../lib/daemon/daemon.js';
import { RemoteBroker } from '../lib/daemon/remote-broker.js';
import { HandshakeReader, writeHandshake } from '../lib/daemon/handshake-io.js';
import { encodeItem } from '../lib/wire/codec.js';
import { encodeEnvelope } from '../lib/wire/envelope.js';
import { encodeFrame } from '../lib/wire/frame-decoder.js';
import { FramedChannel } from '../lib/wire/framed-channel.js';
import { proofPayload, readIdentity, signProof, signServiceDir } from '../lib/identity/index.js';
import { FIXTURES, REPO_ROOT, rejection, gone } from './helpers.js';
import { seedStateDir, sharedIdentity } from './shared-ca.js';


const work = mkdtempSync(join(tmpdir(), 'bulkhead-daemon-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const signedDir = join(work, 'signed');
cpSync(join(FIXTURES, 'echo-service.js'), join(signedDir, 'echo-service.js'), { recursive: true });
// The signed copy must still resolve 'bulkhead/service': point it at the repo's build.
writeFileSync(join(signedDir, 'echo-service.js'), `import '${join(REPO_ROOT, 'test/fixtures/echo-service.js')}';\n`);

function writeConfig(path: string, services: unknown[]): string {
  writeFileSync(path, JSON.stringify({ root: FIXTURES, services }, null, 2));
  return path;
}

const config = writeConfig(join(work, 'bulkhead.json'), [
  { name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo', clients: ['app-a', 'app-c'], launch: { throttleMs: 0 } },
  { name: 'private', entry: './echo-service.js', protocol: 'com.test.echo', clients: ['app-c'] },
  { name: 'signed', entry: join(signedDir, 'echo-service.js'), protocol: 'com.test.echo', clients: ['*'], requirement: { signedBy: 'dev' } },
]);
const daemon = await Daemon.start({ config, settings: { socketPath: join(work, 'run', 'a.sock'), stateDir: join(work, 'state-a') }, log: () => {} });
t.teardown(() => daemon.close());
const ca = daemon.ca;
const appA = ca.issue('app-a');
const appB = ca.issue('app-b');
const dev = ca.issue('dev');
signServiceDir(signedDir, dev);
const remote = (identity: { name: string; certPem: string; keyPem: string }) => new RemoteBroker(daemon.socketPath, identity, { protocolsDir: join(FIXTURES, 'protocols') });

t.test('the socket is owner-only', async (t) => {
  t.equal(statSync(daemon.socketPath).mode & 0o777, 0o600);
  t.equal(statSync(join(work, 'state-a', 'ca', 'ca.key.pem')).mode & 0o777, 0o600, 'CA key stored 0600');
});

t.test('an authorised client calls through the daemon; the handler sees its verified identity', async (t) => {
  const client = remote(appA);
  t.teardown(() => client.close());
  const echo = client.connect('echo', { protocol: 'com.test.echo' });
  t.same((await echo.call('echo', { text: 'via daemon' })).text, 'via daemon');
  // This test is the client: the kernel reports its own uid, gid and pid.
  t.same((await echo.call('whoami', {})).peer, { name: 'app-a', uid: process.getuid!(), gid: process.getgid!(), pid: process.pid }, 'ctx.peer: the name from the certificate, uid/gid/pid from the kernel, nothing from the caller');
  t.equal((await rejection(echo.call('echo', { text: 1 }))).code, 'ERR_INVALID_PARAMS', 'helper errors keep their code');
  t.equal((await rejection(echo.call('sleep', { ms: 60_000 }, { timeoutMs: 30 }))).code, 'ERR_DEADLINE');
  const ticks: number[] = [];
  echo.onEvent('tick', (p: { i: number }) => ticks.push(p.i));
  await echo.call('count', { n: 3 });
  t.same(ticks, [0, 1, 2], 'events are routed to the caller');
  const big = await echo.call('bytes', { size: 1 << 20 });
  t.equal(big.data.length, 1 << 20);
});

t.test('a socket path relative to the working directory works too', async (t) => {
  const client = new RemoteBroker(relative(process.cwd(), daemon.socketPath), appA, { protocolsDir: join(FIXTURES, 'protocols') });
  t.teardown(() => client.close());
  t.equal(client.socketPath, daemon.socketPath, 'resolved to the absolute path the daemon signs');
  t.same((await client.connect('echo', { protocol: 'com.test.echo' }).call('echo', { text: 'relative' })).text, 'relative');
});

t.test('refusals: each has its own code and nothing is routed', async (t) => {
  const launchesBefore = daemon.broker.status('private').launches;
  const expired = ca.issue('old', { notBefore: new Date(Date.now() - 10 * 86400_000), notAfter: new Date(Date.now() - 86400_000) });
  const revoked = ca.issue('gone');
  ca.revoke(revoked.serial);
  // Another CA's app-a: the run's shared test CA (test/shared-ca.ts), not daemon A's (made at its first start above).
  const foreign = await sharedIdentity('app-a');
  const cases: Array<[string, { name: string; certPem: string; keyPem: string }, string]> = [
    ['no certificate', { name: 'app-a', certPem: '', keyPem: appA.keyPem }, 'ERR_AUTH_REQUIRED'],
    ['expired certificate', expired, 'ERR_CERT_EXPIRED'],
    ['certificate from another CA', foreign, 'ERR_CERT_UNTRUSTED'],
    ['revoked certificate', revoked, 'ERR_CERT_REVOKED'],
    ['someone else\'s certificate with our key', { name: 'app-a', certPem: appA.certPem, keyPem: appB.keyPem }, 'ERR_AUTH_FAILED'],
    ['valid identity not in clients', appB, 'ERR_NOT_PERMITTED'],
    ['valid identity, service that lists others', appA, 'ERR_NOT_PERMITTED'],
  ];
  for (const [what, identity, code] of cases) {
    const client = remote(identity);
    const service = what.includes('lists others') ? 'private' : 'echo';
    const err = await rejection(client.connect(service, { protocol: 'com.test.echo' }).call('echo', { text: 'x' }));
    t.equal(err.code, code, what);
    await client.close();
  }
  t.equal(daemon.broker.status('private').launches, launchesBefore, 'no helper was launched for refused clients');
});

t.test('bytes pipelined behind the handshake, a partial frame included, reach the channel intact', async (t) => {
  const server = createServer();
  const path = join(work, 'pipelined.sock');
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.teardown(() => server.close());
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = createConnection(path);
  t.teardown(() => client.destroy());
  const peer = await accepted;
  // One write: the handshake message, two whole frames, and the first half of a third.
  const frames = [encodeEnvelope({ kind: 'goodbye', reason: 'one' }), encodeEnvelope({ kind: 'goodbye', reason: 'two' }), encodeEnvelope({ kind: 'goodbye', reason: 'three' })];
  const third = frames[2]!;
  peer.write(Buffer.concat([encodeFrame(encodeItem({ t: 'ok' })), frames[0]!, frames[1]!, third.subarray(0, 5)]));
  const reader = new HandshakeReader(client);
  t.same(await reader.next(5000), { t: 'ok' });
  // Let the rest of that write arrive while the reader still owns the socket.
  await new Promise((resolve) => setImmediate(resolve));
  reader.release();
  const reasons: string[] = [];
  const all = new Promise<void>((resolve) => {
    new FramedChannel(client).attach({
      envelope: (e) => {
        if (e.kind === 'goodbye') reasons.push(e.reason);
        if (reasons.length === 3) resolve();
      },
      closed: () => resolve(),
    });
  });
  peer.write(third.subarray(5));
  await all;
  t.same(reasons, ['one', 'two', 'three']);
});

t.test('a replayed handshake is refused', async (t) => {
  // Connection 1: capture a valid proof for its nonce.
  const first = createConnection(daemon.socketPath);
  const r1 = new HandshakeReader(first);
  const c1 = await r1.next(5000);
  const proof = signProof(appA.keyPem, proofPayload(c1['nonce'] as Uint8Array, { socketPath: daemon.socketPath, daemonId: c1['daemon'] as string, clientName: 'app-a' }));
  first.destroy();
  // Connection 2: replay it against a fresh nonce.
  const second = createConnection(daemon.socketPath);
  const r2 = new HandshakeReader(second);
  await r2.next(5000);
  writeHandshake(second, { t: 'auth', service: 'echo', name: 'app-a', cert: appA.certPem, sig: proof });
  const answer = await r2.next(5000);
  t.equal(answer['t'], 'error');
  t.equal((answer['error'] as { code: string }).code, 'ERR_AUTH_FAILED');
  second.destroy();
});

t.test('a tampered helper file is not launched (ERR_CODE_SIGNATURE) and the service is invalidated', async (t) => {
  const client = remote(appA);
  t.teardown(() => client.close());
  const signed = client.connect('signed', { protocol: 'com.test.echo' });
  t.equal((await signed.call('echo', { text: 'signed ok' })).text, 'signed ok', 'untouched signed code runs');
  await daemon.broker.stop('signed');
  appendFileSync(join(signedDir, 'echo-service.js'), '// tampered\n');
  const err = await rejection(client.connect('signed', { protocol: 'com.test.echo' }).call('echo', { text: 'x' }));
  t.equal(err.code, 'ERR_CODE_SIGNATURE');
  t.equal(daemon.broker.status('signed').state, 'failed');
  t.equal(daemon.broker.status('signed').launches, 1, 'the tampered code never ran');
});

t.test('a helper crash reaches a daemon client as ERR_INTERRUPTED; the next call relaunches', async (t) => {
  const client = remote(appA);
  t.teardown(() => client.close());
  const echo = client.connect('echo', { protocol: 'com.test.echo' });
  const before = await echo.call('echo', { text: 'x' });
  const interrupted = new Promise<BulkheadError>((resolve) => echo.on('interrupted', resolve));
  const pending = echo.call('sleep', { ms: 60_000 });
  await echo.call('whoami', {});
  daemon.broker.kill('echo');
  t.equal((await rejection(pending)).code, 'ERR_INTERRUPTED');
  t.equal((await interrupted).code, 'ERR_INTERRUPTED');
  const after = await echo.call('echo', { text: 'y' });
  t.not(after.pid, before.pid);
});

t.test('the control protocol lists, stops and kickstarts; only controlClients may use it', async (t) => {
  const adminIdentity = { name: 'admin', ...readAdmin() };
  const client = remote(adminIdentity);
  t.teardown(() => client.close());
  const control = client.control();
  const list = await control.call('list', {});
  t.same(list.services.map((s: { name: string }) => s.name).sort(), ['echo', 'private', 'signed']);
  t.equal(list.daemon.socketPath, daemon.socketPath);
  const { pid } = await control.call('kickstart', { name: 'private' });
  t.equal(daemon.broker.status('private').pid, pid);
  t.same(await control.call('stop', { name: 'private' }), { stopped: true });
  t.equal(daemon.broker.status('private').state, 'idle');
  const outsider = remote(appA);
  t.teardown(() => outsider.close());
  t.equal((await rejection(outsider.control().call('list', {}))).code, 'ERR_NOT_PERMITTED');
});

t.test('two daemons: a client of one cannot reach the other', async (t) => {
  const configB = writeConfig(join(work, 'b.json'), [{ name: 'only-b', entry: './echo-service.js', protocol: 'com.test.echo', clients: ['*'] }]);
  // B loads a copy of the run's shared test CA (no new keys): another CA than A's, made at A's first start.
  await seedStateDir(join(work, 'state-b'));
  const other = await Daemon.start({ config: configB, settings: { socketPath: join(work, 'run', 'b.sock'), stateDir: join(work, 'state-b') }, log: () => {} });
  t.teardown(() => other.close());
  t.not(other.socketPath, daemon.socketPath);
  const crossed = new RemoteBroker(other.socketPath, appA, { protocolsDir: join(FIXTURES, 'protocols') });
  t.teardown(() => crossed.close());
  t.equal((await rejection(crossed.connect('only-b', { protocol: 'com.test.echo' }).call('echo', { text: 'x' }))).code, 'ERR_CERT_UNTRUSTED', 'A\'s identity means nothing to B');
  const local = remote(appA);
  t.teardown(() => local.close());
  t.equal((await rejection(local.connect('only-b', { protocol: 'com.test.echo' }).call('echo', { text: 'x' }))).code, 'ERR_UNKNOWN_SERVICE', 'A does not have B\'s services');
  t.equal(other.broker.status('only-b').launches, 0);
});

t.test('SIGKILL of the daemon: helpers exit, clients see invalidated, a restart cleans the stale socket', async (t) => {
  const sock = join(work, 'run', 'k.sock');
  const state = join(work, 'state-k');
  // A copy of the run's shared test CA: the daemon process loads it instead of making keys (not its first start here).
  await seedStateDir(state);
  const host = spawn(process.execPath, [join(FIXTURES, 'daemon-host.js'), config, sock, state], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => host.kill('SIGKILL'));
  const line = await new Promise<string>((resolve) => createInterface({ input: host.stdout! }).once('line', resolve));
  t.equal(JSON.parse(line).socketPath, sock);
  const client = new RemoteBroker(sock, await sharedIdentity('app-a'), { protocolsDir: join(FIXTURES, 'protocols') });
  t.teardown(() => client.close());
  const echo = client.connect('echo', { protocol: 'com.test.echo' });
  const { pid: helperPid } = await echo.call('echo', { text: 'x' });
  const invalidated = new Promise<BulkheadError>((resolve) => echo.on('invalidated', resolve));
  const pending = echo.call('sleep', { ms: 60_000 });
  host.kill('SIGKILL');
  t.equal((await rejection(pending)).code, 'ERR_INTERRUPTED');
  t.equal((await invalidated).code, 'ERR_INVALIDATED');
  t.equal(await gone(helperPid, 30_000), true, 'the helper exited with its daemon');
  const again = spawn(process.execPath, [join(FIXTURES, 'daemon-host.js'), config, sock, state], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => again.kill('SIGKILL'));
  const line2 = await new Promise<string>((resolve) => createInterface({ input: again.stdout! }).once('line', resolve));
  t.equal(JSON.parse(line2).socketPath, sock, 'a restarted daemon took over the stale socket');
});

function readAdmin(): { certPem: string; keyPem: string } {
  return readIdentity(join(work, 'state-a', 'identities'), 'admin');
}

t.test('a config with a typo is refused before any key material exists', async (t) => {
  const stateDir = join(work, 'state-typo');
  const bad = writeConfig(join(work, 'typo.json'), [{ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo', sandbox: 'pure-compte' }]);
  const err = await rejection(Daemon.start({ config: bad, settings: { socketPath: join(work, 'run', 'typo.sock'), stateDir }, log: () => {} }));
  t.equal(err.code, 'ERR_INVALID_MANIFEST');
  t.match(err.message, /Did you mean "pure-compute"\?/);
  t.notOk(existsSync(join(stateDir, 'ca')), 'no CA was created');
  t.notOk(existsSync(stateDir), 'the state dir was not even made');
  // Positive control: the same state dir with a good config gets its CA.
  const good = writeConfig(join(work, 'good.json'), [{ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' }]);
  const started = await Daemon.start({ config: good, settings: { socketPath: join(work, 'run', 'typo.sock'), stateDir }, log: () => {} });
  t.teardown(() => started.close());
  t.ok(existsSync(join(stateDir, 'ca')), 'a good config creates the CA');
});
