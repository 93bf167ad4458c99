// network "full" in a network namespace of the helper's own, connected by
// pasta: tried for real against servers this test runs on the host. The
// helper dials the host's abstract socket (must reach nothing), binds an
// abstract name the host then dials (must reach nothing, and the host can
// take the name for itself), and, as the positive control that the helper
// ran with a working network, reaches a TCP server on the host's 127.0.0.1.
// Without pasta the same squat succeeds (so these tests can fail), a strict
// profile refuses to launch, and a pasta that cannot attach fails the launch
// instead of running the helper cut off.
import t from 'tap';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { startBroker, type TestBroker } from 'bulkhead/testing';
import { probeHost, setHostProbeOverride } from '../lib/sandbox/index.js';
import { childPid } from '../lib/sandbox/pasta.js';
import { FIXTURES, REPO_ROOT, ourPastas, rejection } from './helpers.js';
import { join } from 'node:path';

interface Attempt { ok: boolean; code: string | null; value?: unknown }

const KOFFI = join(REPO_ROOT, 'node_modules', 'koffi');
const manifest = (name: string, sandbox: string) => ({
  name, entry: './sandbox/kernel-service.js', protocol: 'com.test.sandbox-kernel', sandbox, sandboxPaths: { koffi: KOFFI }, launch: { throttleMs: 0 },
});
const call = (k: TestBroker, service: string, method: string, params: object = {}): Promise<Attempt> => k.broker.connect(service).call(method, params) as Promise<Attempt>;
const rule = (k: TestBroker, service: string, name: string) => k.broker.status(service).sandbox!.rules.find((r) => r.rule === name);

/** Dials an abstract name from the host: what the server said, or the error code. */
function hostDial(name: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ path: `\0${name}` });
    let data = '';
    socket.on('data', (chunk: Buffer) => { data += chunk.toString(); });
    socket.once('end', () => resolve(`said ${data}`));
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

function listen(server: Server, options: { path: string } | { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, resolve);
  });
}

t.test('bubblewrap\'s info block: the child pid once the block is complete', (t) => {
  t.equal(childPid('{\n    "child-pid": 4242'), undefined, 'incomplete');
  t.equal(childPid('{\n    "child-pid": 4242,\n    "net-namespace": 4026532176\n}\n'), 4242);
  t.equal(childPid('{ "child-pid": "1; rm" }'), undefined, 'not a number');
  t.equal(childPid('{ "child-pid": 1 }'), undefined, 'never pid 1 (or less)');
  t.equal(childPid('not json }'), undefined);
  t.end();
});

const probe = await probeHost();
const canPasta = probe.bwrap !== null && probe.pasta !== null;

t.test('network "full" with pasta: abstract sockets of its own, TCP to the host still works', { skip: canPasta ? false : 'needs bubblewrap and pasta (apt-get install -y passt)' }, async (t) => {
  const name = `bulkhead-netns-${process.pid}`;
  const abstract = createServer((s) => s.end('host'));
  await listen(abstract, { path: `\0${name}` });
  t.teardown(() => abstract.close());
  // On the host's loopback before the helper starts: pasta forwards the host's bound ports (-T auto) at its start.
  const tcp = createServer((s) => s.end('tcp from the host'));
  await listen(tcp, { host: '127.0.0.1', port: 0 });
  t.teardown(() => tcp.close());
  const port = (tcp.address() as AddressInfo).port;

  const kit = await startBroker({ root: FIXTURES, services: [manifest('client', 'network-client')] });
  t.teardown(() => kit.close());
  t.same(await call(kit, 'client', 'tcpConnect', { host: '127.0.0.1', port }), { ok: true, code: null, value: 'tcp from the host' }, 'control: a TCP server on the host\'s 127.0.0.1 answers the helper');
  t.same(await call(kit, 'client', 'abstractConnect', { name }), { ok: false, code: 'ECONNREFUSED' }, 'the host\'s abstract socket does not exist in its namespace');

  t.same(await call(kit, 'client', 'abstractListen', { name: `${name}-squat` }), { ok: true, code: null, value: 'listening' }, 'control: it binds abstract names of its own');
  t.equal(await hostDial(`${name}-squat`), 'ECONNREFUSED', 'the host dials the squatted name and reaches nothing');
  const own = createServer((s) => s.end('the host\'s own'));
  await listen(own, { path: `\0${name}-squat` });
  t.teardown(() => own.close());
  t.equal(await hostDial(`${name}-squat`), 'said the host\'s own', 'the host binds that name itself and reaches its own server');

  t.same(rule(kit, 'client', 'network')?.layers, ['bubblewrap:netns', 'pasta']);
  t.same(rule(kit, 'client', 'network.abstractUnix'), { rule: 'network.abstractUnix', layers: ['bubblewrap:netns'], unenforced: false, detail: rule(kit, 'client', 'network.abstractUnix')?.detail });
  t.notOk(rule(kit, 'client', 'isolation')?.layers.includes('landlock:scope-signal'), 'no Landlock pre-exec step any more for "full"');
  t.ok(ourPastas().length > 0, 'pasta runs while the helper does');
  await kit.close();
  t.same(ourPastas(), [], 'no pasta outlives its helper');
});

t.test('control: without pasta, the squat works; best-effort reports the gap, strict refuses to launch', { skip: probe.bwrap !== null && probe.kernel.landlockAbi >= 6 ? false : 'needs bubblewrap and Landlock ABI 6' }, async (t) => {
  setHostProbeOverride((p) => ({ ...p, pasta: null }));
  t.teardown(() => setHostProbeOverride(undefined));
  const name = `bulkhead-netns-weak-${process.pid}`;
  const abstract = createServer((s) => s.end('host'));
  await listen(abstract, { path: `\0${name}` });
  t.teardown(() => abstract.close());
  const kit = await startBroker({ root: FIXTURES, services: [manifest('weak', 'kernel-full-weak'), manifest('strict', 'network-client')] });
  t.teardown(() => kit.close());
  t.same(await call(kit, 'weak', 'abstractConnect', { name }), { ok: false, code: 'EPERM' }, 'Landlock scope still refuses connecting to the host\'s socket');
  t.same(await call(kit, 'weak', 'abstractListen', { name: `${name}-squat` }), { ok: true, code: null, value: 'listening' });
  t.equal(await hostDial(`${name}-squat`), 'said squatted', 'the escape: the host dials the name and reaches the helper (the test above can fail)');
  const report = rule(kit, 'weak', 'network.abstractUnix');
  t.equal(report?.unenforced, true, 'the report says bind is not covered');
  t.same(report?.layers, ['landlock:scope']);
  t.match(String(report?.missing), /^pasta \(apt-get install -y passt\)/);
  t.match(String(report?.detail), /binding is not covered/);
  const err = await rejection(call(kit, 'strict', 'info'));
  t.equal(err.code, 'ERR_SANDBOX_UNENFORCEABLE');
  t.equal(err.data['rule'], 'network.abstractUnix');
  t.match(String(err.data['missing']), /^pasta/);
});

t.test('a pasta that cannot attach fails the launch; the helper never runs cut off', { skip: canPasta ? false : 'needs bubblewrap and pasta' }, async (t) => {
  setHostProbeOverride((p) => ({ ...p, pasta: '/bin/false' }));
  t.teardown(() => setHostProbeOverride(undefined));
  const kit = await startBroker({ root: FIXTURES, services: [manifest('client', 'network-client')] });
  t.teardown(() => kit.close());
  const err = await rejection(call(kit, 'client', 'info'));
  t.equal(err.code, 'ERR_LAUNCH_FAILED');
  t.match(String(err.data['reason']), /^network "full": pasta exited \(code 1\)/);
  t.same(err.data['stderrTail'], [], 'the helper printed nothing: it never started');
});
