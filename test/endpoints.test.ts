// Endpoints a service passes on (XPC endpoints, Mojo pipes), embedded mode: a
// helper mints one for a service it connects to, bound to a receiver; only that
// receiver opens it, and it dies with the service it names.
import t from 'tap';
import { Broker, isBulkheadError, type Connection, type Endpoint } from 'bulkhead';
import { FIXTURES } from './helpers.js';

const broker = new Broker({ root: FIXTURES });
t.teardown(() => broker.close());
broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' });
broker.register({ name: 'other', entry: './echo-service.js', protocol: 'com.test.echo' });
broker.register({ name: 'issuer', entry: './issuer-service.js', protocol: 'com.test.issuer', connects: ['echo'] });
// Receivers among helpers: connects (to anything) gives them the outbound channel endpoints are opened on.
broker.register({ name: 'holder', entry: './holder-service.js', protocol: 'com.test.holder', connects: ['issuer'] });
broker.register({ name: 'stranger', entry: './holder-service.js', protocol: 'com.test.holder', connects: ['issuer'] });
const issuer = broker.connect('issuer');

async function issue(params: Record<string, unknown> = { service: 'echo' }): Promise<Endpoint<'echo'>> {
  const r = await issuer.call('issue', params) as { ok: boolean; code?: string; endpoint?: Endpoint<'echo'> };
  if (!r.ok || r.endpoint === undefined) throw new Error(`issue failed: ${r.code}`);
  return r.endpoint;
}

/** The code a synchronous open throws. */
function openCode(endpoint: unknown): string {
  try {
    broker.connectEndpoint(endpoint as Endpoint);
  } catch (err) {
    return isBulkheadError(err) ? `${err.code}:${String(err.data.reason)}` : String(err);
  }
  return 'opened';
}

t.test('a service returns an endpoint for a service it connects to; the app opens it and calls through it', async (t) => {
  const endpoint = await issue();
  t.same(Object.keys(endpoint).sort(), ['service', 'token']);
  t.equal(endpoint.service, 'echo');
  t.match(endpoint.token, /^[A-Za-z0-9_-]{43}$/);
  const echo = broker.connectEndpoint(endpoint);
  t.same(await echo.call('echo', { text: 'through the endpoint' }), { text: 'through the endpoint', pid: broker.status('echo').pid });
  const who = await echo.call('whoami', {}) as { peer: { name: string } };
  t.equal(who.peer.name, 'main-app', 'the service sees the app, as on any connection of the app');
  const again = broker.connectEndpoint(endpoint);
  t.equal((await again.call('echo', { text: 'twice' }) as { text: string }).text, 'twice', 'its receiver may open it more than once');
  await echo.close();
  await again.close();
});

t.test('a service sends an endpoint in an event; the app opens it', async (t) => {
  const granted = new Promise<Endpoint<'echo'>>((resolve) => issuer.onEvent('granted', (p) => resolve((p as { endpoint: Endpoint<'echo'> }).endpoint)));
  await issuer.call('announce', {});
  const echo = broker.connectEndpoint(await granted);
  t.equal((await echo.call('echo', { text: 'from an event' }) as { text: string }).text, 'from an event');
  await echo.close();
});

t.test('minting for a service outside connects is refused with ERR_NOT_PERMITTED', async (t) => {
  const launches = broker.status('other').launches;
  t.same(await issuer.call('issue', { service: 'other' }), { ok: false, code: 'ERR_NOT_PERMITTED' });
  t.same(await issuer.call('issue', { service: 'nobody' }), { ok: false, code: 'ERR_NOT_PERMITTED' });
  t.equal(broker.status('other').launches, launches, 'nothing was launched for it');
  t.same(await issuer.call('issue', { service: 'echo', receiver: { kind: 'bogus' } }), { ok: false, code: 'ERR_INVALID_PARAMS' }, 'a receiver that names nobody is refused');
});

t.test('an endpoint bound to another receiver is refused with ERR_ENDPOINT_NOT_YOURS', async (t) => {
  const forClient = await issue({ service: 'echo', receiver: { client: 'app-b', uid: 1000 } });
  t.equal(openCode(forClient), 'ERR_ENDPOINT_NOT_YOURS:not-the-receiver');
  const forService = await issue({ service: 'echo', receiver: { service: 'other' } });
  t.equal(openCode(forService), 'ERR_ENDPOINT_NOT_YOURS:not-the-receiver');
  const forMe = await issue();
  t.equal(openCode(forMe), 'opened', 'positive control: the same kind of endpoint bound to the app opens');
});

t.test('forged, altered and malformed endpoints are refused with ERR_ENDPOINT_INVALID', async (t) => {
  const real = await issue();
  const flipped = real.token.startsWith('A') ? `B${real.token.slice(1)}` : `A${real.token.slice(1)}`;
  t.equal(openCode({ service: 'echo', token: flipped }), 'ERR_ENDPOINT_INVALID:unknown', 'a token changed by one character');
  t.equal(openCode({ service: 'echo', token: 'x'.repeat(43) }), 'ERR_ENDPOINT_INVALID:unknown', 'a made-up token');
  t.equal(openCode({ service: 'other', token: real.token }), 'ERR_ENDPOINT_INVALID:tampered', 'a real token relabelled for another service');
  t.equal(openCode({ service: 'echo', token: real.token, extra: 1 }), 'ERR_ENDPOINT_INVALID:malformed');
  t.equal(openCode({ service: 'echo' }), 'ERR_ENDPOINT_INVALID:malformed');
  t.equal(openCode('echo'), 'ERR_ENDPOINT_INVALID:malformed');
  t.equal(openCode(real), 'opened', 'positive control: the real one opens');
});

t.test('the receiver validates the endpoint field: a bogus value fails the result schema', async (t) => {
  await t.rejects(issuer.call('issueBogus', {}), { code: 'ERR_INVALID_RESULT' });
});

/** Resolves once the service has a call in flight. */
async function inFlight(service: string): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (broker.status(service).inFlight === 0) {
    if (performance.now() > deadline) throw new Error(`${service} never got the call`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

t.test('stopping the service kills its endpoints and closes the connections opened from them', async (t) => {
  const endpoint = await issue();
  const echo: Connection = broker.connectEndpoint(endpoint);
  t.equal((await echo.call('echo', { text: 'before' }) as { text: string }).text, 'before');
  const plain = broker.connect('echo');
  const invalidated = new Promise((resolve) => echo.once('invalidated', resolve));
  const pending = echo.call('sleep', { ms: 60_000 });
  await inFlight('echo');
  await broker.stop('echo');
  t.match(await invalidated, { code: 'ERR_ENDPOINT_DEAD', data: { reason: 'stopped', service: 'echo', issuer: 'issuer' } }, 'the open connection was invalidated');
  await t.rejects(pending, { code: 'ERR_ENDPOINT_DEAD' }, 'its call in flight failed with the reason');
  await t.rejects(echo.call('echo', { text: 'after' }), { code: 'ERR_ENDPOINT_DEAD' }, 'and it takes no new calls');
  t.equal(openCode(endpoint), 'ERR_ENDPOINT_DEAD:stopped', 'the endpoint no longer opens');
  t.equal((await plain.call('echo', { text: 'plain' }) as { text: string }).text, 'plain', 'positive control: an ordinary connection relaunches the service');
  const fresh = await issue();
  t.equal((await broker.connectEndpoint(fresh).call('echo', { text: 'new' }) as { text: string }).text, 'new', 'a new endpoint works again');
});

t.test('a crash and its relaunch keep the endpoint (it names the service, not one process)', async (t) => {
  const endpoint = await issue();
  const echo = broker.connectEndpoint(endpoint);
  const pid = (await echo.call('echo', { text: 'a' }) as { pid: number }).pid;
  const interrupted = new Promise((resolve) => echo.once('interrupted', resolve));
  broker.kill('echo');
  await interrupted;
  const after = await echo.call('echo', { text: 'b' }) as { pid: number };
  t.not(after.pid, pid, 'the next call went to the relaunched helper');
  t.equal(openCode(endpoint), 'opened');
});

t.test('removing the service (unregister, as a reload does) kills its endpoints', async (t) => {
  const endpoint = await issue();
  const echo = broker.connectEndpoint(endpoint);
  await echo.call('echo', { text: 'x' });
  const invalidated = new Promise((resolve) => echo.once('invalidated', resolve));
  await broker.unregister('echo');
  t.match(await invalidated, { code: 'ERR_ENDPOINT_DEAD', data: { reason: 'removed' } });
  broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' });
  t.equal(openCode(endpoint), 'ERR_ENDPOINT_DEAD:removed', 'a new registration under the same name is another incarnation');
});

t.test('an endpoint expires unopened', async (t) => {
  const endpoint = await issue({ service: 'echo', ttlMs: 1 });
  const minted = Date.now();
  while (Date.now() <= minted + 1) await new Promise((resolve) => setImmediate(resolve));
  t.equal(openCode(endpoint), 'ERR_ENDPOINT_INVALID:expired');
  t.same(await issuer.call('issue', { service: 'echo', ttlMs: 0 }), { ok: false, code: 'ERR_INVALID_OPTION' }, 'a ttl outside 1 ms .. 1 h is refused');
});

t.test('a helper opens an endpoint minted for it (passed in params); another helper cannot', async (t) => {
  const endpoint = await issue({ service: 'echo', receiver: { service: 'holder' } });
  const holder = broker.connect('holder');
  const stranger = broker.connect('stranger');
  t.same(await stranger.call('use', { endpoint, method: 'echo', params: { text: 'x' } }), { ok: false, code: 'ERR_ENDPOINT_NOT_YOURS' }, 'another helper is refused');
  t.equal(openCode(endpoint), 'ERR_ENDPOINT_NOT_YOURS:not-the-receiver', 'and so is the app');
  const r = await holder.call('use', { endpoint, method: 'whoami' }) as { ok: boolean; result: { peer: { name: string; pid: number } } };
  t.equal(r.ok, true, 'positive control: the receiver opens the very same token');
  t.same(r.result.peer, { name: 'holder', pid: broker.status('holder').pid }, 'echo sees the helper that opened it');
  t.same(await stranger.call('use', { endpoint: { service: 'echo', token: 'x'.repeat(43) }, method: 'echo', params: { text: 'x' } }), { ok: false, code: 'ERR_ENDPOINT_INVALID' }, 'a forged token');
  t.same(await holder.call('use', { endpoint, method: 'echo', params: { text: 5 } }), { ok: false, code: 'ERR_INVALID_PARAMS' }, 'echo validates the helper\'s params');

  const pending = holder.call('use', { endpoint, method: 'sleep', params: { ms: 60_000 } });
  await inFlight('echo');
  await broker.stop('echo');
  t.same(await pending, { ok: false, code: 'ERR_ENDPOINT_DEAD' }, 'the call in flight on the open connection failed when echo was stopped');
  t.same(await holder.call('use', { endpoint, method: 'echo', params: { text: 'again' } }), { ok: false, code: 'ERR_ENDPOINT_DEAD' }, 'the open connection takes no new calls');
  const fresh = await issue({ service: 'echo', receiver: { service: 'holder' } });
  t.same(await holder.call('use', { endpoint: fresh, method: 'echo', params: { text: 'new' } }), { ok: true, result: { text: 'new', pid: broker.status('echo').pid } }, 'a new endpoint works again');
});

t.test('a service returns an endpoint to a helper calling it, bound by ctx.peer to that helper', async (t) => {
  const r = await broker.connect('holder').call('fetchAndUse', { text: 'helper to helper' });
  t.same(r, { ok: true, result: { text: 'helper to helper', pid: broker.status('echo').pid } });
});

t.test('the crash-loop breaker tripping kills the endpoints of the service', async (t) => {
  const other = new Broker({ root: FIXTURES });
  t.teardown(() => other.close());
  other.register({ name: 'echo', entry: './crash-at-start.js', protocol: 'com.test.echo', launch: { throttleMs: 5, maxRestarts: 2, restartWindowMs: 60_000 } });
  other.register({ name: 'issuer', entry: './issuer-service.js', protocol: 'com.test.issuer', connects: ['echo'] });
  const r = await other.connect('issuer').call('issue', { service: 'echo' }) as { endpoint: Endpoint<'echo'> };
  t.equal(other.status('echo').launches, 0, 'minting launched nothing');
  const doomed = other.connectEndpoint(r.endpoint);
  const invalidated = new Promise<{ code: string }>((resolve) => doomed.once('invalidated', resolve));
  const codes: string[] = [];
  for (let i = 0; i < 2; i++) codes.push(await doomed.call('echo', { text: 'x' }).then(() => 'ok', (err: { code: string }) => err.code));
  t.same(codes, ['ERR_LAUNCH_FAILED', 'ERR_LAUNCH_FAILED']);
  t.equal(other.status('echo').state, 'failed');
  t.match(await invalidated, { code: /^ERR_(ENDPOINT_DEAD|INVALIDATED)$/ }, 'the connection opened from it was invalidated');
  try {
    other.connectEndpoint(r.endpoint);
    t.fail('opened');
  } catch (err) {
    t.match(err, { code: 'ERR_ENDPOINT_DEAD', data: { reason: 'failed' } }, 'the endpoint died with the failed service');
  }
  other.reset('echo');
  t.throws(() => other.connectEndpoint(r.endpoint), { code: 'ERR_ENDPOINT_DEAD' }, 'and stays dead after a reset');
});
