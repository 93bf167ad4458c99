// Endpoints in daemon mode: a service mints an endpoint for the daemon client
// calling it (bound to its verified identity and uid); that client opens it even
// though the service's `clients` do not list it; another identity cannot; it
// dies with the service, closing the connection opened from it. Both paths:
// routed, and handed off (direct).
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BulkheadError, Endpoint } from 'bulkhead';
import { Daemon } from '../lib/daemon/daemon.js';
import { RemoteBroker } from '../lib/daemon/remote-broker.js';
import type { IssuedIdentity } from '../lib/identity/index.js';
import { FIXTURES, rejection } from './helpers.js';
import { seedStateDir, sharedIdentity } from './shared-ca.js';
import { createConnection } from 'node:net';
import { HandshakeReader } from '../lib/daemon/handshake-io.js';
import { proofPayload, signProof } from '../lib/identity/index.js';
import { encodeItem } from '../lib/wire/codec.js';
import { encodeFrame } from '../lib/wire/frame-decoder.js';

const work = mkdtempSync(join(tmpdir(), 'bulkhead-endpoints-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const configPath = join(work, 'bulkhead.json');
const config = (withEcho: boolean) => ({
  root: FIXTURES,
  services: [
    // Nobody may connect to echo on their own: an endpoint is the only way in.
    ...(withEcho ? [{ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo', clients: [], launch: { throttleMs: 0, exitTimeoutMs: 500 } }] : []),
    { name: 'issuer', entry: './issuer-service.js', protocol: 'com.test.issuer', clients: ['app-a', 'app-b'], connects: ['echo'] },
  ],
});
writeFileSync(configPath, JSON.stringify(config(true)));
await seedStateDir(join(work, 'state')); // the run's test CA (test/shared-ca.ts): no new keys for this daemon
const daemon = await Daemon.start({ config: configPath, settings: { socketPath: join(work, 'd.sock'), stateDir: join(work, 'state') }, log: () => {} });
t.teardown(() => daemon.close());
const protocolsDir = join(FIXTURES, 'protocols');
const appA = await sharedIdentity('app-a');
const appB = await sharedIdentity('app-b');
const me = { uid: process.getuid!(), gid: process.getgid!(), pid: process.pid };

function client(t: { teardown(fn: () => unknown): void }, identity: IssuedIdentity, direct: boolean): RemoteBroker {
  const remote = new RemoteBroker(daemon.socketPath, identity, { protocolsDir, direct });
  t.teardown(() => remote.close());
  return remote;
}

/** Asks the issuer (as `remote`) for an endpoint to echo bound to the caller. */
async function issue(remote: RemoteBroker): Promise<Endpoint<'echo'>> {
  const r = await remote.connect('issuer', { protocol: 'com.test.issuer' }).call('issue', { service: 'echo' }) as { ok: boolean; code?: string; endpoint?: Endpoint<'echo'> };
  if (!r.ok || r.endpoint === undefined) throw new Error(`issue failed: ${r.code}`);
  return r.endpoint;
}

const paths = (service: string) => daemon.connectionStatus().clients.filter((c) => c.service === service && c.pid === process.pid).map((c) => c.path);

for (const direct of [false, true]) {
  const path = direct ? 'direct' : 'routed';

  t.test(`${path}: the client the endpoint was minted for opens it and calls through it; plain connect stays refused`, async (t) => {
    const a = client(t, appA, direct);
    const endpoint = await issue(a);
    const echo = a.connectEndpoint(endpoint, { protocol: 'com.test.echo' });
    t.same(await echo.call('whoami', {}), { pid: daemon.broker.status('echo').pid, peer: { name: 'app-a', ...me } }, 'the service sees the verified client');
    t.equal((await echo.call('echo', { text: 'via endpoint' }) as { text: string }).text, 'via endpoint');
    t.same(paths('echo'), [path], `the connection is ${path}`);
    const plain = a.connect('echo', { protocol: 'com.test.echo' });
    t.match(await rejection(plain.call('echo', { text: 'x' })), { code: 'ERR_NOT_PERMITTED', data: { reason: 'not-in-clients' } }, 'control: without the endpoint echo refuses app-a');
    await daemon.reload();
    t.equal((await echo.call('echo', { text: 'after reload' }) as { text: string }).text, 'after reload', 'a reload\'s re-check of clients does not withdraw a connection admitted on an endpoint');
  });

  t.test(`${path}: another identity cannot use it (ERR_ENDPOINT_NOT_YOURS); its receiver can, with the same token`, async (t) => {
    const a = client(t, appA, direct);
    const b = client(t, appB, direct);
    const endpoint = await issue(a);
    const stolen = b.connectEndpoint(endpoint, { protocol: 'com.test.echo' });
    const refused = await rejection(stolen.call('echo', { text: 'x' }));
    t.match(refused, { code: 'ERR_ENDPOINT_NOT_YOURS', data: { reason: 'not-the-receiver', name: 'app-b', service: 'echo' } });
    t.same(Object.keys(refused.data).sort(), ['name', 'opener', 'reason', 'service'], 'the data keys docs/wire.md 11.3 lists');
    const launches = daemon.broker.status('echo').launches;
    const mine = a.connectEndpoint(endpoint, { protocol: 'com.test.echo' });
    t.equal((await mine.call('echo', { text: 'mine' }) as { text: string }).text, 'mine', 'positive control: the bound receiver opens the very same token');
    t.ok(daemon.broker.status('echo').launches >= launches);
    const forB = await issue(b);
    t.match(await rejection(a.connectEndpoint(forB, { protocol: 'com.test.echo' }).call('echo', { text: 'x' })), { code: 'ERR_ENDPOINT_NOT_YOURS' }, 'and the other way round');
  });

  t.test(`${path}: a forged or altered endpoint is refused with ERR_ENDPOINT_INVALID`, async (t) => {
    const a = client(t, appA, direct);
    const endpoint = await issue(a);
    const forged = { service: 'echo', token: `${endpoint.token.slice(0, 42)}${endpoint.token.endsWith('A') ? 'B' : 'A'}` } as unknown as Endpoint;
    const refused = await rejection(a.connectEndpoint(forged, { protocol: 'com.test.echo' }).call('echo', { text: 'x' }));
    t.match(refused, { code: 'ERR_ENDPOINT_INVALID', data: { reason: 'unknown' } });
    t.same(Object.keys(refused.data).sort(), ['name', 'reason', 'service'], 'the data keys docs/wire.md 11.3 lists');
    const relabelled = { service: 'issuer', token: endpoint.token } as unknown as Endpoint;
    t.match(await rejection(a.connectEndpoint(relabelled, { protocol: 'com.test.issuer' }).call('issue', { service: 'echo' })), { code: 'ERR_ENDPOINT_INVALID', data: { reason: 'tampered' } });
    t.throws(() => a.connectEndpoint({ service: 'echo' } as unknown as Endpoint), { code: 'ERR_ENDPOINT_INVALID' }, 'a value without a token is refused at once');
  });

  t.test(`${path}: stopping the service closes the connection opened from the endpoint, which then no longer opens`, async (t) => {
    const a = client(t, appA, direct);
    const endpoint = await issue(a);
    const echo = a.connectEndpoint(endpoint, { protocol: 'com.test.echo' });
    await echo.call('echo', { text: 'before' });
    const invalidated = new Promise<BulkheadError>((resolve) => echo.once('invalidated', resolve));
    await daemon.broker.stop('echo');
    t.match(await invalidated, { code: 'ERR_ENDPOINT_DEAD' }, 'the live connection was closed at once');
    t.match(await rejection(echo.call('echo', { text: 'after' })), { code: 'ERR_ENDPOINT_DEAD' });
    const refused = await rejection(a.connectEndpoint(endpoint, { protocol: 'com.test.echo' }).call('echo', { text: 'again' }));
    t.match(refused, { code: 'ERR_ENDPOINT_DEAD', data: { reason: 'stopped' } }, 'opening it again fails: it died with the service');
    t.same(Object.keys(refused.data).sort(), ['issuer', 'name', 'reason', 'service'], 'the data keys docs/wire.md 11.3 lists');
    const fresh = await issue(a);
    t.equal((await a.connectEndpoint(fresh, { protocol: 'com.test.echo' }).call('echo', { text: 'fresh' }) as { text: string }).text, 'fresh', 'positive control: a new endpoint relaunches the service');
  });
}

t.test('a reload that removes the service kills its endpoints', async (t) => {
  const a = client(t, appA, true);
  const endpoint = await issue(a);
  const echo = a.connectEndpoint(endpoint, { protocol: 'com.test.echo' });
  await echo.call('echo', { text: 'x' });
  const invalidated = new Promise<BulkheadError>((resolve) => echo.once('invalidated', resolve));
  writeFileSync(configPath, JSON.stringify(config(false)));
  await daemon.reload();
  t.match(await invalidated, { code: 'ERR_ENDPOINT_DEAD' });
  writeFileSync(configPath, JSON.stringify(config(true)));
  await daemon.reload();
  t.match(await rejection(a.connectEndpoint(endpoint, { protocol: 'com.test.echo' }).call('echo', { text: 'x' })), { code: 'ERR_ENDPOINT_DEAD', data: { reason: 'removed' } });
});

t.test('a handshake whose service is not the endpoint\'s is refused (wire.md 11.3, wrong-service)', async (t) => {
  const a = client(t, appA, false);
  const endpoint = await issue(a);
  const socket = createConnection(daemon.socketPath);
  socket.on('error', () => {});
  t.teardown(() => socket.destroy());
  const reader = new HandshakeReader(socket);
  const challenge = await reader.next(10_000);
  const sig = signProof(appA.keyPem, proofPayload(challenge['nonce'] as Uint8Array, { socketPath: daemon.socketPath, daemonId: challenge['daemon'] as string, clientName: 'app-a' }));
  socket.write(encodeFrame(encodeItem({ t: 'auth', service: 'issuer', name: 'app-a', cert: appA.certPem, sig, endpoint: { service: endpoint.service, token: endpoint.token } })));
  const answer = await reader.next(10_000);
  t.match(answer, { t: 'error', error: { code: 'ERR_ENDPOINT_INVALID', data: { reason: 'wrong-service', name: 'app-a', service: 'issuer' } } });
});
