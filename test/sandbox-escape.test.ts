// Escape attempts through the real broker: for each shipped profile a helper
// tries to leave its sandbox and the test asserts the exact failure, plus the
// positive side (what the profile grants works).
import t, { type Test } from 'tap';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isBulkheadError, type BulkheadError } from 'bulkhead';
import { DEFAULT_UID_RANGE, probeHost } from '../lib/sandbox/index.js';
import { startBroker, type TestBroker } from 'bulkhead/testing';
import { FIXTURES, rejection } from './helpers.js';

interface Attempt { ok: boolean; code: string | null; value?: unknown }

const isRoot = process.getuid?.() === 0;
const PROTOCOL = 'com.test.sandbox-escape';
const ENTRY = './sandbox/escape-service.js';
const ADDON = join(FIXTURES, '..', '..', 'node_modules', 'cbor-extract', 'build', 'Release', 'extract.node');

function manifest(name: string, sandbox: string, extra: Record<string, unknown> = {}) {
  return { name, entry: ENTRY, protocol: PROTOCOL, sandbox, launch: { throttleMs: 0 }, ...extra };
}


// World-readable files outside every allowlist, so a denial is the sandbox's doing, not Unix permissions'.
const outside = mkdtempSync(join(tmpdir(), 'bulkhead-outside-'));
chmodSync(outside, 0o755);
const secret = join(outside, 'secret.txt');
writeFileSync(secret, 'not for helpers\n', { mode: 0o644 });
const granted = join(outside, 'granted');
mkdirSync(granted, { mode: 0o755 });
writeFileSync(join(granted, 'data.txt'), 'granted data\n', { mode: 0o644 });
t.teardown(() => rmSync(outside, { recursive: true, force: true }));

let server: Server;
let port = 0;
t.before(async () => {
  server = createServer((socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));

// A variable in the broker's env that no profile lists.
const SECRET = 'BULKHEAD_TEST_BROKER_SECRET';
process.env[SECRET] = 'hunter2';

let kit: TestBroker;
t.before(async () => {
  kit = await startBroker({
    root: FIXTURES,
    services: [
      manifest('pure', 'pure-compute'),
      manifest('nonet', 'no-network'),
      manifest('client', 'network-client'),
      manifest('loop', 'sandbox-loopback'),
      manifest('cpu', 'sandbox-cpu'),
    ],
  });
});
t.teardown(() => kit.close());

const call = (service: string, method: string, params: object = {}): Promise<Attempt> => kit.broker.connect(service).call(method, params) as Promise<Attempt>;

/** The escapes every shipped profile refuses, whatever else it grants. */
async function commonEscapes(t: Test, service: string, passed: string[] = []): Promise<void> {
  t.same(await call(service, 'tryRead', { path: '/etc/shadow' }), { ok: false, code: 'ERR_ACCESS_DENIED' }, '/etc/shadow');
  t.same(await call(service, 'tryRead', { path: secret }), { ok: false, code: 'ERR_ACCESS_DENIED' }, 'a world-readable file outside the allowlist');
  t.same(await call(service, 'tryWrite', { path: join(outside, 'planted.txt') }), { ok: false, code: 'ERR_ACCESS_DENIED' }, 'write outside scratch');
  t.same(await call(service, 'tryWrite', { path: join(FIXTURES, 'sandbox', 'planted.js') }), { ok: false, code: 'ERR_ACCESS_DENIED' }, 'write over its own code');
  t.same(await call(service, 'tryAddon', { path: ADDON }), { ok: false, code: 'ERR_DLOPEN_DISABLED' }, 'native addon');
  t.same(await call(service, 'tryBinding'), { ok: false, code: 'ERR_ACCESS_DENIED' }, 'process.binding');
  t.same(await call(service, 'listProcs'), { ok: false, code: 'ERR_ACCESS_DENIED' }, '/proc listing');
  t.same(await call(service, 'signalPid', { pid: process.pid }), { ok: false, code: 'ESRCH' }, 'the broker\'s pid does not exist in its pid namespace');
  // Positive side: the scratch dir is its cwd, HOME and TMPDIR, and writable.
  t.same(await call(service, 'tryWrite', { path: 'note.txt' }), { ok: true, code: null, value: 'note.txt' }, 'write in scratch');
  t.same(await call(service, 'tryRead', { path: 'note.txt' }), { ok: true, code: null, value: 'written by a sandboxed helper\n' }, 'read it back');
  const info = (await kit.broker.connect(service).call('info', {})) as { uid: number; gid: number; cwd: string; home: string; tmpdir: string; envKeys: string[] };
  // A root broker gives each service a uid/gid of its own from the helper range (lib/sandbox/uid-pool.ts).
  if (isRoot) {
    t.ok(info.uid >= DEFAULT_UID_RANGE.first && info.uid < DEFAULT_UID_RANGE.first + DEFAULT_UID_RANGE.count, `uid ${info.uid} is from the helper range`);
    t.equal(info.gid, info.uid, 'gid matches');
  } else {
    t.equal(info.uid, process.getuid!(), 'uid');
    t.equal(info.gid, process.getgid!(), 'gid');
  }
  t.equal(info.home, info.cwd, 'HOME is the scratch dir');
  t.equal(info.tmpdir, join(info.cwd, 'tmp'), 'TMPDIR is inside it');
  // tap's spawn hook adds _TAPJS_* after the plan is made (it wraps child_process.spawn in this process); bwrap sets PWD.
  const keys = info.envKeys.filter((k) => !k.startsWith('_TAPJS_') && k !== 'PWD');
  const expected = ['BULKHEAD_CODE_CACHE', 'BULKHEAD_HEARTBEAT_MS', 'BULKHEAD_MAX_FRAME_BYTES', 'BULKHEAD_MAX_IN_FLIGHT', 'BULKHEAD_MAX_QUEUED', 'BULKHEAD_PROTOCOL_FILE', 'BULKHEAD_RUNTIME', 'BULKHEAD_VALIDATORS', 'HOME', 'NODE_COMPILE_CACHE', 'PATH', 'TMPDIR', ...passed.filter((k) => process.env[k] !== undefined)].sort();
  t.same(keys, expected, 'only bulkhead\'s variables and the profile\'s allowlist reach the helper');
  t.notOk(keys.includes(SECRET), 'the broker\'s secret did not leak');
}

t.test('pure-compute: nothing but its own code', async (t) => {
  await commonEscapes(t, 'pure');
  t.same(await call('pure', 'tryConnect', { host: '127.0.0.1', port }), { ok: false, code: 'EPERM' }, 'TCP to the test\'s loopback server: no AF_INET socket (seccomp)');
  t.same(await call('pure', 'tryListen'), { ok: false, code: 'EPERM' }, 'not even a socket to listen on');
  t.same(await call('pure', 'trySpawn'), { ok: false, code: 'ERR_ACCESS_DENIED' }, 'spawn /bin/true');
  t.same(await call('pure', 'tryWorker'), { ok: false, code: 'ERR_ACCESS_DENIED' }, 'worker thread');
  t.same(await call('pure', 'openMany', { max: 1000 }), { ok: false, code: 'EMFILE' }, 'RLIMIT_NOFILE 64');
  const report = kit.broker.status('pure').sandbox!;
  t.equal(report.profile, 'pure-compute');
  t.same(report.rules.filter((r) => r.unenforced), [], 'every rule is enforced on this host');
  t.same(report.rules.find((r) => r.rule === 'fs.read')?.layers, ['bubblewrap:mountns', 'node:permission']);
});

t.test('pure-compute: allocating past the memory limit kills the helper, the broker names the limit, and the next call relaunches', async (t) => {
  await call('pure', 'info');
  const launches = kit.broker.status('pure').launches;
  const err = await rejection(call('pure', 'allocate', { mib: 2048 }));
  t.equal(err.code, 'ERR_INTERRUPTED');
  const exit = kit.broker.status('pure').lastExit!;
  t.match(exit.reason, /^memory limit \(512 MiB\)/, 'reason names the limit');
  t.equal(exit.requested, false);
  t.same(await call('pure', 'tryWrite', { path: 'after.txt' }), { ok: true, code: null, value: 'after.txt' }, 'relaunched');
  t.equal(kit.broker.status('pure').launches, launches + 1);
});

t.test('no-network: children and workers run, but inside the sandbox; no network', async (t) => {
  await commonEscapes(t, 'nonet', ['LANG', 'LC_ALL', 'TZ']);
  t.same(await call('nonet', 'tryConnect', { host: '127.0.0.1', port }), { ok: false, code: 'EPERM' });
  t.same(await call('nonet', 'trySpawn'), { ok: true, code: null, value: 0 }, 'spawn /bin/true works');
  t.same(await call('nonet', 'tryWorker'), { ok: true, code: null, value: 'hi' }, 'a worker works');
  t.same(await call('nonet', 'trySpawn', { file: '/usr/sbin/nologin-not-here' }), { ok: false, code: 'ENOENT' }, 'only its own view of the fs');
});

t.test('network-client: reaches the network, nothing else', async (t) => {
  await commonEscapes(t, 'client', ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'TZ']);
  t.same(await call('client', 'tryConnect', { host: '127.0.0.1', port }), { ok: true, code: null, value: 'connected' }, 'TCP to the test\'s server');
  t.same(await call('client', 'trySpawn'), { ok: false, code: 'ERR_ACCESS_DENIED' });
  t.same(await call('client', 'tryWorker'), { ok: false, code: 'ERR_ACCESS_DENIED' });
  // Its own network namespace connected by pasta where the host has it (test/sandbox-netns.test.ts), else the host's.
  const pasta = (await probeHost()).pasta !== null;
  t.same(kit.broker.status('client').sandbox!.rules.find((r) => r.rule === 'network')?.layers, pasta ? ['bubblewrap:netns', 'pasta'] : [], 'network: full');
});

t.test('loopback: its own loopback works, the host\'s is another namespace', async (t) => {
  t.same(await call('loop', 'tryConnect', { host: '127.0.0.1', port }), { ok: false, code: 'ECONNREFUSED' }, 'nothing listens on the sandbox\'s own 127.0.0.1');
  t.same(await call('loop', 'tryListen'), { ok: true, code: null, value: 'connected' }, 'listen + connect to itself');
  t.same(await call('loop', 'tryRead', { path: '/etc/shadow' }), { ok: false, code: 'ERR_ACCESS_DENIED' });
});

t.test('CPU time limit: SIGXCPU, reported as the reason', async (t) => {
  const err = await rejection(call('cpu', 'spin', { ms: 20_000 }));
  t.equal(err.code, 'ERR_INTERRUPTED');
  t.equal(kit.broker.status('cpu').lastExit?.reason, 'CPU time limit (1 s)');
});

t.test('fs-reader: reads the granted dir (manifest sandboxPaths.data), nothing else', async (t) => {
  const reader = await startBroker({ root: FIXTURES, services: [manifest('reader', 'fs-reader', { sandboxPaths: { data: granted } })] });
  t.teardown(() => reader.close());
  const rcall = (method: string, params: object = {}) => reader.broker.connect('reader').call(method, params) as Promise<Attempt>;
  t.same(await rcall('tryRead', { path: join(granted, 'data.txt') }), { ok: true, code: null, value: 'granted data\n' }, 'granted file');
  t.same(await rcall('tryRead', { path: granted, dir: true }), { ok: true, code: null, value: 1 }, 'granted dir listing');
  t.same(await rcall('tryWrite', { path: join(granted, 'x.txt') }), { ok: false, code: 'ERR_ACCESS_DENIED' }, 'granted read-only');
  t.same(await rcall('tryRead', { path: secret }), { ok: false, code: 'ERR_ACCESS_DENIED' }, 'its sibling is not granted');
  t.same(await rcall('tryRead', { path: '/etc/shadow' }), { ok: false, code: 'ERR_ACCESS_DENIED' });
  t.same(await rcall('tryConnect', { host: '127.0.0.1', port }), { ok: false, code: 'EPERM' });
});
