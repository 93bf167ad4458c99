// Compatible evolution at hello (issue 16), in daemon mode, where clients and services are
// deployed separately: a client holding its own older copy of the protocol calls a newer
// service (streams included, through the daemon's routing), a client whose copy differs in
// a breaking way is refused with ERR_PROTOCOL_MISMATCH naming the first breaking change.
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../lib/daemon/daemon.js';
import { RemoteBroker } from '../lib/daemon/remote-broker.js';
import type { ProtocolDocument } from '../lib/protocol/document.js';
import { FIXTURES, rejection, runCli } from './helpers.js';
import { seedStateDir, sharedIdentity } from './shared-ca.js';

const work = mkdtempSync(join(tmpdir(), 'bulkhead-evolution-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

const NAME = 'com.test.streams';
const current = JSON.parse(readFileSync(join(FIXTURES, 'protocols', `${NAME}.json`), 'utf8')) as ProtocolDocument;
const copy = (): ProtocolDocument => JSON.parse(JSON.stringify(current)) as ProtocolDocument;
type Obj = Record<string, unknown> & { properties: Record<string, Record<string, unknown>>; required?: string[] };
const schema = (s: unknown) => s as Obj;

/** An older version the service has since evolved from compatibly. */
function olderCompatible(): ProtocolDocument {
  const old = copy();
  old.version = '0.9.0';
  // The service since added methods and an event; the old client knows none of them.
  delete old.methods['upload'];
  delete old.events;
  // The service since widened what it receives: old params were narrower.
  schema(old.methods['count']!.params).properties['n']!['maximum'] = 1_000_000;
  schema(old.methods['count']!.params)['additionalProperties'] = false;
  old.methods['sum']!.accepts = { type: 'integer' };
  // ...and narrowed what it sends: old results and items were wider.
  schema(old.methods['count']!.result).properties['count'] = { type: 'number' };
  schema(old.methods['count']!.yields).properties['i'] = { type: ['integer', 'string'] };
  return old;
}

function writeProtocols(dir: string, doc: ProtocolDocument): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${NAME}.json`), JSON.stringify(doc, null, 2));
  return dir;
}

const config = join(work, 'bulkhead.json');
writeFileSync(config, JSON.stringify({ root: FIXTURES, services: [{ name: 'streams', entry: './streams-service.js', protocol: NAME, clients: ['*'], launch: { throttleMs: 0 } }] }));
await seedStateDir(join(work, 'state')); // the run's test CA (test/shared-ca.ts): no new keys for this daemon
const daemon = await Daemon.start({ config, settings: { socketPath: join(work, 'd.sock'), stateDir: join(work, 'state') }, log: () => {} });
t.teardown(() => daemon.close());
const app = await sharedIdentity('app');
const client = (protocolsDir: string, direct = false) => {
  const remote = new RemoteBroker(daemon.socketPath, app, { protocolsDir, direct });
  t.teardown(() => remote.close());
  return remote.connect('streams', { protocol: NAME });
};

t.test('protocol diff: the older copy is a compatible predecessor of the service\'s protocol', async (t) => {
  const oldDir = writeProtocols(join(work, 'old-check'), olderCompatible());
  const run = await runCli(['protocol', 'diff', join(oldDir, `${NAME}.json`), join(FIXTURES, 'protocols', `${NAME}.json`)]);
  t.equal(run.code, 0, run.stdout + run.stderr);
  t.match(run.stdout, /compatible {2}\/methods\/upload {2}method "upload" added/);
  t.match(run.stdout, /compatible {2}\/events\/tick {2}event "tick" added/);
  t.notMatch(run.stdout, /breaking /);
});

for (const direct of [false, true]) {
t.test(`a daemon client with an older compatible protocol calls the newer service${direct ? ' over a direct channel (the helper judges the hello)' : ''}: calls and streams both ways`, async (t) => {
  const conn = client(writeProtocols(join(work, direct ? 'old-direct' : 'old'), olderCompatible()), direct);
  const items: unknown[] = [];
  const stream = conn.stream('count', { n: 2000 });
  for await (const item of stream) items.push(item);
  t.equal(items.length, 2000, 'a stream of 2000 items through the daemon');
  t.same(daemon.connectionStatus().clients.filter((c) => c.service === 'streams' && c.pid === process.pid).map((c) => c.path), [direct ? 'direct' : 'routed'], `the connection is ${direct ? 'direct' : 'routed'}`);
  t.same(items[1999], { i: 1999 });
  t.same(await stream.result, { count: 2000 });
  t.same(await conn.stream('sum', {}, { input: [1, 2, 3, 4] }).result, { sum: 10, count: 4 }, 'caller → service items through the daemon');
  const echoed: unknown[] = [];
  for await (const x of conn.stream('echoItems', {}, { input: Array.from({ length: 600 }, (_, i) => i) })) echoed.push(x);
  t.equal(echoed.length, 600, 'both directions at once, past the first window');
  // The service emits "tick", which the old client's protocol does not declare: dropped quietly.
  const errors: unknown[] = [];
  conn.on('error', (e) => errors.push(e));
  let ticks = 0;
  conn.on('event', () => ticks++);
  t.same((await conn.call('flood', { n: 50 }) as { sent: number }).sent, 50, 'a call that emits events the old client does not know');
  t.same([ticks, errors.length], [0, 0], 'the unknown events reach no listener and raise no error');
  const produced = await conn.call('produced', {}) as { openStreams: number };
  t.equal(produced.openStreams, 0, 'no stream left open in the helper');
  await conn.close();
});
}

// The outcome and its order, no time bound (a hang fails on tap's timeout): the error that crosses the daemon is the
// helper's own end (the kill's signal, as its exit reports it), not a deadline or a closed connection, and it comes
// before the relaunch.
t.test('through the daemon: SIGKILL of the helper mid-stream ends the stream with ERR_INTERRUPTED and the kill\'s signal, before the relaunch', async (t) => {
  const conn = client(writeProtocols(join(work, 'old-kill'), olderCompatible()));
  const order: string[] = [];
  let exitSignal: string | null | undefined;
  const subscriptions = [
    daemon.broker.on('launch', (service) => service === 'streams' && order.push('launch')),
    daemon.broker.on('exit', (service, info) => {
      if (service === 'streams') exitSignal = info.signal;
    }),
  ];
  t.teardown(() => subscriptions.forEach((s) => s.dispose()));
  let got = 0;
  const error = await (async () => {
    for await (const _ of conn.stream('count', { n: 1_000_000 })) {
      if (++got === 100) {
        const pid = daemon.broker.status('streams').pid;
        if (pid === null) throw new Error('no helper pid');
        process.kill(pid, 'SIGKILL');
      }
    }
    return undefined;
  })().catch((e: unknown) => e as { code?: string; data?: Record<string, unknown> });
  order.push(`error ${error?.code}`);
  t.same({ code: error?.code, signal: error?.data?.['signal'], service: error?.data?.['service'] }, { code: 'ERR_INTERRUPTED', signal: 'SIGKILL', service: 'streams' }, 'the iterator throws ERR_INTERRUPTED carrying the helper\'s end');
  let n = 0;
  for await (const _ of conn.stream('count', { n: 5 })) n++;
  t.equal(n, 5, 'the next stream relaunches the helper');
  t.equal(exitSignal, 'SIGKILL', 'the helper\'s exit was the kill');
  t.same(order, ['error ERR_INTERRUPTED', 'launch'], 'the error came before the relaunch');
  await conn.close();
});

for (const direct of [false, true]) {
t.test(`a daemon client whose copy has a method the service lacks is refused, naming it${direct ? ' (direct channel)' : ''}`, async (t) => {
  const doc = copy();
  doc.methods['rewind'] = { params: { type: 'object' }, result: { type: 'null' } };
  const conn = client(writeProtocols(join(work, direct ? 'extra-method-direct' : 'extra-method'), doc), direct);
  const err = await rejection(conn.call('produced', {}));
  t.equal(err.code, 'ERR_PROTOCOL_MISMATCH');
  t.equal(err.data['pointer'], '/methods/rewind', err.message);
  t.match(err.message, /method "rewind" removed/);
});
}

t.test('a daemon client whose result schema is narrower than what the service sends is refused', async (t) => {
  const doc = copy();
  schema(doc.methods['count']!.result).properties['count'] = { type: 'integer', maximum: 10 };
  const conn = client(writeProtocols(join(work, 'narrow-result'), doc));
  const err = await rejection(conn.call('produced', {}));
  t.equal(err.code, 'ERR_PROTOCOL_MISMATCH');
  t.equal(err.data['pointer'], '/methods/count/result/properties/count/maximum', err.message);
});

t.test('a daemon client that sends params the service would refuse is refused at hello', async (t) => {
  const doc = copy();
  schema(doc.methods['count']!.params).properties['n'] = { type: 'number' };
  const conn = client(writeProtocols(join(work, 'wide-params'), doc));
  const err = await rejection(conn.call('produced', {}));
  t.equal(err.code, 'ERR_PROTOCOL_MISMATCH');
  t.equal(err.data['pointer'], '/methods/count/params/properties/n/type', err.message);
});
