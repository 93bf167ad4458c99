// A user's own tap test of a helper, with bulkhead/testing: start a broker,
// crash the helper, await its relaunch. Runs standalone:
//
//   node examples/relaunch-in-tap/counter.example-test.js
//   npx tap examples/relaunch-in-tap/counter.example-test.js
//
// (Named *.example-test.js so this repository's own suite does not pick it up;
// in your project, name it like your other tests.)
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { startBroker } from 'bulkhead/testing';

// The broker root: protocols/ and counter-service.js are next to this file.
const root = fileURLToPath(new URL('.', import.meta.url));
const counter = { name: 'counter', entry: './counter-service.js', protocol: 'com.example.counter' };

// What happened, for the EXAMPLE-RESULT comment at the end (read by bulkhead's own test of this example).
const seen = {};

t.test('the next call after a crash relaunches the helper (on demand)', async (t) => {
  // throttleMs: 0 so the relaunch is not held back by the 1 s default throttle.
  const kit = await startBroker({ root, services: [{ ...counter, launch: { throttleMs: 0 } }] });
  t.teardown(() => kit.close());
  const conn = kit.broker.connect('counter');
  t.match(kit.status('counter'), { state: 'idle', pid: null, launches: 0 }, 'registering launches nothing');

  const first = await conn.call('next', {});
  t.equal(first.n, 1);
  t.equal(kit.status('counter').pid, first.pid, 'status pid is the helper that answered');

  // A call in flight when the helper dies rejects with ERR_INTERRUPTED; it never hangs.
  const inFlight = conn.call('wait', { ms: 30_000 });
  const interrupted = new Promise((resolve) => conn.once('interrupted', resolve));
  const exit = await kit.crash('counter'); // SIGKILL; resolves once the process is gone
  t.equal(exit.signal, 'SIGKILL');
  await t.rejects(inFlight, { code: 'ERR_INTERRUPTED' }, 'the call in flight was interrupted');
  t.equal((await interrupted).code, 'ERR_INTERRUPTED', "the connection emitted 'interrupted'");
  await kit.waitFor('counter', 'idle');
  t.match(kit.status('counter'), { state: 'idle', crashes: 1, lastExit: { signal: 'SIGKILL' } });

  // Same connection object, next call: a fresh helper (its count starts again).
  const second = await conn.call('next', {});
  t.not(second.pid, first.pid, 'a new process answered');
  t.equal(second.n, 1, 'in-memory state did not survive the crash');
  t.match(kit.status('counter'), { state: 'running', launches: 2, crashes: 1 });
  seen.onDemand = { firstPid: first.pid, secondPid: second.pid, interrupted: (await interrupted).code, launches: kit.status('counter').launches };
});

t.test('keepAlive: { crashed: true } relaunches the helper without waiting for a call', async (t) => {
  const kit = await startBroker({ root, services: [{ ...counter, launch: { throttleMs: 0, keepAlive: { crashed: true } } }] });
  t.teardown(() => kit.close());
  await kit.waitFor('counter', 'running'); // keepAlive implies launch at registration
  const before = kit.status('counter').pid;

  const exit = await kit.crash('counter');
  t.equal(exit.signal, 'SIGKILL');
  await kit.waitFor('counter', 'running'); // the broker relaunched it by itself
  const after = kit.status('counter').pid;
  t.not(after, before, 'relaunched as a new process');
  t.match(kit.status('counter'), { launches: 2, crashes: 1 });
  t.equal((await kit.broker.connect('counter').call('next', {})).pid, after, 'and it answers');
  seen.keepAlive = { beforePid: before, afterPid: after, launches: kit.status('counter').launches };
});

t.teardown(() => t.comment(`EXAMPLE-RESULT ${JSON.stringify(seen)}`));
