// Fail-closed behaviour and defence in depth, through the real broker:
// a host without bubblewrap (simulated with the probe override) refuses a
// strict profile; best-effort launches and reports the truth; and with Node's
// permission model switched off the OS layers alone still hold.
import t from 'tap';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isBulkheadError, type BulkheadError } from 'bulkhead';
import { startBroker } from 'bulkhead/testing';
import { setHostProbeOverride } from '../lib/sandbox/index.js';
import { FIXTURES, rejection } from './helpers.js';

interface Attempt { ok: boolean; code: string | null; value?: unknown }

const manifest = (name: string, sandbox: string) => ({ name, entry: './sandbox/escape-service.js', protocol: 'com.test.sandbox-escape', sandbox, launch: { throttleMs: 0 } });


const outside = mkdtempSync(join(tmpdir(), 'bulkhead-outside-'));
chmodSync(outside, 0o755);
const secret = join(outside, 'secret.txt');
writeFileSync(secret, 'not for helpers\n', { mode: 0o644 });
t.teardown(() => rmSync(outside, { recursive: true, force: true }));
t.afterEach(() => setHostProbeOverride(undefined));

const noBubblewrap = () => setHostProbeOverride((p) => ({ ...p, bwrap: null, bwrapProblem: 'bubblewrap (bwrap) is not installed' }));

t.test('strict profile on a host without bubblewrap: the launch fails closed, naming the rule and bubblewrap', async (t) => {
  noBubblewrap();
  const kit = await startBroker({ root: FIXTURES, services: [manifest('strict', 'pure-compute')] });
  t.teardown(() => kit.close());
  const err = await rejection(kit.broker.connect('strict').call('info', {}));
  t.equal(err.code, 'ERR_SANDBOX_UNENFORCEABLE');
  // Landlock takes over the filesystem rules; the pid namespace and the seccomp filter (bubblewrap loads it) have no stand-in.
  t.equal(err.data['rule'], 'isolation', 'the first rule no layer enforces');
  t.match(String(err.data['missing']), /^bubblewrap \(bubblewrap \(bwrap\) is not installed; apt-get install -y bubblewrap\)$/);
  t.match(err.message, /rule "isolation": missing layer bubblewrap/);
  t.same((err.data['rules'] as { rule: string }[]).map((r) => r.rule), ['isolation', 'limits.scratchMiB', 'syscalls.namespaces', 'syscalls.keyring', 'syscalls.ptrace', 'syscalls.kernel', 'syscalls.mount', 'syscalls.ioUring', 'syscalls.sockets', 'processes.exec']);
  t.match(String((err.data['rules'] as { rule: string; missing: string }[])[2]!.missing), /^bubblewrap \(it loads the seccomp filter/);
  t.equal(kit.status('strict').launches, 0, 'nothing was spawned');
});

t.test('best-effort profile without bubblewrap: launches, reports what is unenforced, and the remaining layers hold', async (t) => {
  noBubblewrap();
  const kit = await startBroker({ root: FIXTURES, services: [manifest('weak', 'sandbox-best-effort')] });
  t.teardown(() => kit.close());
  const call = (m: string, p: object = {}) => kit.broker.connect('weak').call(m, p) as Promise<Attempt>;
  t.same(await call('tryConnect', { host: '127.0.0.1', port: 9 }), { ok: false, code: 'ENETUNREACH' }, 'unshare alone gives an empty netns');
  t.same(await call('tryRead', { path: '/etc/shadow' }), { ok: false, code: 'ERR_ACCESS_DENIED' }, 'Node\'s permission model still refuses');
  const rules = kit.broker.status('weak').sandbox!.rules;
  const byName = Object.fromEntries(rules.map((r) => [r.rule, r]));
  t.same(byName['fs.read']?.layers, ['node:permission', 'landlock:fs'], 'Landlock stands in for the mount namespace');
  t.equal(byName['fs.read']?.unenforced, false);
  t.equal(byName['syscalls.keyring']?.unenforced, true, 'no bubblewrap, no seccomp filter');
  t.equal(byName['isolation']?.unenforced, true);
  t.same(byName['network']?.layers, ['unshare:netns']);
  t.equal(kit.broker.status('weak').sandbox!.enforcement, 'best-effort');
});

t.test('with Node\'s permission model off, the OS layers alone refuse the escapes', async (t) => {
  setHostProbeOverride((p) => ({ ...p, node: { ...p.node, flag: null } }));
  const kit = await startBroker({ root: FIXTURES, services: [manifest('os', 'sandbox-best-effort')] });
  t.teardown(() => kit.close());
  const call = (m: string, p: object = {}) => kit.broker.connect('os').call(m, p) as Promise<Attempt>;
  t.same(await call('tryRead', { path: '/etc/shadow' }), { ok: false, code: 'ENOENT' }, '/etc/shadow is not in its mount namespace');
  t.same(await call('tryRead', { path: secret }), { ok: false, code: 'ENOENT' }, 'nor is a file outside its allowlist');
  t.same(await call('tryWrite', { path: join(FIXTURES, 'sandbox', 'planted.js') }), { ok: false, code: 'EROFS' }, 'its code is bound read-only');
  t.same(await call('tryWrite', { path: '/planted.txt' }), { ok: false, code: 'EROFS' }, 'the sandbox root is frozen');
  const procs = await call('listProcs');
  t.equal(procs.ok, true);
  t.ok((procs.value as number[]).every((pid) => pid < 10), `only the sandbox's own pids are visible (${String(procs.value)})`);
  t.same(await call('signalPid', { pid: process.pid }), { ok: false, code: 'ESRCH' }, 'the broker is not in its pid namespace');
  t.same(await call('tryConnect', { host: '127.0.0.1', port: 9 }), { ok: false, code: 'EPERM' }, 'no AF_INET socket under network "none" (seccomp)');
  t.same(await call('openMany', { max: 1000 }), { ok: false, code: 'EMFILE' });
  const rules = kit.broker.status('os').sandbox!.rules;
  t.same(rules.filter((r) => r.unenforced).map((r) => r.rule), ['processes.workers', 'addons'], 'only Node can refuse these; seccomp refuses children');
  t.same(await call('trySpawn'), { ok: false, code: 'EPERM' }, 'fork refused by the filter, not by Node');
});
