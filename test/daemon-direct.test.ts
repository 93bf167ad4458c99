// Direct channels in daemon mode (docs/wire.md, "Hand-off"): a real daemon hands
// each client a socket of its own to the helper, then steps aside but keeps
// authority. Calls, the verified peer, helper death, stop, revocation, a reload
// that drops the client, a forged peer claim, and the routed fallback.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BulkheadError } from 'bulkhead';
import { Daemon } from '../lib/daemon/daemon.js';
import { RemoteBroker } from '../lib/daemon/remote-broker.js';
import { HandshakeReader, writeHandshake } from '../lib/daemon/handshake-io.js';
import { holdReads, receiveHandoffAnswer, resumeReads } from '../lib/daemon/handoff-receive.js';
import { proofPayload, signProof, type IssuedIdentity } from '../lib/identity/index.js';
import { FramedChannel } from '../lib/wire/framed-channel.js';
import type { Envelope } from '../lib/wire/envelope.js';
import { FIXTURES, rejection } from './helpers.js';
import { seedStateDir, sharedIdentity } from './shared-ca.js';

const work = mkdtempSync(join(tmpdir(), 'bulkhead-direct-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const configPath = join(work, 'bulkhead.json');
const services = (echoClients: string[]) => [
  { name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo', clients: echoClients, launch: { throttleMs: 0, exitTimeoutMs: 500 } },
  { name: 'boxed', entry: './echo-service.js', protocol: 'com.test.echo', clients: ['*'], sandbox: 'pure-compute', launch: { throttleMs: 0 } },
  // network "full": a network namespace of its own, attached to pasta while bubblewrap's child waits at its gate.
  { name: 'netboxed', entry: './echo-service.js', protocol: 'com.test.echo', clients: ['*'], sandbox: 'network-client', launch: { throttleMs: 0 } },
];
writeFileSync(configPath, JSON.stringify({ root: FIXTURES, services: services(['app-a', 'app-b', 'app-c']) }));
await seedStateDir(join(work, 'state')); // the run's test CA (test/shared-ca.ts): no new keys for this daemon
const daemon = await Daemon.start({ config: configPath, settings: { socketPath: join(work, 'd.sock'), stateDir: join(work, 'state') }, log: () => {} });
t.teardown(() => daemon.close());
const protocolsDir = join(FIXTURES, 'protocols');
/**
 * One certificate per name, issued once per run by the run's test CA, for this file's tests, which only need to be
 * that client: each issue() makes an RSA key pair (0.2–0.9 s on Node 20). The test that revokes a certificate
 * issues its own from the daemon's CA (app-b), which no other test uses.
 */
const issued = { 'app-a': await sharedIdentity('app-a'), 'app-c': await sharedIdentity('app-c'), 'app-d': await sharedIdentity('app-d') };
function once(name: 'app-a' | 'app-c' | 'app-d'): IssuedIdentity {
  return issued[name];
}
const remote = (identity: IssuedIdentity, direct?: boolean) => new RemoteBroker(daemon.socketPath, identity, { protocolsDir, direct: direct ?? true });
const me = { uid: process.getuid!(), gid: process.getgid!(), pid: process.pid };

/** The daemon's record of this process's connections to `service`. */
const paths = (service: string) => daemon.connectionStatus().clients.filter((c) => c.service === service && c.pid === process.pid).map((c) => c.path);

/** Waits (bounded) until `check` holds; the helper reports its counts every 50 ms, so there is no event to await. */
async function eventually(check: () => boolean, what: string, withinMs = 30_000): Promise<void> {
  const deadline = performance.now() + withinMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`not within ${withinMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

t.test('calls go over a handed-off channel; ctx.peer is what the daemon verified; ps still counts them', async (t) => {
  const client = remote(once('app-a'));
  t.teardown(() => client.close());
  const echo = client.connect('echo', { protocol: 'com.test.echo' });
  t.equal((await echo.call('echo', { text: 'direct' })).text, 'direct');
  t.same(paths('echo'), ['direct'], 'status says the connection is direct');
  t.same((await echo.call('whoami', {})).peer, { name: 'app-a', ...me }, 'name from the certificate, uid/gid/pid from the kernel');
  t.equal((await rejection(echo.call('echo', { text: 1 }))).code, 'ERR_INVALID_PARAMS', 'the helper validates params on the direct channel');
  t.equal((await rejection(echo.call('sleep', { ms: 60_000 }, { timeoutMs: 30 }))).code, 'ERR_DEADLINE');
  const ticks: number[] = [];
  echo.onEvent('tick', (p: { i: number }) => ticks.push(p.i));
  await echo.call('count', { n: 3 });
  t.same(ticks, [0, 1, 2], 'events of a call arrive on the direct channel');
  t.equal((await echo.call('bytes', { size: 1 << 20 })).data.length, 1 << 20);
  const before = daemon.broker.status('echo').callsServed;
  await Promise.all(Array.from({ length: 20 }, (_, i) => echo.call('echo', { text: String(i) })));
  await eventually(() => daemon.broker.status('echo').callsServed >= before + 20, 'callsServed counts direct calls');
  t.ok(daemon.broker.status('echo').callsServed >= before + 20, 'callsServed includes the 20 direct calls');
  const slow = echo.call('sleep', { ms: 400 });
  await eventually(() => daemon.broker.status('echo').inFlight === 1, 'inFlight shows the direct call');
  t.equal(daemon.broker.status('echo').inFlight, 1, 'inFlight shows a direct call in flight');
  await slow;
});

t.test('direct: false, or a client without fd passing, is routed as before', async (t) => {
  const client = remote(once('app-a'), false);
  t.teardown(() => client.close());
  const echo = client.connect('echo', { protocol: 'com.test.echo' });
  t.same((await echo.call('whoami', {})).peer, { name: 'app-a', ...me });
  t.same(paths('echo'), ['routed']);
});

t.test('kill -9 of the helper under load: every call settles, the next call re-brokers to the new helper', async (t) => {
  const client = remote(once('app-a'));
  t.teardown(() => client.close());
  const echo = client.connect('echo', { protocol: 'com.test.echo' });
  const { pid } = await echo.call('echo', { text: 'warm' });
  const interrupted = new Promise<BulkheadError>((resolve) => echo.once('interrupted', resolve));
  const calls = Array.from({ length: 200 }, (_, i) => (i % 4 === 0 ? echo.call('sleep', { ms: 5000 }) : echo.call('echo', { text: String(i) })));
  await echo.call('echo', { text: 'all sent' });
  process.kill(pid, 'SIGKILL');
  const settled = await Promise.allSettled(calls);
  const codes = new Set(settled.map((s) => (s.status === 'fulfilled' ? 'ok' : (s.reason as BulkheadError).code)));
  t.same([...codes].filter((c) => c !== 'ok'), ['ERR_INTERRUPTED'], 'calls lost with the helper fail with ERR_INTERRUPTED, nothing else');
  t.equal(settled.filter((s) => s.status === 'rejected').length >= 50, true, 'the sleeping calls were among them');
  t.equal((await interrupted).code, 'ERR_INTERRUPTED', 'the connection heard the interruption');
  const again = await echo.call('echo', { text: 'after' });
  t.not(again.pid, pid, 'the next call reached a relaunched helper');
  t.same(paths('echo'), ['direct'], 'over a new direct channel');
});

t.test('a zero-downtime restart moves direct clients to the new helper without failing a call', async (t) => {
  const client = remote(once('app-a'));
  t.teardown(() => client.close());
  const echo = client.connect('echo', { protocol: 'com.test.echo' });
  const { pid } = await echo.call('echo', { text: 'before' });
  let running = true;
  const pids = new Set<number>();
  const worker = async (): Promise<number> => {
    let n = 0;
    while (running) {
      pids.add((await echo.call('echo', { text: String(n) })).pid);
      n++;
    }
    return n;
  };
  const workers = [worker(), worker(), worker()];
  await daemon.broker.restart('echo');
  const fresh = daemon.broker.status('echo').pid;
  t.not(fresh, pid, 'a new helper runs');
  // The old helper's goodbye reaches the client a moment later: from then on, calls go to the new one.
  await eventually(() => pids.has(fresh!), 'calls reach the new helper');
  running = false;
  const counts = await Promise.all(workers); // rejects if any call failed
  t.ok(counts.every((n) => n > 0), `every worker made calls (${counts.join(', ')}), none failed`);
  t.ok(pids.has(pid) && pids.has(fresh!), 'calls reached the old helper, then the new one');
  t.equal((await echo.call('echo', { text: 'after' })).pid, fresh);
  t.same(paths('echo'), ['direct'], 'the old channel closed once its calls were answered; one direct channel is left');
});

t.test('bulkhead stop closes a live direct channel at once; the next call relaunches', async (t) => {
  const client = remote(once('app-a'));
  t.teardown(() => client.close());
  const echo = client.connect('echo', { protocol: 'com.test.echo' });
  const { pid } = await echo.call('echo', { text: 'x' });
  const pending = echo.call('sleep', { ms: 60_000 });
  await eventually(() => daemon.broker.status('echo').inFlight === 1, 'the call runs');
  await daemon.broker.stop('echo');
  t.equal((await rejection(pending)).code, 'ERR_INTERRUPTED', 'the call in flight ended with the helper');
  t.same(paths('echo'), [], 'the daemon dropped the channel');
  t.not((await echo.call('echo', { text: 'y' })).pid, pid);
});

t.test('revoking the certificate closes its live channel at once; others keep theirs', async (t) => {
  const doomed = daemon.ca.issue('app-b');
  const client = remote(doomed);
  const other = remote(once('app-c'));
  t.teardown(() => Promise.all([client.close(), other.close()]));
  const echo = client.connect('echo', { protocol: 'com.test.echo' });
  const kept = other.connect('echo', { protocol: 'com.test.echo' });
  await Promise.all([echo.call('echo', { text: 'x' }), kept.call('echo', { text: 'x' })]);
  const invalidated = new Promise<BulkheadError>((resolve) => echo.once('invalidated', resolve));
  const pending = echo.call('sleep', { ms: 60_000 });
  daemon.ca.revoke(doomed.serial); // what `bulkhead identity revoke` does: the daemon watches the file
  t.equal((await rejection(pending)).code, 'ERR_CERT_REVOKED', 'the call in flight fails with the reason');
  const why = await invalidated;
  t.equal(why.code, 'ERR_INVALIDATED');
  t.equal(why.data['cause'], 'ERR_CERT_REVOKED');
  t.equal((await rejection(echo.call('echo', { text: 'again' }))).code, 'ERR_INVALIDATED', 'the connection stays invalidated');
  t.equal((await rejection(client.connect('echo', { protocol: 'com.test.echo' }).call('echo', { text: 'again' }))).code, 'ERR_CERT_REVOKED', 'a new connection is refused at its handshake');
  t.equal((await kept.call('echo', { text: 'still here' })).text, 'still here', 'positive control: another client keeps its channel');
});

t.test('a reload that removes the client from clients closes its channel', async (t) => {
  const client = remote(once('app-a'));
  const other = remote(once('app-c'));
  t.teardown(() => Promise.all([client.close(), other.close()]));
  const echo = client.connect('echo', { protocol: 'com.test.echo' });
  const kept = other.connect('echo', { protocol: 'com.test.echo' });
  await Promise.all([echo.call('echo', { text: 'x' }), kept.call('echo', { text: 'x' })]);
  const pending = echo.call('sleep', { ms: 60_000 });
  writeFileSync(configPath, JSON.stringify({ root: FIXTURES, services: services(['app-c']) }));
  t.teardown(() => writeFileSync(configPath, JSON.stringify({ root: FIXTURES, services: services(['app-a', 'app-b', 'app-c']) })));
  await daemon.reload();
  t.equal((await rejection(pending)).code, 'ERR_NOT_PERMITTED');
  t.equal((await rejection(client.connect('echo', { protocol: 'com.test.echo' }).call('echo', { text: 'again' }))).code, 'ERR_NOT_PERMITTED', 'a new connection is refused at its handshake');
  t.equal((await kept.call('echo', { text: 'ok' })).text, 'ok', 'positive control: a client still listed keeps its channel');
  writeFileSync(configPath, JSON.stringify({ root: FIXTURES, services: services(['app-a', 'app-b', 'app-c']) }));
  await daemon.reload();
});

t.test('a reload that changes only clients keeps the helper: the withdrawn client loses its direct channel and its routed connection, a newly listed one connects', async (t) => {
  const withdrawn = remote(once('app-a'));
  const withdrawnRouted = remote(once('app-a'), false);
  const kept = remote(once('app-c'));
  const newcomer = remote(once('app-d'));
  t.teardown(() => Promise.all([withdrawn.close(), withdrawnRouted.close(), kept.close(), newcomer.close()]));
  const direct = withdrawn.connect('echo', { protocol: 'com.test.echo' });
  const routed = withdrawnRouted.connect('echo', { protocol: 'com.test.echo' });
  const stays = kept.connect('echo', { protocol: 'com.test.echo' });
  const pid = (await stays.call('echo', { text: 'x' })).pid;
  await Promise.all([direct.call('echo', { text: 'x' }), routed.call('echo', { text: 'x' })]);
  t.same(paths('echo').sort(), ['direct', 'direct', 'routed'], 'two direct channels and one routed connection');
  t.equal((await rejection(newcomer.connect('echo', { protocol: 'com.test.echo' }).call('echo', { text: 'x' }))).code, 'ERR_NOT_PERMITTED', 'control: app-d is not a client yet');
  const launches = daemon.broker.status('echo').launches;
  const pendingDirect = direct.call('sleep', { ms: 60_000 });
  const pendingRouted = routed.call('sleep', { ms: 60_000 });
  await eventually(() => daemon.broker.status('echo').inFlight === 2, 'both calls in the helper');
  writeFileSync(configPath, JSON.stringify({ root: FIXTURES, services: services(['app-c', 'app-d']) }));
  t.teardown(() => writeFileSync(configPath, JSON.stringify({ root: FIXTURES, services: services(['app-a', 'app-b', 'app-c']) })));
  const result = await daemon.reload();
  t.same(result.replaced, ['echo'], 'the reload changed echo\'s manifest');
  t.same(result.relaunched, [], 'and says its helper was not relaunched');
  t.equal((await rejection(pendingDirect)).code, 'ERR_NOT_PERMITTED', 'the withdrawn direct channel ends with the code a handshake would get');
  t.equal((await rejection(pendingRouted)).code, 'ERR_NOT_PERMITTED', 'so does the withdrawn routed connection');
  t.equal(daemon.broker.status('echo').launches, launches, 'no helper was launched: the change applied in place');
  t.equal((await stays.call('echo', { text: 'still' })).pid, pid, 'the client still listed keeps its channel to the same helper');
  t.equal((await newcomer.connect('echo', { protocol: 'com.test.echo' }).call('echo', { text: 'new' })).pid, pid, 'the newly listed client connects, to the same helper');
  t.equal((await rejection(withdrawn.connect('echo', { protocol: 'com.test.echo' }).call('echo', { text: 'again' }))).code, 'ERR_NOT_PERMITTED', 'a new connection of the withdrawn client is refused');
  writeFileSync(configPath, JSON.stringify({ root: FIXTURES, services: services(['app-a', 'app-b', 'app-c']) }));
  await daemon.reload();
});

/** Does the handshake by hand, asking for a direct channel; returns the channel and the lifeline. */
async function rawHandoff(identity: IssuedIdentity, service: string): Promise<{ channel: FramedChannel; lifeline: Socket }> {
  const socket = createConnection(daemon.socketPath);
  await new Promise((resolve) => socket.once('connect', resolve));
  const reader = new HandshakeReader(socket);
  const challenge = await reader.next(5000);
  reader.release();
  const payload = proofPayload(challenge['nonce'] as Uint8Array, { socketPath: daemon.socketPath, daemonId: daemon.id, clientName: identity.name });
  writeHandshake(socket, { t: 'auth', service, name: identity.name, cert: identity.certPem, sig: signProof(identity.keyPem, payload), direct: true });
  holdReads(socket);
  const answer = await receiveHandoffAnswer(socket, 5000);
  if (answer.fd === undefined) throw new Error(`no descriptor: ${JSON.stringify(answer.message)}`);
  return { channel: new FramedChannel(new Socket({ fd: answer.fd, readable: true, writable: true })), lifeline: socket };
}

/** Collects what arrives on a raw channel; `next(kind)` takes the first of that kind. */
function collect(channel: FramedChannel): { received: Envelope[]; next(kind: Envelope['kind']): Promise<Envelope>; closed: Promise<void> } {
  const received: Envelope[] = [];
  const waiters: Array<() => void> = [];
  const wake = (): void => {
    for (const resolve of waiters.splice(0)) resolve();
  };
  const closed = new Promise<void>((resolve) => channel.attach({
    envelope: (e) => {
      received.push(e);
      wake();
    },
    closed: () => {
      resolve();
      wake();
    },
  }));
  let isClosed = false;
  void closed.then(() => (isClosed = true));
  const next = async (kind: Envelope['kind']): Promise<Envelope> => {
    for (;;) {
      const found = received.find((e) => e.kind === kind);
      if (found !== undefined) {
        received.splice(received.indexOf(found), 1);
        return found;
      }
      if (isClosed) throw new Error(`channel closed before a ${kind}`);
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  return { received, next, closed };
}

const hello = (): Envelope => ({ kind: 'hello', role: 'client', protocol: 'com.test.echo', version: '1.0.0', schemaHash: daemon.broker.supervisorOf('echo').protocol.hash, info: {} });

t.test('a forged peer claim on a direct channel is ignored or refused', async (t) => {
  const identity = once('app-a');
  const { channel, lifeline } = await rawHandoff(identity, 'echo');
  t.teardown(() => {
    channel.destroy();
    lifeline.destroy();
  });
  const { received, next, closed } = collect(channel);
  // The hello claims to be someone else; it is a hello, not an identity.
  channel.send({ ...hello(), info: { client: 'admin', name: 'admin', uid: 0 } } as Envelope);
  t.equal((await next('hello')).kind, 'hello');
  channel.send({ kind: 'call', id: 7, method: 'whoami', params: {}, meta: null });
  const reply = await next('reply');
  t.same(reply.kind === 'reply' && (reply.result as { peer: unknown }).peer, { name: 'app-a', ...me }, 'the handler sees the verified peer, not the claim');
  // A peer binding is the broker's to send: from the client it ends the channel.
  channel.send({ kind: 'peer', range: 1, peer: { name: 'admin', uid: 0, gid: 0, pid: 1 } });
  channel.send({ kind: 'call', id: 1 << 20, method: 'whoami', params: {}, meta: null });
  const refusal = await next('error');
  t.equal(refusal.kind === 'error' && refusal.id, 0, 'a connection-level error');
  t.equal(refusal.kind === 'error' && refusal.error.code, 'ERR_BAD_FRAME');
  await closed;
  t.notOk(received.some((e) => e.kind === 'reply'), 'the call after the forged binding was never answered');
  // Positive control: the helper still serves other clients.
  const client = remote(once('app-a'));
  t.teardown(() => client.close());
  t.same((await client.connect('echo', { protocol: 'com.test.echo' }).call('whoami', {})).peer, { name: 'app-a', ...me });
});

for (const [service, expected] of [['boxed', ['bubblewrap', 'seccomp']], ['netboxed', ['seccomp', 'pasta']]] as const) {
  t.test(`a sandboxed helper (${expected.join(', ')}) takes its direct channel`, async (t) => {
    const client = remote(once('app-a'));
    t.teardown(() => client.close());
    const boxed = client.connect(service, { protocol: 'com.test.echo' });
    t.same((await boxed.call('whoami', {})).peer, { name: 'app-a', ...me });
    t.same(paths(service), ['direct']);
    const layers = new Set((daemon.broker.status(service).sandbox?.rules ?? []).flatMap((r) => r.layers.map((l) => l.split(':')[0])));
    t.ok(expected.every((layer) => layers.has(layer)), `the helper ran under ${expected.join(' and ')} (layers: ${[...layers].join(', ')})`);
  });
}

t.test('a direct client is bounded like a routed one: at most 1024 calls in flight', async (t) => {
  const identity = once('app-a');
  const a = await rawHandoff(identity, 'echo');
  t.teardown(() => {
    a.channel.destroy();
    a.lifeline.destroy();
  });
  const calls = collect(a.channel);
  a.channel.send(hello());
  await calls.next('hello');
  for (let id = 1; id <= 1030; id++) a.channel.send({ kind: 'call', id, method: 'sleep', params: { ms: 60_000 }, meta: null });
  const refused = await Promise.all(Array.from({ length: 6 }, () => calls.next('error')));
  t.same(refused.map((e) => (e.kind === 'error' ? e.error.code : e.kind)), Array(6).fill('ERR_BACKPRESSURE'), 'the 1025th call on and later are refused');
  t.same(refused.map((e) => (e.kind === 'error' ? e.id : 0)), [1025, 1026, 1027, 1028, 1029, 1030]);
});

t.test('a direct client that stops reading is hung up on; the helper serves the others', async (t) => {
  const identity = once('app-a');
  const b = await rawHandoff(identity, 'echo');
  t.teardown(() => {
    b.channel.destroy();
    b.lifeline.destroy();
  });
  const stalled = collect(b.channel);
  b.channel.send(hello());
  await stalled.next('hello');
  (b.channel.stream as Socket).pause(); // never read again
  const lifelineEnd = new Promise<void>((resolve) => b.lifeline.once('close', () => resolve()));
  resumeReads(b.lifeline); // held since the hand-off (libuv would have eaten the descriptor)
  b.lifeline.resume();
  for (let id = 1; id <= 48; id++) b.channel.send({ kind: 'call', id, method: 'bytes', params: { size: 1 << 20 }, meta: null });
  await lifelineEnd;
  t.pass('the helper hung up on the client that stopped reading, and the daemon ended its channel');
  const client = remote(once('app-a'));
  t.teardown(() => client.close());
  t.equal((await client.connect('echo', { protocol: 'com.test.echo' }).call('echo', { text: 'alive' })).text, 'alive', 'positive control: the helper serves the others');
});
