// A helper calling another service through the broker: allowed only for the
// services its manifest `connects` to, and the callee sees the caller as ctx.peer.
import t from 'tap';
import { Broker } from 'bulkhead';
import { FIXTURES } from './helpers.js';

const broker = new Broker({ root: FIXTURES });
t.teardown(() => broker.close());
const denials: Array<{ client: string; service: string; code: string }> = [];
broker.on('denied', (d) => denials.push(d));
broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' });
broker.register({ name: 'other', entry: './echo-service.js', protocol: 'com.test.echo' });
broker.register({ name: 'caller', entry: './caller-service.js', protocol: 'com.test.caller', connects: ['echo'] });
broker.register({ name: 'loner', entry: './caller-service.js', protocol: 'com.test.caller' });
broker.register({ name: 'broken', entry: './crash-at-start.js', protocol: 'com.test.echo' });
broker.register({ name: 'dialer', entry: './caller-service.js', protocol: 'com.test.caller', connects: ['broken'] });
broker.register({ name: 'rogue', entry: './caller-service.js', protocol: 'com.test.caller', connects: ['echo'] });

t.test('an allowed call goes through, and the callee sees the calling service as its peer', async (t) => {
  const caller = broker.connect('caller');
  const r = await caller.call('relay', { service: 'echo', method: 'echo', params: { text: 'hop' } });
  t.same(r, { ok: true, result: { text: 'hop', pid: broker.status('echo').pid } });
  const who = await caller.call('relay', { service: 'echo', method: 'whoami' });
  t.equal(who.result.peer.name, 'caller', 'ctx.peer is the calling service, as the broker knows it');
  t.equal(who.result.peer.pid, broker.status('caller').pid, 'with the caller\'s pid');
  const invalid = await caller.call('relay', { service: 'echo', method: 'echo', params: { text: 5 } });
  t.same([invalid.ok, invalid.code], [false, 'ERR_INVALID_PARAMS'], 'the callee validates the params');
});

t.test('a service outside connects is refused with ERR_NOT_PERMITTED', async (t) => {
  const launched = broker.status('other').launches;
  const r = await broker.connect('caller').call('relay', { service: 'other', method: 'echo', params: { text: 'x' } });
  t.same([r.ok, r.code], [false, 'ERR_NOT_PERMITTED']);
  t.equal(broker.status('other').launches, launched, 'nothing was routed to it');
  const none = await broker.connect('loner').call('relay', { service: 'echo', method: 'echo', params: { text: 'x' } });
  t.same([none.ok, none.code], [false, 'ERR_NOT_PERMITTED'], 'a helper with no connects cannot call out at all');
});

t.test('the broker enforces connects even when a compromised helper writes the call itself', async (t) => {
  const launched = broker.status('other').launches;
  const r = await broker.connect('rogue').call('rogue', { service: 'other' });
  t.same(r, { ok: false, code: 'ERR_NOT_PERMITTED' });
  t.same(denials, [{ client: 'rogue', service: 'other', code: 'ERR_NOT_PERMITTED' }], 'the denial was reported, naming who was denied what');
  t.equal(broker.status('other').launches, launched, 'nothing was routed');
});

t.test('the callee crashing mid-call gives the caller ERR_INTERRUPTED', async (t) => {
  const caller = broker.connect('caller');
  const pending = caller.call('relay', { service: 'echo', method: 'sleep', params: { ms: 60_000 } });
  await broker.connect('echo').call('whoami', {});
  // No event says "the routed call reached the helper": check status each turn of the loop, bounded.
  const deadline = performance.now() + 10_000;
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (broker.status('echo').inFlight > 0) resolve();
      else if (performance.now() > deadline) reject(new Error('the relayed call never reached echo'));
      else setImmediate(check);
    };
    check();
  });
  broker.kill('echo');
  const r = await pending;
  t.same([r.ok, r.code], [false, 'ERR_INTERRUPTED']);
});

t.test('a call to a service whose launch fails gets ERR_LAUNCH_FAILED, not ERR_INTERRUPTED', async (t) => {
  // The call waits for the launch; the helper dies before serve(). Only calls handed to a helper are "interrupted".
  const r = await broker.connect('dialer').call('relay', { service: 'broken', method: 'echo', params: { text: 'x' } });
  t.same([r.ok, r.code], [false, 'ERR_LAUNCH_FAILED'], r.message);
  t.ok(broker.status('broken').launches >= 1, 'a launch was attempted (positive control: the call reached the supervisor)');
});

t.test('a callee registered anew (as a daemon reload does): the caller\'s next call reaches the new one', async (t) => {
  const caller = broker.connect('caller');
  t.equal((await caller.call('relay', { service: 'echo', method: 'echo', params: { text: 'before' } })).ok, true);
  const oldPid = broker.status('echo').pid;
  await broker.unregister('echo');
  broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' });
  const r = await caller.call('relay', { service: 'echo', method: 'echo', params: { text: 'after' } });
  t.same(r, { ok: true, result: { text: 'after', pid: broker.status('echo').pid } }, 'answered by the new registration (no hang until the 5 s deadline)');
  t.not(broker.status('echo').pid, oldPid, 'by a new helper');
});
