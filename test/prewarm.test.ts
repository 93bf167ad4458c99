// launch.prewarm: a spare helper waits inside its sandbox with the runtime
// loaded; the next launch — on demand or after a crash — activates it.
import t from 'tap';
import { startBroker, type TestBroker } from 'bulkhead/testing';
import { FIXTURES, nextSpare, rejection } from './helpers.js';

for (const sandbox of [undefined, 'pure-compute'] as const) {
  t.test(`a prewarmed spare becomes the service${sandbox === undefined ? '' : ` under ${sandbox}`}`, async (t) => {
    const kit = await startBroker({ root: FIXTURES });
    t.teardown(() => kit.close());
    const firstSpare = nextSpare(kit, 'echo');
    kit.broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo', ...(sandbox === undefined ? {} : { sandbox }), launch: { prewarm: true, throttleMs: 0 } });
    const spare1 = await firstSpare;
    t.equal(kit.status('echo').launches, 0, 'a spare is not a launch');
    t.equal(kit.broker.status('echo').sparePid, spare1);

    const secondSpare = nextSpare(kit, 'echo');
    const echo = kit.broker.connect('echo');
    t.equal((await echo.call('echo', { text: 'warm' })).text, 'warm');
    t.equal(kit.status('echo').pid, spare1, 'the first call was answered by the spare');
    const spare2 = await secondSpare;
    t.not(spare2, spare1, 'a new spare took its place');

    await kit.crash('echo');
    t.equal((await echo.call('whoami', {})).peer.name, 'main-app');
    t.equal(kit.status('echo').pid, spare2, 'the relaunch after SIGKILL used the spare');
    t.equal(kit.status('echo').launches, 2);
    t.equal((await echo.call('echo', { text: 'x' }, {})).text, 'x');
  });
}

t.test('the service module loads in the spare, before any call; events it emitted then arrive on activation', async (t) => {
  const kit = await startBroker({ root: FIXTURES });
  t.teardown(() => kit.close());
  const spare = nextSpare(kit, 'loaded');
  kit.broker.register({ name: 'loaded', entry: './prewarm-loaded.js', protocol: 'com.test.echo', launch: { prewarm: true, throttleMs: 0 } });
  await spare;
  const warmAt = Date.now();
  const conn = kit.broker.connect('loaded');
  const news = new Promise<unknown>((resolve) => conn.on('event', (name, payload) => name === 'news' && resolve(payload)));
  const { text } = await conn.call('echo', { text: 'hi' });
  const loadedAt = Number(/loaded at (\d+)/.exec(text)?.[1]);
  t.ok(loadedAt <= warmAt, `the module's top level ran before the spare said it was warm (${warmAt - loadedAt} ms before)`);
  t.same(await news, { value: loadedAt % 1_000_000 }, 'the event emitted at load time reached the client after activation');
});

t.test('a service module that dies while loading in the spare: the launch reports its own failure', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [{ name: 'doomed', entry: './crash-at-start.js', protocol: 'com.test.echo', launch: { prewarm: true, throttleMs: 0, maxRestarts: 100 } }] });
  t.teardown(() => kit.close());
  const err = await rejection(kit.broker.connect('doomed').call('echo', { text: 'x' }));
  t.equal(err.code, 'ERR_LAUNCH_FAILED');
  t.match(err.message, /cannot open config file/, 'with the stderr of the module that failed');
  t.equal(kit.broker.status('doomed').sparePid, null, 'no spare is reported warm');
});
