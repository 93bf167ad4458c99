// launch.prewarm, the spare's rules: a spare says its hello before it is needed and the broker
// checks it then, as it checks a fresh helper's; until the broker's own hello activates it, a spare
// may send nothing else. A spare that breaks either rule is refused (killed, never used) and the
// launch spawns a fresh helper. And a relaunch from a spare after SIGKILL, with calls in flight,
// settles every call.
import t from 'tap';
import { isBulkheadError } from 'bulkhead';
import { startBroker, type TestBroker } from 'bulkhead/testing';
import { FIXTURES, nextSpare } from './helpers.js';

/** Resolves with the first `count` spareRefused events of `name` (pid, reason). */
function refusals(kit: TestBroker, name: string, count: number): Promise<Array<{ pid: number; reason: string }>> {
  const seen: Array<{ pid: number; reason: string }> = [];
  return new Promise((resolve) => {
    const sub = kit.broker.on('spareRefused', (service, pid, reason) => {
      if (service !== name) return;
      seen.push({ pid, reason });
      if (seen.length < count) return;
      sub.dispose();
      resolve(seen);
    });
  });
}

/** The warm spare waiting now, or the next one (after a launch took the last). */
function warmSpare(kit: TestBroker, name: string): Promise<number> {
  const pid = kit.broker.status(name).sparePid;
  return pid === null ? nextSpare(kit, name) : Promise.resolve(pid);
}

const manifest = (name: string, tamper: string) => ({
  name, entry: './prewarm-tampered.js', protocol: 'com.test.echo', env: { TAMPER: tamper }, launch: { prewarm: true, throttleMs: 0 },
});

t.test('a spare whose early hello does not match is refused, never reported warm, and a plain launch serves', async (t) => {
  const kit = await startBroker({ root: FIXTURES });
  t.teardown(() => kit.close());
  const warm: number[] = [];
  kit.broker.on('prewarmed', (service, pid) => service === 'tampered' && warm.push(pid));
  const refused = refusals(kit, 'tampered', 3);
  kit.broker.register(manifest('tampered', 'hello'));
  // A spare that dies unused is replaced at most three times in a row.
  const all = await refused;
  for (const { reason } of all) t.match(reason, /ERR_PROTOCOL_MISMATCH|schema/, `refused for its hello: ${reason}`);
  t.same(warm, [], 'no refused spare was reported warm');
  t.equal(kit.broker.status('tampered').sparePid, null);

  const echo = kit.broker.connect('tampered');
  const reply = await echo.call('echo', { text: 'fresh' });
  t.equal(reply.text, 'fresh', 'the launch spawned a fresh helper, which served');
  t.notOk(all.some(({ pid }) => pid === reply.pid), 'not one of the refused spares');
  t.equal(kit.status('tampered').launches, 1);
});

t.test('positive control: the same module in a spare that keeps the rules is used', async (t) => {
  const kit = await startBroker({ root: FIXTURES });
  t.teardown(() => kit.close());
  const spare = nextSpare(kit, 'honest');
  kit.broker.register(manifest('honest', 'none'));
  const pid = await spare;
  const reply = await kit.broker.connect('honest').call('echo', { text: 'warm' });
  t.equal(reply.pid, pid, 'the spare answered the first call');
});

t.test('a spare that sends an event before activation is refused: no client hears it, a plain launch serves', async (t) => {
  const kit = await startBroker({ root: FIXTURES });
  t.teardown(() => kit.close());
  const refused = refusals(kit, 'chatty', 3);
  kit.broker.register(manifest('chatty', 'event'));
  const conn = kit.broker.connect('chatty');
  const heard: unknown[] = [];
  conn.on('event', (name, payload) => heard.push([name, payload]));
  const all = await refused;
  for (const { reason } of all) t.match(reason, /"event" message before it was activated/);
  const reply = await conn.call('echo', { text: 'fresh' });
  t.equal(reply.text, 'fresh');
  t.notOk(all.some(({ pid }) => pid === reply.pid), 'a fresh helper answered, not a refused spare');
  t.same(heard, [], 'the event a spare sent before activation reached no client');
});

t.test('relaunch from the spare after SIGKILL with calls in flight: every call settles, the next ones go to the spare', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [{ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo', launch: { prewarm: true, throttleMs: 0 } }] });
  t.teardown(() => kit.close());
  const echo = kit.broker.connect('echo');
  const first = await echo.call('whoami', {});
  const spare = await warmSpare(kit, 'echo');
  t.not(spare, first.pid);

  // 300 calls in flight when the helper dies; the next 300 are made as soon as the first call fails.
  const inFlight = Array.from({ length: 300 }, (_, i) => echo.call('echo', { text: `a${i}` }));
  let after: Array<Promise<{ text: string; pid: number }>> = [];
  const relaunched = new Promise<void>((resolve) => {
    void Promise.race(inFlight.map((p) => p.then(() => new Promise<never>(() => undefined), () => undefined))).then(() => {
      after = Array.from({ length: 300 }, (_, i) => echo.call('echo', { text: `b${i}` }));
      resolve();
    });
  });
  t.equal(kit.broker.kill('echo', 'SIGKILL'), first.pid);
  const settled = await Promise.allSettled(inFlight);
  await relaunched;
  const results = await Promise.allSettled(after);

  const codes = new Set(settled.filter((r) => r.status === 'rejected').map((r) => (isBulkheadError(r.reason) ? r.reason.code : String(r.reason))));
  t.ok([...codes].every((code) => code === 'ERR_INTERRUPTED'), `calls to the killed helper fail only with ERR_INTERRUPTED (${[...codes].join(', ') || 'none failed'})`);
  const answered = settled.filter((r) => r.status === 'fulfilled');
  t.ok(settled.every((r, i) => r.status === 'rejected' || r.value.text === `a${i}`), `the ${answered.length} answered before the kill got their own replies`);
  t.equal(results.filter((r) => r.status === 'rejected').length, 0, 'every call made after the exit succeeded');
  t.ok(results.every((r, i) => r.status === 'fulfilled' && r.value.text === `b${i}` && r.value.pid === spare), 'answered by the spare, in order');
  t.equal(kit.status('echo').crashes, 1);
  t.equal(kit.status('echo').launches, 2, 'one relaunch, from the spare');
});

t.test('a spare activated early when the helper dies: its load-time event reaches clients only after the old helper\'s exit', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [{ name: 'loaded', entry: './prewarm-loaded.js', protocol: 'com.test.echo', launch: { prewarm: true, throttleMs: 0 } }] });
  t.teardown(() => kit.close());
  const conn = kit.broker.connect('loaded');
  const order: string[] = [];
  conn.on('event', (name) => name === 'news' && order.push('news'));
  kit.broker.on('exit', (service) => service === 'loaded' && order.push('exit'));
  const first = await conn.call('echo', { text: 'first' }); // launched plainly or from the first spare
  t.not(await warmSpare(kit, 'loaded'), first.pid, 'a new spare waits');
  order.length = 0;
  const news = new Promise<void>((resolve) => conn.on('event', (name) => name === 'news' && resolve()));
  await kit.crash('loaded');
  const reply = await conn.call('echo', { text: 'again' });
  await news;
  t.match(reply.text, /^again loaded at/);
  t.same(order, ['exit', 'news'], 'the new helper\'s event came after the old one\'s exit');
});
