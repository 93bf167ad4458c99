// Helper-to-helper calls over direct channels (`connects`): the broker checks
// the caller's right once, hands each helper one end of a socketpair, and is
// then out of the message path. Real broker, real helpers.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import t from 'tap';
import { Broker } from 'bulkhead';
import { Daemon } from '../lib/daemon/daemon.js';
import { RemoteBroker } from '../lib/daemon/remote-broker.js';
import { FIXTURES } from './helpers.js';
import { seedStateDir, sharedIdentity } from './shared-ca.js';

// The broker's heap is judged live, after a full collection: heapUsed alone also counts young garbage
// not yet scavenged (up to the young generation's size, 16 MiB or more on Node 24/26).
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Probe { ok: boolean; code?: string; path?: string; codes?: Record<string, number>; [key: string]: unknown }

function makeBroker(directConnects: boolean): Broker {
  const broker = new Broker({ root: FIXTURES, directConnects });
  t.teardown(() => broker.close());
  broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' });
  broker.register({ name: 'other', entry: './echo-service.js', protocol: 'com.test.echo' });
  broker.register({ name: 'caller', entry: './caller-service.js', protocol: 'com.test.caller', connects: ['echo'] });
  return broker;
}

const direct = makeBroker(true);
const routed = makeBroker(false);
const denials: Array<{ client: string; service: string; code: string }> = [];
direct.on('denied', (d) => denials.push(d));

/** Per broker: calls it routed to each service and timed itself (its `call` events), counted from the first look. */
const timedCalls = new WeakMap<Broker, Map<string, number>>();

/**
 * Calls the broker routed to `service` and timed itself. (Not `bulkhead_calls_total`: that
 * counts a direct channel's calls too, from the helper's batched reports.)
 */
function routedCalls(broker: Broker, service: string): Promise<number> {
  let counts = timedCalls.get(broker);
  if (counts === undefined) {
    const fresh = new Map<string, number>();
    broker.on('call', (name) => fresh.set(name, (fresh.get(name) ?? 0) + 1));
    timedCalls.set(broker, (counts = fresh));
  }
  return Promise.resolve(counts.get(service) ?? 0);
}

/** Resolves once `check` holds, checked each turn of the event loop (no event says "the helper reported its count"), bounded. */
function until(check: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 20_000;
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (check()) resolve();
      else if (performance.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(poll, 5);
    };
    poll();
  });
}

t.test('calls go over the direct channel: none of their frames reaches the broker (on the routed path, same calls, all do)', async (t) => {
  const N = 1000;
  const run = async (broker: Broker) => {
    const caller = broker.connect('caller');
    const before = broker.status('echo').callsServed;
    t.same(await caller.call('probe', { scenario: 'sequential', service: 'echo', n: 1 }), { ok: true, calls: 1 }, 'warm: both helpers run');
    await until(() => broker.status('echo').callsServed > before, 'the warm-up call\'s count');
    const served = broker.status('echo').callsServed;
    const metered = await routedCalls(broker, 'echo');
    // What the broker reads from the callee's fd 3 meanwhile (the socket's own count: the channel reads
    // into its own buffers, so there are no 'data' events to listen to).
    const calleeSocket = broker.supervisorOf('echo').process!.channel.stream as Socket;
    const readBefore = calleeSocket.bytesRead;
    t.same(await caller.call('probe', { scenario: 'sequential', service: 'echo', n: N }), { ok: true, calls: N });
    const bytesFromCallee = calleeSocket.bytesRead - readBefore;
    // The helper's tally reaches the broker every 50 ms: wait for the last one.
    await until(() => broker.status('echo').callsServed >= served + N, 'the callee\'s count');
    return { bytesFromCallee, timedByBroker: (await routedCalls(broker, 'echo')) - metered, served: broker.status('echo').callsServed - served, status: broker.status('caller') };
  };
  const d = await run(direct);
  const r = await run(routed);
  t.equal(d.served, N, 'direct: status still counts every call the callee answered');
  t.equal(r.served, N, 'routed: the same count');
  t.equal(d.timedByBroker, 0, 'direct: no call went through the broker\'s routing (no `call` event)');
  t.equal(r.timedByBroker, N, 'positive control: routed, the broker routed and timed every call');
  t.ok(d.bytesFromCallee < N, `direct: the broker read ${d.bytesFromCallee} bytes from the callee during ${N} calls (a heartbeat at most, no answers)`);
  t.ok(r.bytesFromCallee >= N * 16, `positive control: routed, it read ${r.bytesFromCallee} bytes (every answer)`);
  t.same(d.status.outbound, { echo: 'direct' }, 'status says which path the caller uses');
  t.same(r.status.outbound, { echo: 'routed' }, 'and the routed one');
});

t.test('the callee sees the calling service as ctx.peer, from the broker; it still validates every call', async (t) => {
  const caller = direct.connect('caller');
  const who = await caller.call('relay', { service: 'echo', method: 'whoami' }) as Probe & { result: { peer: unknown } };
  t.same(who.result.peer, { name: 'caller', pid: direct.status('caller').pid });
  const invalid = await caller.call('relay', { service: 'echo', method: 'echo', params: { text: 5 } });
  t.same([invalid.ok, (invalid as Probe).code], [false, 'ERR_INVALID_PARAMS']);
});

t.test('connects is enforced: a request for a service outside it gets ERR_NOT_PERMITTED and no channel', async (t) => {
  const caller = direct.connect('caller');
  const launched = direct.status('other').launches;
  // connect() itself refuses (the helper knows its targets) ...
  const r = await caller.call('relay', { service: 'other', method: 'echo', params: { text: 'x' } }) as Probe;
  t.same([r.ok, r.code], [false, 'ERR_NOT_PERMITTED']);
  // ... and the broker refuses a raw request on the hand-off pipe, as from a compromised helper.
  denials.length = 0;
  t.same(await caller.call('probe', { scenario: 'rawOpen', service: 'other' }), { ok: false, code: 'ERR_NOT_PERMITTED' });
  t.same(denials, [{ client: 'caller', service: 'other', code: 'ERR_NOT_PERMITTED' }], 'the denial is reported');
  t.equal(direct.status('other').launches, launched, 'no channel: the target was not even launched');
  t.same(await caller.call('probe', { scenario: 'rawOpen', service: 'nosuch' }), { ok: false, code: 'ERR_NOT_PERMITTED' });
  t.same(await caller.call('probe', { scenario: 'rawOpen', service: 'echo' }), { ok: true, path: 'direct' }, 'positive control: an allowed target gets a channel');
});

t.test('a forged peer claim on the direct channel is ignored, and a peer binding ends the channel', async (t) => {
  const r = await direct.connect('caller').call('probe', { scenario: 'forgedPeer', service: 'echo' }) as Probe;
  t.equal(r.hello, 'hello', 'the callee answered the hello that claimed to be admin');
  t.same(r.firstPeer, { name: 'caller', pid: direct.status('caller').pid }, 'the handler saw the verified caller, not the claim');
  t.same(r.refusal, { id: 0, code: 'ERR_BAD_FRAME' }, 'a peer message from the caller is a protocol violation');
  t.equal(r.answeredAfter, false, 'the call after it was never answered');
  const after = await direct.connect('caller').call('relay', { service: 'echo', method: 'whoami' }) as Probe;
  t.equal(after.ok, true, 'positive control: the next call gets a new channel');
});

t.test('kill -9 of the callee under load: every call settles, the next call re-brokers a channel to the relaunched callee', async (t) => {
  const caller = direct.connect('caller');
  await caller.call('relay', { service: 'echo', method: 'echo', params: { text: 'warm' } });
  const oldPid = direct.status('echo').pid;
  const load = caller.call('probe', { scenario: 'load', service: 'echo', n: 20, loops: 4 }) as Promise<Probe>;
  await until(() => direct.status('echo').inFlight >= 20, 'the sleeping calls to reach the callee');
  direct.kill('echo');
  const r = await load;
  t.equal(r.codes?.['ERR_INTERRUPTED'], 24, `the 20 waiting calls and each loop's call in flight failed with ERR_INTERRUPTED (${JSON.stringify(r.codes)})`);
  t.same(Object.keys(r.codes ?? {}).filter((c) => c !== 'ok' && c !== 'ERR_INTERRUPTED'), [], 'and nothing else');
  const next = await caller.call('relay', { service: 'echo', method: 'echo', params: { text: 'again' } }) as Probe & { result: { pid: number } };
  t.equal(next.ok, true);
  t.not(next.result.pid, oldPid, 'answered by the relaunched callee');
  t.same(direct.status('caller').outbound, { echo: 'direct' }, 'over a new direct channel');
});

t.test('the caller dying closes the callee\'s end', async (t) => {
  const caller = direct.connect('caller');
  await caller.call('relay', { service: 'echo', method: 'echo', params: { text: 'hi' } });
  const pending = caller.call('relay', { service: 'echo', method: 'sleep', params: { ms: 60_000 } }).catch((err: { code: string }) => err.code);
  await until(() => direct.status('echo').inFlight >= 1, 'the call to reach the callee');
  direct.kill('caller');
  t.equal(await pending, 'ERR_INTERRUPTED');
  await until(() => direct.status('echo').inFlight === 0, 'the callee to drop the dead caller\'s call');
  t.pass('the callee saw its end close and cancelled the call');
});

t.test('a reload that removes the target from connects closes the channel at once', async (t) => {
  const broker = new Broker({ root: FIXTURES });
  t.teardown(() => broker.close());
  const services = (connects: string[]) => ({ services: [
    { name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' },
    { name: 'caller', entry: './caller-service.js', protocol: 'com.test.caller', connects },
  ] });
  await broker.reload(services(['echo']));
  const caller = broker.connect('caller');
  t.equal((await caller.call('relay', { service: 'echo', method: 'echo', params: { text: 'hi' } }) as Probe).ok, true);
  t.same(broker.status('caller').outbound, { echo: 'direct' });
  const pending = caller.call('relay', { service: 'echo', method: 'sleep', params: { ms: 60_000 } }) as Promise<Probe>;
  await until(() => broker.status('echo').inFlight >= 1, 'the call to reach the callee');
  await broker.reload(services([]));
  t.same(broker.status('caller').outbound, {}, 'no channel left once reload() resolved');
  const r = await pending;
  t.same([r.ok, r.code], [false, 'ERR_INTERRUPTED'], 'the call in flight on the withdrawn channel was interrupted (the old caller is draining)');
});

t.test('a caller that stops reading is cut off by the callee at its bound; the broker holds none of it, the callee goes on', async (t) => {
  // maxFrameBytes 1 MiB: the callee holds at most 2 × 1 MiB + 1 MiB unread for one channel (untrustedPeerBacklog).
  const broker = new Broker({ root: FIXTURES, maxFrameBytes: 1024 * 1024 });
  t.teardown(() => broker.close());
  broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' });
  broker.register({ name: 'caller', entry: './caller-service.js', protocol: 'com.test.caller', connects: ['echo'] });
  const caller = broker.connect('caller');
  const echoPid = (await broker.connect('echo').call('echo', { text: 'up' })).pid;
  gc();
  const brokerHeap = process.memoryUsage().heapUsed;
  t.same(await caller.call('probe', { scenario: 'slowReader', service: 'echo', n: 64 }), { ok: true, sent: 64 }, '16 MiB of answers asked for, none read');
  // The callee reports the channel closed once it cut it off; the broker then forgets it.
  await until(() => broker.status('caller').outbound['echo'] === undefined, 'the callee to cut the stalled channel');
  const r = await caller.call('probe', { scenario: 'slowReaderResult', service: 'echo' }) as Probe & { replies: number; errors: string[] };
  t.ok(r.replies < 64, `only ${r.replies} of 64 answers were delivered before the cut`);
  // Its reason, a connection-level ERR_BACKPRESSURE, is written behind the backlog: it arrives when the kernel had room.
  t.ok(r.errors.every((e) => e === '0:ERR_BACKPRESSURE'), `nothing but the callee's ERR_BACKPRESSURE came back (${r.errors.join(', ') || 'none'})`);
  gc();
  const heldMiB = (process.memoryUsage().heapUsed - brokerHeap) / 2 ** 20;
  t.ok(heldMiB < 8, `the broker's heap did not take the backlog (${heldMiB.toFixed(1)} MiB live after a full collection)`);
  const again = await broker.connect('echo').call('echo', { text: 'still here' });
  t.equal(again.pid, echoPid, 'the callee kept running and serving');
  t.equal((await caller.call('relay', { service: 'echo', method: 'echo', params: { text: 'x' } }) as Probe).ok, true, 'and the caller gets a new channel on its next call');
});

t.test('under the daemon, with both helpers sandboxed (pure-compute): the same direct channel', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'bulkhead-h2h-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const config = join(work, 'bulkhead.json');
  writeFileSync(config, JSON.stringify({ root: FIXTURES, services: [
    { name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo', sandbox: 'pure-compute' },
    { name: 'caller', entry: './caller-service.js', protocol: 'com.test.caller', clients: ['app'], connects: ['echo'], sandbox: 'pure-compute' },
  ] }));
  await seedStateDir(join(work, 'state')); // the run's test CA (test/shared-ca.ts): no new keys for this daemon
  const daemon = await Daemon.start({ config, settings: { socketPath: join(work, 'd.sock'), stateDir: join(work, 'state') }, log: () => {} });
  t.teardown(() => daemon.close());
  const client = new RemoteBroker(daemon.socketPath, await sharedIdentity('app'), { protocolsDir: join(FIXTURES, 'protocols') });
  t.teardown(() => client.close());
  const caller = client.connect('caller', { protocol: 'com.test.caller' });
  const who = await caller.call('relay', { service: 'echo', method: 'whoami' }) as Probe & { result: { peer: { name: string } } };
  t.equal(who.result.peer.name, 'caller', 'the callee sees the calling service, from the daemon');
  t.same(daemon.broker.status('caller').outbound, { echo: 'direct' }, 'over a direct channel');
  const metered = await routedCalls(daemon.broker, 'echo');
  t.same(await caller.call('probe', { scenario: 'sequential', service: 'echo', n: 200 }), { ok: true, calls: 200 });
  t.equal(await routedCalls(daemon.broker, 'echo'), metered, 'none of the 200 calls went through the daemon\'s routing');
  t.same(await caller.call('probe', { scenario: 'rawOpen', service: 'caller' }), { ok: false, code: 'ERR_NOT_PERMITTED' }, 'connects is enforced by the daemon too');
});

t.test('removing the target (unregister) closes the channel at once; the next call is refused', async (t) => {
  const broker = new Broker({ root: FIXTURES });
  t.teardown(() => broker.close());
  broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' });
  broker.register({ name: 'caller', entry: './caller-service.js', protocol: 'com.test.caller', connects: ['echo'] });
  const caller = broker.connect('caller');
  t.equal((await caller.call('relay', { service: 'echo', method: 'echo', params: { text: 'hi' } }) as Probe).ok, true);
  const pending = caller.call('relay', { service: 'echo', method: 'sleep', params: { ms: 60_000 } }) as Promise<Probe>;
  await until(() => broker.status('echo').inFlight >= 1, 'the call to reach the callee');
  const removed = broker.unregister('echo');
  t.same(broker.status('caller').outbound, {}, 'the channel ended as the service was removed, before its helper finished stopping');
  const r = await pending;
  t.same([r.ok, r.code], [false, 'ERR_INTERRUPTED'], 'the call in flight was interrupted');
  await removed;
  const next = await caller.call('relay', { service: 'echo', method: 'echo', params: { text: 'x' } }) as Probe;
  t.same([next.ok, next.code], [false, 'ERR_UNKNOWN_SERVICE'], 'the next call asks the broker again and is refused');
});

t.test('a target whose runtime cannot take descriptors is routed, and status says so', async (t) => {
  const broker = new Broker({ root: FIXTURES });
  t.teardown(() => broker.close());
  broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' });
  broker.register({ name: 'plain', entry: './no-handoff-echo.js', protocol: 'com.test.echo' });
  broker.register({ name: 'caller', entry: './caller-service.js', protocol: 'com.test.caller', connects: ['echo', 'plain'] });
  const caller = broker.connect('caller');
  const metered = await routedCalls(broker, 'plain');
  const r = await caller.call('relay', { service: 'plain', method: 'whoami' }) as Probe & { result: { peer: { name: string } } };
  t.equal(r.result.peer.name, 'caller', 'the call went through, with the caller as its peer');
  t.equal(await routedCalls(broker, 'plain'), metered + 1, 'through the broker\'s routing');
  t.equal((await caller.call('relay', { service: 'echo', method: 'echo', params: { text: 'x' } }) as Probe).ok, true);
  t.same(broker.status('caller').outbound, { plain: 'routed', echo: 'direct' }, 'status: routed to the one, direct to the other');
});

t.test('stop: the target says goodbye, its channel is gone once stop() resolved; the next call gets a new channel to a new helper', async (t) => {
  const broker = new Broker({ root: FIXTURES });
  t.teardown(() => broker.close());
  broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' });
  broker.register({ name: 'caller', entry: './caller-service.js', protocol: 'com.test.caller', connects: ['echo'] });
  const caller = broker.connect('caller');
  const first = await caller.call('relay', { service: 'echo', method: 'echo', params: { text: 'a' } }) as Probe & { result: { pid: number } };
  t.same(broker.status('caller').outbound, { echo: 'direct' });
  await broker.stop('echo');
  t.same(broker.status('caller').outbound, {}, 'the channel ended with the helper');
  const next = await caller.call('relay', { service: 'echo', method: 'echo', params: { text: 'b' } }) as Probe & { result: { pid: number } };
  t.equal(next.ok, true);
  t.not(next.result.pid, first.result.pid, 'a new helper answered');
  t.same(broker.status('caller').outbound, { echo: 'direct' }, 'over a new direct channel');
});
