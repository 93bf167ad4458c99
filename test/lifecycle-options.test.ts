/**
 * Lifecycles and options of the two broker handles an app holds, `Broker` and
 * `RemoteBroker` (connectTo()): options are checked at construction with messages
 * that name the option (an unknown key is refused, with a did-you-mean), close() is
 * idempotent and memoised, `await using` closes, and a RemoteBroker forgets the
 * connections that were closed. None of this launches a process or opens a socket.
 */
import t from 'tap';
import { join } from 'node:path';
import { Broker, connectTo, RemoteBroker, type BrokerOptions } from 'bulkhead';
import { expectCode, FIXTURES } from './helpers.js';

const identity = { name: 'app', certPem: 'CERT', keyPem: 'KEY' };
const protocolsDir = join(FIXTURES, 'protocols');

t.test('Broker options: each bad value is refused naming its option', async (t) => {
  const cases: Array<[string, unknown, string]> = [
    ['a typo', { root: FIXTURES, protocolDir: 'protocols' }, 'protocolDir'],
    ['options that are not an object', 'fixtures', 'options'],
    ['null options', null, 'options'],
    ['root that is not a directory', { root: join(FIXTURES, 'echo-service.js') }, 'root'],
    ['maxFrameBytes too small', { root: FIXTURES, maxFrameBytes: 10 }, 'maxFrameBytes'],
    ['maxFrameBytes not an integer', { root: FIXTURES, maxFrameBytes: 1.5 }, 'maxFrameBytes'],
    ['protocolsDir not a string', { root: FIXTURES, protocolsDir: 7 }, 'protocolsDir'],
    ['nodePath empty', { root: FIXTURES, nodePath: '' }, 'nodePath'],
    ['clock without setTimer', { root: FIXTURES, clock: { now: () => 0 } }, 'clock'],
    ['verifyCode not a function', { root: FIXTURES, verifyCode: true }, 'verifyCode'],
    ['stateDir not a string', { root: FIXTURES, stateDir: ['x'] }, 'stateDir'],
  ];
  for (const [what, options, option] of cases) {
    const err = expectCode(t, () => new Broker(options as BrokerOptions), 'ERR_INVALID_OPTION', what);
    t.equal(err?.data['option'], option, `${what}: data.option is ${option}`);
    t.match(err?.message, option === 'options' ? /options must be an object/ : new RegExp(option), `${what}: the message names it`);
  }
  const typo = expectCode(t, () => new Broker({ root: FIXTURES, protocolDir: 'p' } as BrokerOptions), 'ERR_INVALID_OPTION');
  t.match(typo?.message, /unknown option "protocolDir"\. Did you mean "protocolsDir"\?/);
  // Positive control: every documented option together is accepted.
  const ok = new Broker({ root: FIXTURES, protocolsDir: 'protocols', profilesDir: 'sandbox-profiles', maxFrameBytes: 4096, nodePath: process.execPath, stateDir: '.bulkhead', verifyCode: () => undefined });
  t.equal(ok.maxFrameBytes, 4096);
  await ok.close();
});

t.test('Broker: close() is memoised, await using closes', async (t) => {
  const broker = new Broker({ root: FIXTURES });
  const first = broker.close();
  t.equal(broker.close(), first, 'the same promise every time');
  await first;
  expectCode(t, () => broker.connect('echo'), 'ERR_CLOSED');
  let scoped: Broker | undefined;
  {
    await using b = new Broker({ root: FIXTURES });
    scoped = b;
  }
  expectCode(t, () => scoped?.connect('echo'), 'ERR_CLOSED', 'closed at scope end');
});

t.test('RemoteBroker options: socket path, identity and options are checked, naming what is wrong', async (t) => {
  const cases: Array<[string, () => unknown, string]> = [
    ['an empty socket path', () => connectTo('', identity), 'socketPath'],
    ['no identity', () => connectTo('/tmp/s.sock', undefined as unknown as typeof identity), 'identity'],
    ['an identity without its key', () => connectTo('/tmp/s.sock', { name: 'app', certPem: 'CERT' } as typeof identity), 'identity.keyPem'],
    ['a typo in options', () => connectTo('/tmp/s.sock', identity, { protocolDir: protocolsDir } as object), 'protocolDir'],
    ['protocolsDir not a string', () => new RemoteBroker('/tmp/s.sock', identity, { protocolsDir: 3 as unknown as string }), 'protocolsDir'],
  ];
  for (const [what, make, option] of cases) {
    const err = expectCode(t, make, 'ERR_INVALID_OPTION', what);
    t.equal(err?.data['option'], option, `${what}: data.option is ${option}`);
  }
  t.match(expectCode(t, cases[3]![1], 'ERR_INVALID_OPTION')?.message, /Did you mean "protocolsDir"\?/);
  t.equal(connectTo('rel.sock', identity, { protocolsDir }).socketPath, join(process.cwd(), 'rel.sock'), 'a relative socket path resolves (positive control)');
});

t.test('RemoteBroker: closed connections are forgotten; close() is memoised; await using closes', async (t) => {
  const remote = connectTo('/tmp/bulkhead-no-daemon.sock', identity, { protocolsDir });
  const connections = [1, 2, 3].map(() => remote.connect('echo', { protocol: 'com.test.echo' }));
  t.equal(remote.openConnections, 3);
  await connections[0]!.close();
  connections[1]!.destroy();
  t.equal(remote.openConnections, 1, 'the two closed connections left the set');
  for (let i = 0; i < 100; i++) await remote.connect('echo', { protocol: 'com.test.echo' }).close();
  t.equal(remote.openConnections, 1, 'a hundred connect/close cycles leave nothing behind');
  const first = remote.close();
  t.equal(remote.close(), first, 'the same promise every time');
  await first;
  t.equal(remote.openConnections, 0);
  expectCode(t, () => remote.connect('echo', { protocol: 'com.test.echo' }), 'ERR_CLOSED');
  let scoped: RemoteBroker | undefined;
  {
    await using r = connectTo('/tmp/bulkhead-no-daemon.sock', identity, { protocolsDir });
    r.connect('echo', { protocol: 'com.test.echo' });
    scoped = r;
  }
  t.equal(scoped?.openConnections, 0, 'closed at scope end');
  expectCode(t, () => scoped?.connect('echo', { protocol: 'com.test.echo' }), 'ERR_CLOSED');
});

t.test('connect() options: an unknown key (a typo such as `timeout`) or a bad protocol name is refused, naming it', async (t) => {
  const broker = new Broker({ root: FIXTURES });
  t.teardown(() => broker.close());
  broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' });
  const typo = expectCode(t, () => broker.connect('echo', { timeout: 5000 } as object), 'ERR_INVALID_OPTION', 'Broker.connect');
  t.equal(typo?.data['option'], 'timeout');
  t.match(typo?.message, /connect\("echo", options\): unknown option "timeout"\. Did you mean "timeoutMs"\?/);
  const remote = connectTo('/tmp/bulkhead-no-daemon.sock', identity, { protocolsDir });
  t.teardown(() => remote.close());
  t.equal(expectCode(t, () => remote.connect('echo', { protocl: 'com.test.echo' } as object), 'ERR_INVALID_OPTION', 'RemoteBroker.connect')?.data['option'], 'protocl');
  t.equal(expectCode(t, () => remote.connect('echo', { protocol: 7 as unknown as string }), 'ERR_INVALID_OPTION', 'protocol not a string')?.data['option'], 'protocol');
  // Positive controls: the documented options are accepted, and nothing was opened by the refusals.
  t.equal(broker.connect('echo', { timeoutMs: 5000 }).service, 'echo');
  t.equal(remote.openConnections, 0, 'a refused connect() left nothing behind');
  t.equal(remote.connect('echo', { protocol: 'com.test.echo', timeoutMs: 5000 }).service, 'echo');
});
