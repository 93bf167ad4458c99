// Exec after start, tried for real: native code (koffi, in test profiles that
// differ from the shipped ones only by `addons: true`) calls execve and
// execveat under every shipped policy with `processes.children: false`, from
// the main thread and from a worker. The exec guard (lib/sandbox/exec-guard*.ts)
// must refuse each, and the helper must live on. Positive controls: the same
// exec replaces the helper when the guard is switched off (so the attempt is
// real), and a profile that allows children still starts one.
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startBroker, type TestBroker } from 'bulkhead/testing';
import { setHostProbeOverride } from '../lib/sandbox/index.js';
import { FIXTURES, REPO_ROOT, rejection } from './helpers.js';

interface Attempt { ok: boolean; code: string | null; value?: unknown }

const KOFFI = join(REPO_ROOT, 'node_modules', 'koffi');
const manifest = (name: string, sandbox: string) => ({
  name, entry: './sandbox/kernel-service.js', protocol: 'com.test.sandbox-kernel', sandbox, sandboxPaths: { koffi: KOFFI }, launch: { throttleMs: 0 },
});
const call = (k: TestBroker, service: string, method: string, params: object = {}): Promise<Attempt> => k.broker.connect(service).call(method, params) as Promise<Attempt>;
const TRUE = { file: '/bin/true', args: [] };
/** Whether `npm run build` built the native stage here (it needs a C compiler); the node stage is tested below either way. */
const NATIVE = existsSync(join(REPO_ROOT, 'dist', 'native', 'exec-guard'));

if (process.arch !== 'x64') {
  t.plan(0, 'the raw system-call numbers in the fixture are x86-64');
  process.exit(0);
}

t.afterEach(() => setHostProbeOverride(undefined));

// kpure stands for pure-compute and fs-reader, kfull for network-client (sandbox-kernel.test.ts checks the twins' filters).
const GUARDED = [['kpure', 'kernel-pure'], ['kfull', 'kernel-full'], ['kworkers', 'kernel-workers-addons']] as const;

t.test('children: false: execve and execveat fail after start, from the main thread and from a worker; the helper lives on', async (t) => {
  const k = await startBroker({ root: FIXTURES, services: [...GUARDED.map(([name, profile]) => manifest(name, profile)), manifest('kids', 'kernel-children')] });
  t.teardown(() => k.close());
  for (const [service] of GUARDED) {
    const pid = (await call(k, service, 'info')).value as { pid: number };
    t.same(await call(k, service, 'syscall', { name: 'execve', ...TRUE }), { ok: false, code: 'EPERM' }, `${service}: execve(/bin/true) refused with EPERM`);
    t.same(await call(k, service, 'syscall', { name: 'execve', file: '/usr/bin/unshare', args: ['-Ur', '/bin/true'] }), { ok: false, code: 'EPERM' }, `${service}: execve(unshare -Ur) refused`);
    // The guard's listener is gone: the kernel answers execveat ENOSYS before it looks at the path.
    t.same(await call(k, service, 'syscall', { name: 'execveatMissing' }), { ok: false, code: 'ENOSYS' }, `${service}: execveat answered ENOSYS (no listener left)`);
    t.same((await call(k, service, 'info')).value, pid, `${service}: the same helper still answers`);
    t.equal(k.broker.status(service).launches, 1, `${service}: never relaunched`);
    const rule = k.broker.status(service).sandbox!.rules.find((r) => r.rule === 'processes.exec');
    t.same([rule?.layers, rule?.unenforced], [['seccomp:exec-guard'], false], `${service}: the report names the guard`);
    if (NATIVE) t.match(rule?.detail, /native stage/, `${service}: loaded by the native stage`);
    t.notOk(k.broker.status(service).sandbox!.rules.find((r) => r.rule === 'processes.children')?.detail?.includes('execveat'), 'execveat is left to the guard');
  }
  t.same(await call(k, 'kworkers', 'workerExec', TRUE), { ok: false, code: 'EPERM' }, 'from a worker thread: execve refused');
  // Controls where the profile allows children: exec and a child work, and the report says exec is allowed.
  t.same(await call(k, 'kids', 'run', TRUE), { ok: true, code: null, value: '' }, 'control: children allowed, a child starts');
  t.same(await call(k, 'kids', 'syscall', { name: 'execveatMissing' }), { ok: false, code: 'ENOENT' }, 'control: children allowed, execveat reaches the kernel');
  t.same(k.broker.status('kids').sandbox!.rules.find((r) => r.rule === 'processes.exec')?.layers, [], 'no guard where children are allowed');
});

t.test('the node stage (no native stage built, or Landlock too) guards the same way', async (t) => {
  setHostProbeOverride((p) => ({ ...p, kernel: { ...p.kernel, execGuardNative: null } }));
  const k = await startBroker({ root: FIXTURES, services: [manifest('kpure', 'kernel-pure'), manifest('kworkers', 'kernel-workers-addons')] });
  t.teardown(() => k.close());
  t.same(await call(k, 'kpure', 'syscall', { name: 'execve', ...TRUE }), { ok: false, code: 'EPERM' }, 'execve refused');
  t.same(await call(k, 'kpure', 'syscall', { name: 'execveatMissing' }), { ok: false, code: 'ENOSYS' }, 'execveat answered ENOSYS');
  t.same(await call(k, 'kworkers', 'workerExec', TRUE), { ok: false, code: 'EPERM' }, 'from a worker thread: execve refused');
  t.match(k.broker.status('kpure').sandbox!.rules.find((r) => r.rule === 'processes.exec')?.detail, /node pre-exec stage/, 'the report names the stage');
});

t.test('control: with the guard off, the same execve replaces the helper; what it runs stays inside the profile\'s filter', async (t) => {
  setHostProbeOverride((p) => ({ ...p, kernel: { ...p.kernel, execGuardProblem: 'simulated: no exec guard' } }));
  const k = await startBroker({ root: FIXTURES, services: [manifest('weak', 'kernel-exec-weak'), manifest('strict', 'kernel-pure'), manifest('shipped', 'pure-compute')] });
  t.teardown(() => k.close());
  const rule = () => k.broker.status('weak').sandbox!.rules.find((r) => r.rule === 'processes.exec');
  const replaced = await rejection(call(k, 'weak', 'syscall', { name: 'execve', ...TRUE }));
  t.equal(replaced.code, 'ERR_INTERRUPTED', 'the helper was replaced by /bin/true');
  t.equal(replaced.data['exitCode'], 0, '/bin/true ran and exited 0');
  t.same([rule()?.unenforced, rule()?.missing], [true, 'simulated: no exec guard'], 'best-effort: the report marks the gap and what is missing');
  // Without the guard, execveat is refused by the profile's own filter again (it has no guard to leave it to).
  t.same(await call(k, 'weak', 'syscall', { name: 'execveatMissing' }), { ok: false, code: 'EPERM' }, 'execveat: refused by the profile\'s filter');
  const inside = await rejection(call(k, 'weak', 'syscall', { name: 'execve', file: '/usr/bin/unshare', args: ['-Ur', '/bin/true'] }));
  t.equal(inside.code, 'ERR_INTERRUPTED', 'replaced by unshare');
  // (Node marks fds 0-3 close-on-exec, so the exec'd program has no stderr to explain itself: its exit code tells.)
  t.equal(inside.data['exitCode'], 1, 'unshare -Ur failed: the exec\'d program is still inside the profile\'s filter');
  for (const service of ['strict', 'shipped']) {
    const err = await rejection(call(k, service, 'info'));
    t.equal(err.code, 'ERR_SANDBOX_UNENFORCEABLE', `${service}: strict fails closed`);
    t.equal(err.data['rule'], 'processes.exec', 'naming the rule');
    t.equal(err.data['missing'], 'simulated: no exec guard', 'and the missing layer');
    t.equal(k.status(service).launches, 0, 'nothing was spawned');
  }
});
