// Fast tier for the kernel layers: the seccomp policy as data, the uid pool,
// how kernel rules merge into the report, and the plan compile.ts gets for
// hosts with and without each layer. No process is spawned here; the real
// attempts are in sandbox-kernel.test.ts.
import t from 'tap';
import { dirname, join } from 'node:path';
import { parseProfile, probeHost, type HostProbe } from '../lib/sandbox/index.js';
import { cloneRules, syscallGroups, policyKey, EPERM, ENOSYS } from '../lib/sandbox/seccomp-policy.js';
import { configureUidPool, uidFor, DEFAULT_UID_RANGE } from '../lib/sandbox/uid-pool.js';
import { mergeKernelRules, MM_PRELOAD_BOUND, planKernelLayers, type KernelRule } from '../lib/sandbox/kernel-layers.js';
import { compileFilter } from '../lib/sandbox/seccomp.js';
import { explainExit } from '../lib/sandbox/exit-reason.js';
import { expectCode } from './helpers.js';

const profile = (doc: object) => parseProfile('p', doc);
const names = (groups: ReturnType<typeof syscallGroups>) => groups.map((g) => g.rule);
const defaults = { ioUring: false, onViolation: 'error' as const };

t.test('the policy follows the profile: children, io_uring and the network rule', async (t) => {
  t.same(names(syscallGroups(profile({}), defaults)), ['syscalls.namespaces', 'syscalls.keyring', 'syscalls.ptrace', 'syscalls.kernel', 'syscalls.mount', 'syscalls.ioUring', 'processes.children', 'syscalls.sockets']);
  t.notOk(names(syscallGroups(profile({ processes: { children: true } }), defaults)).includes('processes.children'), 'children allowed: no process rule');
  t.notOk(names(syscallGroups(profile({}), { ...defaults, ioUring: true })).includes('syscalls.ioUring'), 'io_uring granted');
  const sockets = (network: string) => syscallGroups(profile({ network }), defaults).find((g) => g.rule === 'syscalls.sockets')!.rules;
  const refusesFamily = (rules: ReturnType<typeof sockets>, family: number) => rules.some((r) => r.args?.length === 1 && r.args[0]!.value === family);
  t.ok(refusesFamily(sockets('none'), 2) && refusesFamily(sockets('none'), 10), 'none: AF_INET and AF_INET6 refused');
  t.notOk(refusesFamily(sockets('full'), 2), 'full: AF_INET allowed');
  t.ok(refusesFamily(sockets('full'), 17), 'full: AF_PACKET refused');
  t.notOk(refusesFamily(sockets('none'), 1), 'AF_UNIX always allowed');
  for (const group of syscallGroups(profile({}), defaults)) {
    for (const rule of group.rules) t.ok(rule.errno === EPERM || (rule.name === 'clone3' && rule.errno === ENOSYS), `${rule.name} → errno ${rule.errno}`);
  }
  t.not(policyKey(profile({}), defaults), policyKey(profile({ network: 'full' }), defaults));
  t.equal(policyKey(profile({ fs: { read: ['/a'] }, limits: { memoryMiB: 256 } }), defaults), policyKey(profile({}), defaults), 'paths and limits do not change the filter');
});

t.test('compiled filters are cached per policy and differ between policies', async (t) => {
  const a = compileFilter(profile({}), defaults);
  t.equal(compileFilter(profile({ addons: true }), defaults), a, 'same policy: the cached program');
  t.notOk(compileFilter(profile({ network: 'full' }), defaults).bpf.equals(a.bpf));
  t.notOk(compileFilter(profile({}), { ...defaults, onViolation: 'kill' }).bpf.equals(a.bpf));
  t.equal(a.bpf.length % 8, 0, 'whole struct sock_filter instructions');
  t.same(a.unresolved, [], 'this libseccomp knows every listed call');
});

t.test('uid pool: one uid per service, stable, never nobody; bad ranges are refused', async (t) => {
  const a = uidFor('/app\0parser');
  const b = uidFor('/app\0fetcher');
  t.not(a.uid, b.uid);
  t.equal(a.gid, a.uid);
  t.same(uidFor('/app\0parser'), a, 'stable');
  t.ok(a.uid >= DEFAULT_UID_RANGE.first && a.uid < DEFAULT_UID_RANGE.first + DEFAULT_UID_RANGE.count);
  expectCode(t, () => configureUidPool({ first: 0, count: 10 }), 'ERR_INVALID_OPTION', 'uid 0');
  expectCode(t, () => configureUidPool({ first: 4_294_967_290, count: 10 }), 'ERR_INVALID_OPTION', 'past 2^32-2');
  configureUidPool({ first: 70000, count: 2 });
  t.teardown(() => configureUidPool(DEFAULT_UID_RANGE));
  const c = uidFor('x\0one');
  const d = uidFor('x\0two');
  t.same([c.uid, d.uid].sort(), [70000, 70001]);
  expectCode(t, () => uidFor('x\0three'), 'ERR_INVALID_OPTION', 'range exhausted');
});

t.test('kernel rules merge into compile.ts\'s: layers appended, enforcement only raised, layersOnly never flips it', async (t) => {
  const rules: KernelRule[] = [
    { rule: 'processes.children', layers: ['node:permission'], unenforced: false },
    { rule: 'fs.read', layers: ['node:permission'], unenforced: true, missing: 'bubblewrap' },
    { rule: 'isolation', layers: [], unenforced: true, missing: 'bubblewrap' },
  ];
  mergeKernelRules(rules, [
    { rule: 'processes.children', layers: ['seccomp'], unenforced: false },
    { rule: 'fs.read', layers: ['landlock:fs'], unenforced: false },
    { rule: 'isolation', layers: ['landlock:scope-signal'], unenforced: false, layersOnly: true },
    { rule: 'syscalls.keyring', layers: [], unenforced: true, missing: 'libseccomp' },
  ]);
  t.same(rules, [
    { rule: 'processes.children', layers: ['node:permission', 'seccomp'], unenforced: false },
    { rule: 'fs.read', layers: ['node:permission', 'landlock:fs'], unenforced: false },
    { rule: 'isolation', layers: ['landlock:scope-signal'], unenforced: true, missing: 'bubblewrap' },
    { rule: 'syscalls.keyring', layers: [], unenforced: true, missing: 'libseccomp' },
  ]);
});

t.test('plans: seccomp through bubblewrap, Landlock only where no cheaper layer enforces', async (t) => {
  const real = await probeHost();
  const input = { nodePath: process.execPath, reads: ['/srv/app'], writes: ['/tmp/s'], etc: [], runtimeRoots: ['/usr'] };
  const on = (p: Partial<HostProbe>): HostProbe => ({ ...real, bwrap: '/usr/bin/bwrap', kernel: { seccompProblem: null, libseccomp: '2.5.4', landlockAbi: 7, execGuardProblem: null }, ...p });
  const pure = planKernelLayers(profile({}), on({}), input);
  t.same(pure.bwrapArgs.slice(0, 2), ['--seccomp', '5']);
  t.ok(pure.seccompProgram !== undefined);
  const stage = (plan: typeof pure) => (plan.preExec.length === 0 ? null : JSON.parse(plan.preExec[2]!) as { scope?: object; fs?: object; execGuard?: string });
  t.match(stage(pure), { execGuard: /^[A-Za-z0-9+/]+=*$/ }, 'children: false: the pre-exec stage runs for the exec guard');
  t.equal(stage(pure)?.scope ?? stage(pure)?.fs, undefined, 'none: bubblewrap already enforces fs and abstract sockets, so no Landlock in it');
  t.match(pure.rules.find((r) => r.rule === 'processes.exec'), { layers: ['seccomp:exec-guard'], unenforced: false });
  const native = planKernelLayers(profile({}), on({ kernel: { seccompProblem: null, libseccomp: '2.5.4', landlockAbi: 7, execGuardProblem: null, execGuardNative: '/opt/bulkhead/exec-guard' } }), input);
  t.same([native.preExec[0], native.preExec[2], native.preExec.length], ['/opt/bulkhead/exec-guard', '--', 3], 'the native stage when it was built');
  t.match(native.preExec[1], /^([0-9a-f]{16})+$/, 'its program as whole instructions in hex');
  t.ok(native.extraReads.includes('/opt/bulkhead/exec-guard'), 'bound into the sandbox');
  const nativeButLandlock = planKernelLayers(profile({ network: 'full' }), on({ pasta: null, kernel: { seccompProblem: null, libseccomp: '2.5.4', landlockAbi: 7, execGuardProblem: null, execGuardNative: '/opt/bulkhead/exec-guard' } }), input);
  t.match(stage(nativeButLandlock), { scope: { abstractUnix: true }, execGuard: /./ }, 'with Landlock too, the node stage does both');
  const kids = planKernelLayers(profile({ processes: { children: true } }), on({}), input);
  t.same(kids.preExec, [], 'children allowed: no stage at all');
  t.match(kids.rules.find((r) => r.rule === 'processes.exec'), { layers: [], unenforced: false, detail: /^allowed/ });
  const noGuard = planKernelLayers(profile({}), on({ kernel: { seccompProblem: null, libseccomp: '2.5.4', landlockAbi: 7, execGuardProblem: 'old kernel' } }), input);
  t.same(noGuard.preExec, [], 'a kernel without the guard: no stage');
  t.match(noGuard.rules.find((r) => r.rule === 'processes.exec'), { layers: [], unenforced: true, missing: 'old kernel' });
  t.notOk(noGuard.seccompProgram!.equals(pure.seccompProgram!), 'and the profile\'s filter keeps refusing execveat itself');
  const withPasta = planKernelLayers(profile({ network: 'full' }), on({ pasta: '/usr/bin/pasta' }), input);
  t.equal(stage(withPasta)?.scope, undefined, 'full with pasta: a namespace of its own, no Landlock in the stage');
  t.same(withPasta.bwrapArgs.slice(2), ['--unshare-net', '--info-fd', '6', '--block-fd', '7'], 'the pipes follow the seccomp program\'s fd');
  t.same(withPasta.pasta, { info: 6, block: 7 });
  t.match(withPasta.rules.find((r) => r.rule === 'network.abstractUnix'), { layers: ['bubblewrap:netns'], unenforced: false });
  const pastaNoSeccomp = planKernelLayers(profile({ network: 'full' }), on({ pasta: '/usr/bin/pasta', kernel: { seccompProblem: 'simulated', libseccomp: null, landlockAbi: 7, execGuardProblem: 'simulated' } }), input);
  t.same(pastaNoSeccomp.pasta, { info: 5, block: 6 }, 'no seccomp program: the pipes take fd 5');
  const full = planKernelLayers(profile({ network: 'full' }), on({ pasta: null }), input);
  t.equal(full.preExec[1]?.endsWith('landlock-exec.js'), true, 'full without pasta: the Landlock step');
  const spec = JSON.parse(full.preExec[2]!) as { scope: object; fs: { exec: string[] } };
  t.same(spec.scope, { abstractUnix: true, signal: true });
  t.match(full.rules.find((r) => r.rule === 'network.abstractUnix'), { layers: ['landlock:scope'], unenforced: true, missing: /^pasta/, detail: /binding is not covered/ });
  const oldKernel = planKernelLayers(profile({ network: 'full' }), on({ pasta: null, kernel: { seccompProblem: null, libseccomp: '2.5.4', landlockAbi: 5, execGuardProblem: null } }), input);
  t.match(oldKernel.rules.find((r) => r.rule === 'network.abstractUnix'), { unenforced: true, missing: /^pasta .*or at least Landlock ABI 6/ });
  const noBwrap = planKernelLayers(profile({}), on({ bwrap: null, bwrapProblem: 'simulated' }), input);
  t.equal(noBwrap.seccompProgram, undefined, 'no bubblewrap, nothing loads the filter');
  t.match(noBwrap.rules.find((r) => r.rule === 'syscalls.keyring'), { unenforced: true, missing: /^bubblewrap/ });
  t.equal(noBwrap.preExec.length > 0, true, 'Landlock takes over the filesystem rules');
  const unprivileged = planKernelLayers(profile({}), on({ isRoot: false, bwrapDisableUserns: true }), input);
  t.ok(unprivileged.bwrapArgs.includes('--disable-userns'));
  t.same(unprivileged.rules.find((r) => r.rule === 'syscalls.namespaces')?.layers, ['seccomp', 'bubblewrap:disable-userns']);
});

t.test('the mm holder: planned only for a prewarmed launch on the native stage under bubblewrap, with its exact clone exception', async (t) => {
  const real = await probeHost();
  const base = { nodePath: process.execPath, reads: ['/srv/app'], writes: ['/tmp/s'], etc: [], runtimeRoots: ['/usr'] };
  const kernel = { seccompProblem: null, libseccomp: '2.5.4', landlockAbi: 7, execGuardProblem: null, execGuardNative: '/opt/bulkhead/exec-guard', mmPreload: '/opt/bulkhead/mm_preload.so' };
  const on = (p: Partial<HostProbe>): HostProbe => ({ ...real, bwrap: '/usr/bin/bwrap', kernel, ...p });
  const holder = (plan: ReturnType<typeof planKernelLayers>) => plan.preExec.includes('--mm-holder');
  const exception = (plan: ReturnType<typeof planKernelLayers>) => /CLONE_VM \| CLONE_PARENT/.test(plan.rules.find((r) => r.rule === 'processes.children')?.detail ?? '');
  const yes = planKernelLayers(profile({}), on({}), { ...base, mmHolder: true });
  t.same(yes.preExec.slice(2, 5), ['--mm-holder', MM_PRELOAD_BOUND, '--'], 'the native stage names the library at its bound path');
  t.same(yes.fileBinds, [{ path: MM_PRELOAD_BOUND, source: '/opt/bulkhead/mm_preload.so' }], 'bound there from the installed file');
  t.notOk(yes.extraReads.includes('/opt/bulkhead/mm_preload.so'), 'not at its own path');
  t.ok(exception(yes), 'the report names the exception');
  t.ok(MM_PRELOAD_BOUND.startsWith('/') && !/[\s:]/.test(MM_PRELOAD_BOUND), 'the bound path is one ld.so does not split');
  // ld.so splits LD_PRELOAD at spaces and colons; bubblewrap takes the source as one argument: any install path works.
  for (const source of ['/home/u/My Projects/app/node_modules/bulkhead/dist/native/mm_preload.so', '/opt/a:b/mm_preload.so', '/opt/tab\there/mm_preload.so']) {
    const plan = planKernelLayers(profile({}), on({ kernel: { ...kernel, mmPreload: source } }), { ...base, mmHolder: true });
    t.same({ named: plan.preExec.slice(2, 5), binds: plan.fileBinds, exception: exception(plan) }, { named: ['--mm-holder', MM_PRELOAD_BOUND, '--'], binds: [{ path: MM_PRELOAD_BOUND, source }], exception: true }, `${JSON.stringify(source)}: bound, named at the bound path, with its exception`);
  }
  for (const [what, plan] of [
    ['not prewarmed', planKernelLayers(profile({}), on({}), base)],
    ['no library built', planKernelLayers(profile({}), on({ kernel: { ...kernel, mmPreload: null } }), { ...base, mmHolder: true })],
    ['no native stage', planKernelLayers(profile({}), on({ kernel: { ...kernel, execGuardNative: null } }), { ...base, mmHolder: true })],
    ['no bubblewrap (Landlock)', planKernelLayers(profile({}), on({ bwrap: null, bwrapProblem: 'simulated' }), { ...base, mmHolder: true })],
    ['network "full"', planKernelLayers(profile({ network: 'full' }), on({ pasta: null }), { ...base, mmHolder: true })],
    ['pids.max 8', planKernelLayers(profile({ limits: { processes: 8 } }), on({}), { ...base, mmHolder: true })],
    ['children allowed', planKernelLayers(profile({ processes: { children: true } }), on({}), { ...base, mmHolder: true })],
    ['a relative library path', planKernelLayers(profile({}), on({ kernel: { ...kernel, mmPreload: 'dist/native/mm_preload.so' } }), { ...base, mmHolder: true })],
    // The bind must not land in another bind (a read-only one: no mount point; a writable one: a file made on the
    // host) nor under one inside its directory: where the sandbox already has that place, no holder.
    ['a read of /', planKernelLayers(profile({}), on({}), { ...base, reads: ['/'], mmHolder: true })],
    ['a read of the bound directory', planKernelLayers(profile({}), on({}), { ...base, reads: [dirname(MM_PRELOAD_BOUND)], mmHolder: true })],
    ['a write of the bound file', planKernelLayers(profile({}), on({}), { ...base, writes: ['/tmp/s', MM_PRELOAD_BOUND], mmHolder: true })],
    ['a read inside the bound directory', planKernelLayers(profile({}), on({}), { ...base, reads: [join(dirname(MM_PRELOAD_BOUND), 'x')], mmHolder: true })],
    ['a cache bound over it', planKernelLayers(profile({}), on({}), { ...base, otherBinds: [dirname(MM_PRELOAD_BOUND)], mmHolder: true })],
  ] as const) {
    t.notOk(holder(plan) || exception(plan) || plan.fileBinds.length > 0, `${what}: no holder, no exception, no bind`);
  }
  t.ok(holder(planKernelLayers(profile({}), on({}), { ...base, reads: ['/srv/app', '/.bh-mm-holders'], mmHolder: true })), 'control: a sibling path with the same prefix is no clash');
  // The rules: exactly CLONE_VM | CLONE_PARENT more. A rule refuses when (flags & mask) === value.
  const refuses = (rules: ReturnType<typeof cloneRules>, flags: number) => rules.some((r) => r.args!.every((a) => ((flags & a.mask!) >>> 0) === a.value));
  const rules = cloneRules(true);
  t.notOk(refuses(rules, 0x8100), 'CLONE_VM | CLONE_PARENT passes');
  t.notOk(refuses(rules, 0x3d0f00), 'a thread (CLONE_THREAD and its usual flags) passes');
  for (const flags of [0x11, 0, 0x100, 0x8000, 0x4100, 0xc100, 0x8111, 0x8500, 0x28100, 0x80008100, 0x10008100, 0x8101]) {
    t.ok(refuses(rules, flags), `0x${flags.toString(16)} refused`);
    t.ok(refuses(cloneRules(false), flags) || (flags & 0x10000) !== 0, `0x${flags.toString(16)} refused without the holder too`);
  }
});

t.test('a SIGSYS death is named as the filter\'s doing, as a signal or as 128 + 31 from bubblewrap', async (t) => {
  t.equal(explainExit({}, null, 'SIGSYS'), 'refused system call (seccomp, onViolation "kill")');
  t.equal(explainExit({}, 159, null), 'refused system call (seccomp, onViolation "kill")');
  t.equal(explainExit({}, 1, null), undefined);
});
