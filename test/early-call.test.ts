// The first call of a cold launch rides with the broker's hello (lib/broker/early-call.ts): it is sent once the helper is
// spawned, before the helper's hello came back. What must still hold, each with its positive control: the call reaches the
// helper ahead of the helper's hello; no answer is taken before that hello matched; a helper whose protocol differs never
// runs the call; a helper that never says hello fails the call with the launch's own error.
import t from 'tap';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from 'bulkhead';
import { FIXTURES, rejection } from './helpers.js';

const manifest = (name: string, entry: string, launch: Record<string, number> = {}) => ({ name, entry, protocol: 'com.test.echo', launch: { throttleMs: 0, ...launch } });

t.test('the first call reaches a launching helper before its hello (control: a helper that says hello answers it)', async (t) => {
  const broker = new Broker({ root: FIXTURES });
  t.teardown(() => broker.close());
  broker.register(manifest('echo', './echo-service.js'));
  broker.register(manifest('raw', './early-call-raw.js', { launchTimeoutMs: 20_000 }));
  t.equal(((await broker.connect('echo').call('echo', { text: 'hi' })) as { text: string }).text, 'hi', 'control: a cold launch answers its first call');
  // It exits 3 when a call arrives before it said anything; had the call waited for its hello (which never comes), the
  // launch would time out and kill it instead.
  const err = await rejection(broker.connect('raw').call('echo', { text: 'x' }));
  t.equal(err.code, 'ERR_LAUNCH_FAILED');
  t.equal(err.data['exitCode'], 3, 'the helper saw the call before it said hello');
});

t.test('an answer that comes before the helper\'s hello is refused, never delivered', async (t) => {
  const broker = new Broker({ root: FIXTURES });
  t.teardown(() => broker.close());
  broker.register(manifest('forger', './early-call-raw-reply.js', { launchTimeoutMs: 20_000 }));
  const outcome = await broker.connect('forger').call('echo', { text: 'x' }).then((value) => ({ value }), (err: unknown) => ({ err: err as { code: string } }));
  t.notOk('value' in outcome, 'the forged reply did not resolve the call');
  t.equal((outcome as { err: { code: string } }).err.code, 'ERR_PROTOCOL_MISMATCH', 'the call fails: the service answered before its hello');
});

t.test('a helper whose protocol differs never runs the call that rode with the hello (control: the same helper runs it)', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'bulkhead-early-call-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  cpSync(FIXTURES, root, { recursive: true });
  const control = new Broker({ root });
  t.teardown(() => control.close());
  // The entry in the fixtures dir (its `bulkhead` package resolves there), the protocol from the copy.
  const witness = manifest('witness', join(FIXTURES, 'early-call-witness.js'));
  control.register(witness);
  await control.connect('witness').call('echo', { text: join(root, 'ran-control') });
  t.ok(existsSync(join(root, 'ran-control')), 'control: the handler ran and left its file');
  await control.close();

  const broker = new Broker({ root });
  t.teardown(() => broker.close());
  broker.register(witness);
  // The protocol file changes after the broker loaded it: the helper reads the new one, so the schema hashes differ.
  const file = join(root, 'protocols', 'com.test.echo.json');
  writeFileSync(file, readFileSync(file, 'utf8').replace('"version": "1.0.0"', '"version": "1.1.0"'));
  const err = await rejection(broker.connect('witness').call('echo', { text: join(root, 'ran-mismatch') }));
  t.equal(err.code, 'ERR_PROTOCOL_MISMATCH');
  t.notOk(existsSync(join(root, 'ran-mismatch')), 'the call never ran in the mismatched helper');
});

t.test('a helper that never says hello fails the call with the launch timeout\'s own error', async (t) => {
  const broker = new Broker({ root: FIXTURES });
  t.teardown(() => broker.close());
  broker.register(manifest('silent', './early-call-silent.js', { launchTimeoutMs: 500 }));
  const err = await rejection(broker.connect('silent').call('echo', { text: 'x' }));
  t.equal(err.code, 'ERR_LAUNCH_FAILED');
  t.equal(err.data['launchTimeoutMs'], 500, 'the launch timeout\'s error, not a bare interruption');
});
