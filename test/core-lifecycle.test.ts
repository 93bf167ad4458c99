// XPC lifecycle with real processes: interruption, relaunch, the crash-loop
// breaker, throttling, orderly stop and escalation, and no orphans.
import t from 'tap';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Broker, isBulkheadError, type BulkheadError } from 'bulkhead';
import { startBroker } from 'bulkhead/testing';
import { FIXTURES, rejection, dead } from './helpers.js';


const echoManifest = { name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo', launch: { throttleMs: 0 } };

t.test('kill -9 during 100 in-flight calls: all 100 reject ERR_INTERRUPTED, then calls succeed', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [echoManifest] });
  t.teardown(() => kit.close());
  const echo = kit.broker.connect('echo');
  const first = await echo.call('echo', { text: 'up' });
  const interrupted = new Promise<BulkheadError>((resolve) => echo.on('interrupted', resolve));
  const calls = Array.from({ length: 100 }, () => echo.call('sleep', { ms: 60_000 }));
  await echo.call('whoami', {}); // all 100 are now in the helper
  t.equal(kit.broker.status('echo').inFlight, 100);
  const exit = await kit.crash('echo');
  t.equal(exit.signal, 'SIGKILL');
  const results = await Promise.allSettled(calls);
  const codes = new Set(results.map((r) => (r.status === 'rejected' ? (r.reason as BulkheadError).code : 'resolved')));
  t.same([...codes], ['ERR_INTERRUPTED'], 'every call rejected with ERR_INTERRUPTED');
  const sample = (results[0] as PromiseRejectedResult).reason as BulkheadError;
  t.equal(sample.data['signal'], 'SIGKILL', 'the error carries the signal');
  t.equal(sample.data['service'], 'echo', 'and the service name (not the protocol name)');
  t.equal((await interrupted).code, 'ERR_INTERRUPTED', 'the connection emitted interrupted');
  t.equal(kit.status('echo').state, 'idle');

  const again = await echo.call('echo', { text: 'back' });
  t.equal(again.text, 'back');
  t.not(again.pid, first.pid, 'a new helper answered');
  t.equal(kit.status('echo').launches, 2);
  t.equal(kit.status('echo').crashes, 1);
});

t.test('a helper that crashes at start trips the crash-loop breaker', async (t) => {
  const kit = await startBroker({
    root: FIXTURES,
    services: [{ name: 'doomed', entry: './crash-at-start.js', protocol: 'com.test.echo', launch: { throttleMs: 5, maxRestarts: 3, restartWindowMs: 60_000 } }],
  });
  t.teardown(() => kit.close());
  const doomed = kit.broker.connect('doomed');
  const invalidated = new Promise<BulkheadError>((resolve) => doomed.on('invalidated', resolve));
  const codes: string[] = [];
  for (let i = 0; i < 3; i++) codes.push((await rejection(doomed.call('echo', { text: 'x' }))).code);
  t.same(codes, ['ERR_LAUNCH_FAILED', 'ERR_LAUNCH_FAILED', 'ERR_LAUNCH_FAILED']);
  const invalid = await invalidated;
  t.equal(invalid.code, 'ERR_INVALIDATED');
  t.equal(invalid.data['exitCode'], 3, 'carries the last exit code');
  t.match(invalid.data['stderrTail'], ['crash-at-start: cannot open config file /nonexistent.conf'], 'carries the stderr tail');
  t.equal(kit.status('doomed').state, 'failed');
  t.equal(kit.status('doomed').launches, 3);

  const after = await rejection(doomed.call('echo', { text: 'x' }));
  t.equal(after.code, 'ERR_INVALIDATED', 'no further launches');
  const fresh = await rejection(kit.broker.connect('doomed').call('echo', { text: 'x' }));
  t.equal(fresh.code, 'ERR_INVALIDATED', 'new connections are invalid too');
  t.equal(kit.status('doomed').launches, 3);

  kit.broker.reset('doomed');
  t.equal(kit.status('doomed').state, 'idle');
  t.equal((await rejection(kit.broker.connect('doomed').call('echo', { text: 'x' }))).code, 'ERR_LAUNCH_FAILED', 'reset allows a new launch');
  t.equal(kit.status('doomed').launches, 4);
});

t.test('relaunch is throttled: a call right after a crash waits in state "throttled"', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [{ ...echoManifest, launch: { throttleMs: 2000 } }] });
  t.teardown(() => kit.close());
  const echo = kit.broker.connect('echo');
  await echo.call('echo', { text: 'x' });
  const states: string[] = [];
  kit.broker.on('state', (_name, state) => states.push(state));
  await kit.crash('echo');
  await echo.call('echo', { text: 'y' });
  t.same(states, ['idle', 'throttled', 'launching', 'running'], 'the relaunch waited out the throttle');
});

t.test('protocol mismatch at hello is ERR_PROTOCOL_MISMATCH', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [{ name: 'wrong', entry: './wrong-protocol.js', protocol: 'com.test.echo', launch: { throttleMs: 0 } }] });
  t.teardown(() => kit.close());
  t.equal((await rejection(kit.broker.connect('wrong').call('echo', { text: 'x' }))).code, 'ERR_PROTOCOL_MISMATCH');

  // Same name, but the protocol file changed after the broker loaded it: the schema hashes differ.
  const root = mkdtempSync(join(tmpdir(), 'bulkhead-mismatch-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  cpSync(FIXTURES, root, { recursive: true });
  const broker = new Broker({ root });
  t.teardown(() => broker.close());
  broker.register({ ...echoManifest, entry: join(FIXTURES, 'echo-service.js') });
  const file = join(root, 'protocols', 'com.test.echo.json');
  writeFileSync(file, readFileSync(file, 'utf8').replace('"version": "1.0.0"', '"version": "1.1.0"'));
  const err = await rejection(broker.connect('echo').call('echo', { text: 'x' }));
  t.equal(err.code, 'ERR_PROTOCOL_MISMATCH');
  t.equal((err.data['actual'] as { version: string }).version, '1.1.0');
});

t.test('close() says goodbye: in-flight calls finish and helpers exit 0', async (t) => {
  const broker = new Broker({ root: FIXTURES });
  broker.register(echoManifest);
  const echo = broker.connect('echo');
  await echo.call('echo', { text: 'x' });
  const exits: Array<{ code: number | null; requested: boolean }> = [];
  broker.on('exit', (_n, info) => exits.push({ code: info.code, requested: info.requested }));
  const slow = echo.call('sleep', { ms: 50 });
  const invalidated = new Promise<BulkheadError>((resolve) => echo.on('invalidated', resolve));
  await broker.close();
  t.same(await slow, { slept: 50 }, 'the in-flight call was answered');
  t.same(exits, [{ code: 0, requested: true }]);
  t.equal((await invalidated).code, 'ERR_CLOSED');
  t.equal((await rejection(echo.call('echo', { text: 'x' }))).code, 'ERR_CLOSED');
  t.throws(() => broker.connect('echo'), { code: 'ERR_CLOSED' });
});

t.test('a helper that ignores goodbye and SIGTERM is SIGKILLed after exitTimeoutMs', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [{ name: 'stubborn', entry: './stubborn-service.js', protocol: 'com.test.echo', launch: { exitTimeoutMs: 150 } }] });
  const stubborn = kit.broker.connect('stubborn');
  await stubborn.call('echo', { text: 'x' });
  const hung = stubborn.call('sleep', { ms: 1 });
  await stubborn.call('echo', { text: 'y' });
  const exit = kit.nextExit('stubborn');
  await kit.close();
  const info = await exit;
  t.equal(info.signal, 'SIGKILL');
  t.ok(info.stderrTail.includes('stubborn: ignoring SIGTERM'), 'SIGTERM came first');
  t.equal((await rejection(hung)).code, 'ERR_INTERRUPTED');
});

t.test('helpers exit when the broker process is SIGKILLed (fd 3 closes)', async (t) => {
  const host = spawn(process.execPath, [join(FIXTURES, 'host-app.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => host.kill('SIGKILL'));
  const lines = createInterface({ input: host.stdout! });
  const firstLine = await new Promise<string>((resolve) => lines.once('line', resolve));
  const { helperPid } = JSON.parse(firstLine) as { helperPid: number };
  t.doesNotThrow(() => process.kill(helperPid, 0), 'helper runs');
  host.kill('SIGKILL');
  await new Promise((resolve) => host.once('exit', resolve));
  // Not our child, so no exit event to await: poll its state, bounded (a zombie has exited).
  t.equal(await dead(helperPid, 30_000), true, 'the orphaned helper exited by itself');
});
