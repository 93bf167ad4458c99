// Escapes through the kernel, tried for real: raw system calls from native
// code (koffi, inside test profiles that differ from the shipped ones only by
// `addons: true`, which the seccomp policy does not depend on: asserted
// below, so the filter under test is byte for byte the shipped one), nested
// user namespaces via the real `unshare` binary, the kernel keyring across two
// services, children started from a worker, and abstract Unix sockets against
// a server this test runs on the host. Each refusal has a positive control:
// the same attempt with the layer switched off succeeds, or a kill-mode
// profile dies by SIGSYS, proving the filter (not missing privileges) refused.
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { startBroker, type TestBroker } from 'bulkhead/testing';
import { DEFAULT_UID_RANGE, parseProfile, setHostProbeOverride } from '../lib/sandbox/index.js';
import { compileFilter } from '../lib/sandbox/seccomp.js';
import { FIXTURES, REPO_ROOT, rejection } from './helpers.js';

interface Attempt { ok: boolean; code: string | null; value?: unknown }

const isRoot = process.getuid?.() === 0;
const KOFFI = join(REPO_ROOT, 'node_modules', 'koffi');
const manifest = (name: string, sandbox: string, paths: Record<string, string> = { koffi: KOFFI }) => ({
  name, entry: './sandbox/kernel-service.js', protocol: 'com.test.sandbox-kernel', sandbox, sandboxPaths: paths, launch: { throttleMs: 0 },
});
const AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10, AF_NETLINK = 16, AF_PACKET = 17, AF_VSOCK = 40;
const SOCK_STREAM = 1, SOCK_RAW = 3;
const NETLINK_SOCK_DIAG = 4;

if (process.arch !== 'x64') {
  t.plan(0, 'the raw system-call numbers in the fixture are x86-64');
  process.exit(0);
}

t.afterEach(() => setHostProbeOverride(undefined));

const ABSTRACT = `bulkhead-test-${process.pid}`;
let server: Server;
t.before(async () => {
  server = createServer((socket) => {
    socket.on('error', () => undefined); // the helper hangs up at once; a reset is expected
    socket.end('host');
  });
  await new Promise<void>((resolve) => server.listen({ path: `\0${ABSTRACT}` }, resolve));
});
t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));

let kit: TestBroker;
t.before(async () => {
  kit = await startBroker({
    root: FIXTURES,
    services: [
      manifest('kpure', 'kernel-pure'), manifest('kkids', 'kernel-children'), manifest('kfull', 'kernel-full'),
      manifest('kworkers', 'kernel-workers'), manifest('kkill', 'kernel-kill'),
      manifest('pure', 'pure-compute'), manifest('nonet', 'no-network'), manifest('client', 'network-client'), manifest('reader', 'fs-reader', { data: FIXTURES }),
    ],
  });
});
t.teardown(() => kit.close());

const call = (k: TestBroker, service: string, method: string, params: object = {}): Promise<Attempt> => k.broker.connect(service).call(method, params) as Promise<Attempt>;
const sys = (service: string, name: string, args: object = {}) => call(kit, service, 'syscall', { name, ...args });
const refused = { ok: false, code: 'EPERM' };

t.test('the addon twins compile to the very filter of the shipped profile they stand for', async (t) => {
  const load = (dir: string, name: string) => parseProfile(name, JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')));
  const shipped = join(REPO_ROOT, 'sandbox-profiles');
  const test = join(FIXTURES, 'sandbox-profiles');
  for (const [a, b] of [['pure-compute', 'kernel-pure'], ['no-network', 'kernel-children'], ['network-client', 'kernel-full'], ['fs-reader', 'kernel-pure']] as const) {
    const pa = load(shipped, a);
    const pb = load(test, b);
    for (const execGuard of [false, true]) {
      t.ok(compileFilter(pa, { ...pa.syscalls, execGuard }).bpf.equals(compileFilter(pb, { ...pb.syscalls, execGuard }).bpf), `${b} = ${a}${execGuard ? ' (with the exec guard)' : ''}`);
    }
    t.equal(pa.syscalls.onViolation, pb.syscalls.onViolation, 'and the same exec guard');
  }
});

/** Raw calls every profile refuses, and what it still grants. */
async function kernelEscapes(t: Test, service: string, network: 'none' | 'full'): Promise<void> {
  t.same(await sys(service, 'getpid'), { ok: true, code: null, value: (await sys(service, 'getpid')).value }, 'control: a raw call reaches the kernel');
  t.same(await sys(service, 'unshareNothing'), { ok: true, code: null, value: 0 }, 'control: unshare(0) is allowed (the filter looks at the flags)');
  t.same(await sys(service, 'unshareUser'), refused, 'unshare(CLONE_NEWUSER)');
  t.same(await sys(service, 'setns'), refused, 'setns');
  t.same(await sys(service, 'clone3'), { ok: false, code: 'ENOSYS' }, 'clone3 answers ENOSYS (glibc falls back to clone)');
  t.same(await sys(service, 'addKey', { desc: `k-${service}` }), refused, 'add_key');
  t.same(await sys(service, 'searchKey', { desc: `k-${service}` }), refused, 'keyctl');
  t.same(await sys(service, 'ptrace', { pid: 1 }), refused, 'ptrace');
  t.same(await sys(service, 'vmRead', { pid: process.pid }), refused, 'process_vm_readv of the broker');
  t.same(await sys(service, 'ioUring'), refused, 'io_uring_setup');
  t.same(await sys(service, 'bpf'), refused, 'bpf');
  t.same(await sys(service, 'perf'), refused, 'perf_event_open');
  t.same(await sys(service, 'userfaultfd'), refused, 'userfaultfd');
  t.same(await sys(service, 'mount'), refused, 'mount');
  t.same(await sys(service, 'fsopen'), refused, 'fsopen');
  t.same(await sys(service, 'socket', { family: AF_PACKET, type: SOCK_RAW }), refused, 'AF_PACKET');
  t.same(await sys(service, 'socket', { family: AF_VSOCK, type: SOCK_STREAM }), refused, 'AF_VSOCK');
  t.same(await sys(service, 'socket', { family: AF_NETLINK, type: SOCK_RAW, protocol: NETLINK_SOCK_DIAG }), refused, 'NETLINK_SOCK_DIAG');
  t.equal((await sys(service, 'socket', { family: AF_NETLINK, type: SOCK_RAW, protocol: 0 })).ok, true, 'control: NETLINK_ROUTE (getifaddrs)');
  t.equal((await sys(service, 'socket', { family: AF_UNIX, type: SOCK_STREAM })).ok, true, 'control: AF_UNIX');
  if (network === 'none') {
    t.same(await sys(service, 'socket', { family: AF_INET, type: SOCK_STREAM }), refused, 'AF_INET under network "none"');
    t.same(await sys(service, 'socket', { family: AF_INET6, type: SOCK_STREAM }), refused, 'AF_INET6 under network "none"');
  } else {
    t.equal((await sys(service, 'socket', { family: AF_INET, type: SOCK_STREAM })).ok, true, 'control: AF_INET under network "full"');
    t.same(await sys(service, 'socket', { family: AF_INET, type: SOCK_RAW, protocol: 1 }), refused, 'raw AF_INET');
    t.same(await sys(service, 'socket', { family: AF_INET6, type: SOCK_RAW, protocol: 58 }), refused, 'raw AF_INET6');
  }
}

// Exec after start (execve, execveat) is tried in sandbox-exec.test.ts.

t.test('pure-compute / fs-reader policy: raw system calls refused with EPERM', (t) => kernelEscapes(t, 'kpure', 'none'));
t.test('no-network policy (children allowed): raw system calls refused with EPERM', (t) => kernelEscapes(t, 'kkids', 'none'));
t.test('network-client policy: raw system calls refused with EPERM', (t) => kernelEscapes(t, 'kfull', 'full'));

t.test('control: with the seccomp layer switched off, the same calls reach the kernel and succeed', async (t) => {
  setHostProbeOverride((p) => ({ ...p, kernel: { ...p.kernel, seccompProblem: 'simulated: no libseccomp' } }));
  const open = await startBroker({ root: FIXTURES, services: [manifest('a', 'kernel-nofilter'), manifest('b', 'kernel-nofilter')] });
  t.teardown(() => open.close());
  const s = (svc: string, name: string, args: object = {}) => call(open, svc, 'syscall', { name, ...args });
  // A raw unshare(CLONE_NEWUSER) from node itself gets EINVAL (node is multithreaded); the real binary is single-threaded.
  t.same(await call(open, 'a', 'run', { file: '/usr/bin/unshare', args: ['-Ur', '/bin/true'] }), { ok: true, code: null, value: '' }, 'unshare -Ur works without the filter');
  t.same(await s('a', 'setns'), { ok: false, code: 'EINVAL' }, 'setns reaches the kernel (fd 0 is no namespace)');
  t.same(await s('a', 'clone3'), { ok: false, code: 'EINVAL' }, 'clone3 reaches the kernel');
  t.equal((await s('a', 'ioUring')).ok, true, 'io_uring_setup works');
  t.equal((await s('a', 'socket', { family: AF_NETLINK, type: SOCK_RAW, protocol: NETLINK_SOCK_DIAG })).ok, true, 'sock_diag works');
  const added = await s('a', 'addKey', { desc: 'shared-secret' });
  t.equal(added.ok, true, 'a stores a key in its user keyring');
  t.equal((await s('a', 'searchKey', { desc: 'shared-secret' })).ok, true, 'a finds it again');
  if (isRoot) {
    t.same(await s('b', 'searchKey', { desc: 'shared-secret' }), { ok: false, code: 'ENOKEY' }, 'b, another uid, does not see a\'s keyring even without the filter');
  }
  t.same(open.broker.status('a').sandbox!.rules.filter((r) => r.rule.startsWith('syscalls.')).map((r) => [r.rule, r.unenforced]), [
    ['syscalls.namespaces', true], ['syscalls.keyring', true], ['syscalls.ptrace', true], ['syscalls.kernel', true], ['syscalls.mount', true], ['syscalls.ioUring', true], ['syscalls.sockets', true],
  ], 'the report says so');
});

t.test('kill mode: a refused call kills the helper with SIGSYS (the filter refused, not a missing privilege); io_uring granted', async (t) => {
  t.equal((await sys('kkill', 'ioUring')).ok, true, 'control: io_uring granted by the profile');
  t.same(await sys('kkill', 'clone3'), { ok: false, code: 'ENOSYS' }, 'clone3 stays ENOSYS, so threads still start');
  t.equal((await sys('kkill', 'socket', { family: AF_INET, type: SOCK_STREAM })).ok, true, 'control: AF_INET under loopback');
  for (const [name, args] of [['socket', { family: AF_PACKET, type: SOCK_RAW }], ['socket', { family: AF_INET, type: SOCK_RAW, protocol: 1 }], ['ptrace', { pid: 1 }], ['mount', {}], ['bpf', {}]] as const) {
    const err = await rejection(sys('kkill', name, args));
    t.equal(err.code, 'ERR_INTERRUPTED', `${name} ${JSON.stringify(args)}: the helper died`);
    const exit = kit.broker.status('kkill').lastExit!;
    t.ok(exit.signal === 'SIGSYS' || exit.code === 128 + 31, `by SIGSYS (code ${String(exit.code)}, signal ${String(exit.signal)})`);
    t.equal(exit.reason, 'refused system call (seccomp, onViolation "kill")', 'the broker names the cause');
  }
});

t.test('nested user namespace through the real unshare binary (no-network allows children)', async (t) => {
  t.same(await call(kit, 'nonet', 'run', { file: '/bin/true' }), { ok: true, code: null, value: '' }, 'control: a child runs');
  const attempt = await call(kit, 'nonet', 'run', { file: '/usr/bin/unshare', args: ['-Ur', '/bin/true'] });
  t.equal(attempt.ok, false, 'unshare -Ur fails');
  t.match(attempt.value, /Operation not permitted/);
});

t.test('a worker with execArgv: [] cannot start a child when children are off', async (t) => {
  const control = await call(kit, 'kkids', 'workerChild');
  t.same(control.value, { spawnSync: 'exit 0', binding: 'exit 0' }, 'control: where children are allowed, both ways start one');
  const attempt = await call(kit, 'kworkers', 'workerChild');
  t.equal(attempt.ok, true, 'the worker ran');
  const value = attempt.value as { spawnSync: string; binding: string };
  t.notSame(value.spawnSync, 'exit 0', `child_process.spawnSync from the worker: ${value.spawnSync}`);
  t.notSame(value.binding, 'exit 0', `process.binding('spawn_sync') from the worker: ${value.binding}`);
  t.ok(['EPERM', 'ERR_ACCESS_DENIED'].includes(value.spawnSync), 'refused by Node or by the filter');
  t.same(kit.broker.status('kworkers').sandbox!.rules.find((r) => r.rule === 'processes.children')?.layers, ['node:permission', 'seccomp']);
});

t.test('abstract Unix sockets: the host\'s are out of reach under every shipped profile', async (t) => {
  for (const service of ['pure', 'nonet', 'reader']) {
    t.same(await call(kit, service, 'abstractConnect', { name: ABSTRACT }), { ok: false, code: 'ECONNREFUSED' }, `${service}: its own network namespace has no such name`);
  }
  // network-client: a namespace of its own with pasta (test/sandbox-netns.test.ts), else Landlock scope refuses the connect.
  const connected = await call(kit, 'client', 'abstractConnect', { name: ABSTRACT });
  const viaPasta = kit.broker.status('client').sandbox!.rules.find((r) => r.rule === 'network')?.layers.includes('pasta') === true;
  t.same(connected, { ok: false, code: viaPasta ? 'ECONNREFUSED' : 'EPERM' }, 'network-client: the host\'s socket is out of reach');
  t.same(await call(kit, 'client', 'abstractListen', { name: `${ABSTRACT}-own` }), { ok: true, code: null, value: 'listening' }, 'control: its own abstract sockets work');
  t.same(kit.broker.status('client').sandbox!.rules.find((r) => r.rule === 'network.abstractUnix')?.layers, viaPasta ? ['bubblewrap:netns'] : ['landlock:scope']);
  t.same(kit.broker.status('pure').sandbox!.rules.find((r) => r.rule === 'network.abstractUnix')?.layers, ['bubblewrap:netns']);
});

t.test('control: with pasta and Landlock off, network "full" reaches the host\'s abstract socket, and strict refuses to launch', async (t) => {
  setHostProbeOverride((p) => ({ ...p, pasta: null, kernel: { ...p.kernel, landlockAbi: 0 } }));
  const weak = await startBroker({ root: FIXTURES, services: [manifest('weak', 'kernel-full-weak'), manifest('strict', 'network-client')] });
  t.teardown(() => weak.close());
  t.same(await call(weak, 'weak', 'abstractConnect', { name: ABSTRACT }), { ok: true, code: null, value: 'connected' }, 'best-effort: the escape works, so the test above can fail');
  t.equal(weak.broker.status('weak').sandbox!.rules.find((r) => r.rule === 'network.abstractUnix')?.unenforced, true, 'and the report says so');
  const err = await rejection(call(weak, 'strict', 'info'));
  t.equal(err.code, 'ERR_SANDBOX_UNENFORCEABLE');
  t.equal(err.data['rule'], 'network.abstractUnix');
  t.match(String(err.data['missing']), /^pasta .*, or at least Landlock ABI 6/);
});

t.test('strict fails closed without libseccomp, naming the rule and the layer', async (t) => {
  setHostProbeOverride((p) => ({ ...p, kernel: { ...p.kernel, seccompProblem: 'libseccomp (apt-get install -y libseccomp2) cannot be loaded: simulated' } }));
  const k = await startBroker({ root: FIXTURES, services: [manifest('strict', 'pure-compute')] });
  t.teardown(() => k.close());
  const err = await rejection(call(k, 'strict', 'info'));
  t.equal(err.code, 'ERR_SANDBOX_UNENFORCEABLE');
  t.equal(err.data['rule'], 'syscalls.namespaces');
  t.match(String(err.data['missing']), /libseccomp/);
  t.equal(k.status('strict').launches, 0, 'nothing was spawned');
});

t.test('two services cannot read each other\'s scratch, even with a raw open() Node never sees', async (t) => {
  const planted = (await call(kit, 'kpure', 'plant')).value as string;
  t.equal((await sys('kpure', 'open', { path: planted })).ok, true, 'control: the owner opens it with the same raw call');
  t.same(await sys('kfull', 'open', { path: planted }), { ok: false, code: 'ENOENT' }, 'another service: not in its mount namespace');
  t.same(await sys('kkids', 'open', { path: '/etc/shadow' }), { ok: false, code: 'ENOENT' }, 'nor is the host\'s /etc/shadow');
});

t.test('each service runs as a uid of its own (root broker)', { skip: isRoot ? false : 'needs a root broker' }, async (t) => {
  const a = (await call(kit, 'pure', 'info')).value as { uid: number; gid: number };
  const b = (await call(kit, 'nonet', 'info')).value as { uid: number; gid: number };
  t.not(a.uid, b.uid, `pure-compute runs as ${a.uid}, no-network as ${b.uid}`);
  for (const id of [a.uid, b.uid]) t.ok(id >= DEFAULT_UID_RANGE.first && id < DEFAULT_UID_RANGE.first + DEFAULT_UID_RANGE.count, `${id} is from the helper range`);
  const again = (await call(kit, 'pure', 'info')).value as { uid: number };
  t.equal(again.uid, a.uid, 'stable for the service');
});
