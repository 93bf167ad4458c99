// The mm holder of sandboxed prewarmed helpers (native/mm-preload/mm_preload.c; docs/sandbox.md#the-mm-holder) and
// the one seccomp exception it needs under `processes.children: false`: clone with exactly CLONE_VM | CLONE_PARENT.
// Real processes. Positive controls: a prewarmed pure-compute node has its holder (seen in /proc: its name, one
// thread, node's address space), and a hostile helper's own clone(CLONE_VM | CLONE_PARENT) makes a task, so the
// refusals around them are the filter's, not a sandbox where nothing runs. The escapes tried from native code
// (koffi and a test library, test/fixtures/native/clone_probe.c, under a profile that is pure-compute plus
// addons: the same filter, asserted): any other clone, fork, vfork, clone3, a child process, an exec from a
// CLONE_VM task, and a CLONE_VM task left behind past the sandbox's end; CLONE_VM tasks made until the pids limit
// refuses one. A node that names itself bh-mm-holder is still found and killed at its hang-up; a library installed
// under a path ld.so would split (a space, a colon) is bound at one fixed path and gets its holder, and libraries
// planted at the pieces of the split never load.
import t, { type Test } from 'tap';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, type TestBroker } from 'bulkhead/testing';
import { helperNode } from '../lib/broker/certain-death.js';
import { parseProc, ProcessSampler } from '../lib/broker/process-stats.js';
import { MM_PRELOAD } from '../lib/sandbox/exec-guard.js';
import { parseProfile, setHostProbeOverride } from '../lib/sandbox/index.js';
import { MM_PRELOAD_BOUND } from '../lib/sandbox/kernel-layers.js';
import { compileFilter } from '../lib/sandbox/seccomp.js';
import { loadFfi } from '../lib/sandbox/ffi.js';
import { FIXTURES, nextSpare, pathGone, rejection, REPO_ROOT } from './helpers.js';

const CLONE_VM = 0x100, CLONE_PARENT = 0x8000, CLONE_VFORK = 0x4000, SIGCHLD = 17;
const EPERM = -1;

function compile(source: string, out: string): boolean {
  try {
    execFileSync(process.env['CC'] ?? 'cc', ['-shared', '-fPIC', '-O2', '-fno-stack-protector', source, '-o', out], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const probeDir = mkdtempSync(join(tmpdir(), 'bulkhead-clone-probe-'));
chmodSync(probeDir, 0o755); // a root broker runs the helper as a uid of its own
t.teardown(() => rmSync(probeDir, { recursive: true, force: true }));
const PROBE = join(probeDir, 'clone_probe.so');
const skip = process.arch !== 'x64' ? 'the probe library is x86-64'
  : !existsSync(MM_PRELOAD) ? 'no dist/native/mm_preload.so (no C compiler at build time)'
    : !compile(join(FIXTURES, 'native', 'clone_probe.c'), PROBE) ? 'no C compiler for the probe library' : false;
if (skip !== false) {
  t.plan(0, skip);
  process.exit(0);
}
const koffi = createRequire(import.meta.url)(join(REPO_ROOT, 'node_modules', 'koffi')) as { load(path: string): { func(proto: string): (...args: unknown[]) => number | bigint } };
const libc = loadFfi();

/** /proc/<pid>/status's field, or undefined (gone). */
function field(pid: number, name: string): string | undefined {
  try {
    return new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1];
  } catch {
    return undefined;
  }
}
/** Every child of `pid`, read raw (the broker's walks skip holders; this does not). */
function rawChildren(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').split(' ').filter((w) => w !== '').map(Number);
  } catch {
    return [];
  }
}
/** The spawned child, bubblewrap's init below it, node, and the init's other children. */
function sandboxOf(spawned: number): { init: number; node: number; others: number[] } {
  const [init] = rawChildren(spawned);
  const node = helperNode(spawned, process.execPath)!;
  return { init: init!, node, others: rawChildren(init!).filter((pid) => pid !== node) };
}

const manifest = (name: string, sandbox: string, prewarm: boolean, entry = './takeover-service.js', protocol = 'com.test.takeover', paths?: Record<string, string>) => ({
  name, entry, protocol, sandbox, ...(paths !== undefined ? { sandboxPaths: paths } : {}), launch: { prewarm, throttleMs: 0, maxRestarts: 100 },
});
const kernel = (name: string) => manifest(name, 'kernel-pure-native', true, './sandbox/kernel-service.js', 'com.test.sandbox-kernel', { koffi: join(REPO_ROOT, 'node_modules', 'koffi'), probe: probeDir });

async function start(t: Test, services: object[]): Promise<TestBroker> {
  const kit = await startBroker({ root: FIXTURES, services: services as never });
  t.teardown(() => kit.close());
  return kit;
}

/** Waits until every pid is gone from /proc (zombies included); the ones left after `withinMs`. */
async function leftOf(pids: number[], withinMs: number): Promise<number[]> {
  for (const pid of pids) await pathGone(`/proc/${pid}`, withinMs);
  return pids.filter((pid) => existsSync(`/proc/${pid}`));
}

t.test('the test profile compiles to the very filter of pure-compute, with and without the holder\'s exception', async (t) => {
  const shipped = parseProfile('pure-compute', JSON.parse(readFileSync(join(REPO_ROOT, 'sandbox-profiles', 'pure-compute.json'), 'utf8')));
  const twin = parseProfile('kernel-pure-native', JSON.parse(readFileSync(join(FIXTURES, 'sandbox-profiles', 'kernel-pure-native.json'), 'utf8')));
  for (const mmHolder of [false, true]) {
    const options = { ...shipped.syscalls, execGuard: true, mmHolder };
    t.ok(compileFilter(shipped, options).bpf.equals(compileFilter(twin, { ...twin.syscalls, execGuard: true, mmHolder }).bpf), `the same program (mmHolder ${mmHolder})`);
  }
  const without = compileFilter(shipped, { ...shipped.syscalls, execGuard: true }).bpf;
  t.notOk(without.equals(compileFilter(shipped, { ...shipped.syscalls, execGuard: true, mmHolder: true }).bpf), 'control: the exception changes the program');
});

t.test('pure-compute, prewarmed: each node has one holder, which the broker\'s walks and the stats tell from node', async (t) => {
  const kit = await start(t, [manifest('pc', 'pure-compute', true), manifest('plain', 'pure-compute', false)]);
  const conn = kit.broker.connect('pc');
  await conn.call('whoami', {});
  const spare = kit.broker.status('pc').sparePid ?? await nextSpare(kit, 'pc');
  for (const [what, spawned] of [['the helper', kit.status('pc').pid!], ['the warm spare', spare]] as const) {
    const { init, node, others } = sandboxOf(spawned);
    t.equal(others.length, 1, `${what}: bubblewrap's init has one child besides node`);
    const holder = others[0]!;
    t.equal(field(holder, 'Name'), 'bh-mm-holder', `${what}: named bh-mm-holder`);
    t.equal(field(holder, 'Threads'), '1', `${what}: one thread`);
    t.equal(field(holder, 'SigBlk'), 'fffffffffffbfeff', `${what}: every signal blocked (SIGKILL and SIGSTOP cannot be)`);
    t.equal(Number(field(holder, 'PPid')), init, `${what}: a child of the sandbox's init (CLONE_PARENT), not of the broker`);
    t.equal(readlinkSync(`/proc/${holder}/exe`), readlinkSync(`/proc/${node}/exe`), `${what}: node's binary`);
    if (libc.ok) t.equal(libc.libc.kcmpSameVm(node, holder), 0, `${what}: node's very address space (kcmp KCMP_VM)`);
    t.not(field(node, 'Threads'), '1', `${what}: node itself has threads, so it is never taken for its holder`);
    // The stats: the holder's RSS is node's pages, counted once.
    const stat = readFileSync(`/proc/${holder}/stat`, 'latin1');
    const status = readFileSync(`/proc/${holder}/status`, 'latin1');
    t.equal(parseProc(holder, stat, status)?.rssBytes, 0, `${what}: the holder adds no RSS`);
    t.ok((parseProc(holder, stat, status.replace('bh-mm-holder', 'node'))?.rssBytes ?? 0) > 0, `${what}: control: the same status under node's name would add its VmRSS`);
    const tree = new ProcessSampler().sample(spawned)!;
    t.equal(tree.processes, 4, `${what}: the tree has bubblewrap, its init, node and the holder`);
    const rss = (pid: number): number => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1] ?? 0) * 1024;
    t.ok(tree.rssBytes < rss(spawned) + rss(init) + rss(node) * 1.5, `${what}: the tree's RSS (${tree.rssBytes}) counts node's pages once (node ${rss(node)})`);
  }
  const detail = kit.broker.status('pc').sandbox?.rules.find((r) => r.rule === 'processes.children')?.detail ?? '';
  t.match(detail, /except exactly clone\(CLONE_VM \| CLONE_PARENT\)/, 'the report names the exception');
  // Control: a service without a spare gets neither the holder nor the exception.
  await kit.broker.connect('plain').call('whoami', {});
  t.same(sandboxOf(kit.status('plain').pid!).others, [], 'not prewarmed: no holder');
  t.notMatch(kit.broker.status('plain').sandbox?.rules.find((r) => r.rule === 'processes.children')?.detail ?? '', /CLONE_VM/, 'not prewarmed: no exception');
});

t.test('a crash: the spare takes over, and nothing of the old sandbox remains (holder included)', async (t) => {
  const kit = await start(t, [manifest('pc', 'pure-compute', true)]);
  const conn = kit.broker.connect('pc');
  await conn.call('whoami', {});
  for (let n = 1; n <= 2; n++) {
    const spawned = kit.status('pc').pid!;
    const spare = kit.broker.status('pc').sparePid ?? await nextSpare(kit, 'pc');
    const { init, node, others } = sandboxOf(spawned);
    t.equal(others.length, 1, `crash ${n}: a holder before the kill`);
    const exit = kit.nextExit('pc');
    process.kill(node, 'SIGKILL');
    await exit;
    t.equal(kit.status('pc').pid, spare, `crash ${n}: the spare serves`);
    t.ok(((await conn.call('whoami', {})) as { pid: number }).pid > 0, `crash ${n}: and answers`);
    t.same(await leftOf([spawned, init, node, ...others], 30_000), [], `crash ${n}: bubblewrap, its init, node and the holder are all gone`);
  }
});

t.test('a node that names itself bh-mm-holder is still node: hung up, it is killed at once, and nothing remains', async (t) => {
  // prctl(PR_SET_NAME) on node's main thread (process.title) gives /proc/<pid>/status the holder's Name line; node
  // keeps its threads, so the broker's walks still find it and the hang-up's kill is the immediate one (its reason),
  // not the channel-lost backstop's two seconds later.
  const kit = await start(t, [manifest('pc', 'pure-compute', true)]);
  const conn = kit.broker.connect('pc');
  await conn.call('whoami', { title: 'bh-mm-holder' });
  if (kit.broker.status('pc').sparePid === null) await nextSpare(kit, 'pc'); // a warm spare: the hang-up's walk runs at its takeover
  const spawned = kit.status('pc').pid!;
  const { init, node, others } = sandboxOf(spawned);
  t.equal(field(node, 'Name'), 'bh-mm-holder', 'control: node\'s Name line is the holder\'s');
  t.ok(Number(field(node, 'Threads')) > 1, 'node still has its threads');
  t.equal(helperNode(spawned, process.execPath), node, 'the walk still takes it for node');
  t.equal(others.length, 1, 'its real holder is there too');
  const exit = kit.nextExit('pc');
  const err = await rejection(conn.call('hangUp', {}));
  const info = await exit;
  t.equal(err.code, 'ERR_INTERRUPTED', 'the call in flight was interrupted');
  t.same({ signal: info.signal, requested: info.requested }, { signal: 'SIGKILL', requested: false }, 'the broker killed it');
  t.match(info.reason, /channel \(fd 3\) closed while it was still running/, 'at the hang-up (the walk found node), not by the backstop');
  t.same(await leftOf([spawned, init, node, ...others], 30_000), [], 'nothing of its sandbox remains');
});

t.test('a hostile helper under the same filter: only clone(CLONE_VM | CLONE_PARENT) gets through, and it buys nothing', async (t) => {
  const kit = await start(t, [kernel('kn')]);
  const conn = kit.broker.connect('kn');
  const native = async (fn: string, args: unknown[] = []): Promise<number> => ((await conn.call('native', { lib: PROBE, fn, args })) as { value: number }).value;
  const sys = (name: string, args: object = {}) => conn.call('syscall', { name, ...args });
  await sys('getpid');
  const spawned = kit.status('kn').pid!;
  const { init, node, others } = sandboxOf(spawned);
  t.equal(others.length, 1, 'control: this helper has its holder (the exception is in its filter)');

  t.ok(await native('bh_try_clone', [CLONE_VM | CLONE_PARENT]) > 0, 'control: clone(CLONE_VM | CLONE_PARENT) makes a task');
  const refused: [string, number][] = [
    ['fork-like clone (SIGCHLD)', SIGCHLD], ['clone(0)', 0], ['CLONE_VM', CLONE_VM], ['CLONE_PARENT', CLONE_PARENT],
    ['CLONE_VM | CLONE_VFORK', CLONE_VM | CLONE_VFORK], ['CLONE_VM | CLONE_PARENT | CLONE_VFORK', CLONE_VM | CLONE_PARENT | CLONE_VFORK],
    ['CLONE_VM | CLONE_PARENT | SIGCHLD', CLONE_VM | CLONE_PARENT | SIGCHLD], ['+ CLONE_FILES', CLONE_VM | CLONE_PARENT | 0x400],
    ['+ CLONE_PTRACE', CLONE_VM | CLONE_PARENT | 0x2000], ['+ CLONE_PIDFD', CLONE_VM | CLONE_PARENT | 0x1000],
    ['+ CLONE_UNTRACED', CLONE_VM | CLONE_PARENT | 0x800000], ['+ CLONE_NEWNS', CLONE_VM | CLONE_PARENT | 0x20000],
    ['+ CLONE_NEWPID', CLONE_VM | CLONE_PARENT | 0x20000000], ['+ CLONE_NEWUSER', CLONE_VM | CLONE_PARENT | 0x10000000],
    ['+ CLONE_IO (bit 31)', CLONE_VM | CLONE_PARENT | 0x80000000],
  ];
  for (const [what, flags] of refused) t.equal(await native('bh_try_clone', [flags]), EPERM, `${what}: EPERM`);
  t.same(await sys('fork'), { ok: false, code: 'EPERM' }, 'fork: EPERM');
  t.same(await sys('vfork'), { ok: false, code: 'EPERM' }, 'vfork: EPERM');
  t.same(await sys('clone3Holder'), { ok: false, code: 'ENOSYS' }, 'clone3 with CLONE_VM | CLONE_PARENT: ENOSYS (glibc falls back to clone)');
  t.match((await rejection(conn.call('run', { file: '/bin/true' }))).message, /Access to this API has been restricted/, 'child_process: refused (ERR_ACCESS_DENIED)');

  // Exec from a CLONE_VM task: execve EPERM, execveat ENOSYS (the exec guard); control: the same from this test, unsandboxed, execs.
  t.equal(await native('bh_clone_exec', ['/bin/true', CLONE_VM | CLONE_PARENT]), -1 * 1000 - 38, 'a CLONE_VM task cannot exec: execve EPERM, execveat ENOSYS');
  const local = koffi.load(PROBE).func('long bh_clone_exec(const char *path, unsigned long flags)');
  t.equal(Number(local('/bin/true', CLONE_VM | SIGCHLD)), 1, 'control: unsandboxed, the same task execs /bin/true');

  // A CLONE_VM task made to stay: every signal blocked, asleep. It is the init's child; the namespace's end takes it.
  const lingerPid = await native('bh_clone_linger');
  t.ok(lingerPid > 0, 'a lingering CLONE_VM task was made');
  const tasks = rawChildren(init).filter((pid) => pid !== node);
  // Found by its pid inside the sandbox (NSpid's last field), not by counting: the earlier tasks exit at once
  // but may still be zombies here until bubblewrap's init reaps them (seen on a loaded machine: 3 tasks, not 1).
  const lingering = tasks.filter((pid) => Number(field(pid, 'NSpid')?.split(/\s+/).at(-1)) === lingerPid);
  t.equal(lingering.length, 1, 'control: the lingering task is there, beside the holder');
  t.match(field(lingering[0]!, 'State') ?? '', /^[RS]/, 'control: and alive (running or asleep), not exited');
  const exit = kit.nextExit('kn');
  process.kill(node, 'SIGKILL');
  await exit;
  t.same(await leftOf([spawned, init, node, ...tasks], 30_000), [], 'after node\'s death nothing of the sandbox remains');
});

/** The directory of `pid`'s pids cgroup (v1's pids hierarchy, else v2's), or undefined. */
function pidsCgroup(pid: number): string | undefined {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'latin1').split('\n');
  const v1 = lines.find((l) => /^\d+:pids:/.test(l));
  const dir = v1 !== undefined ? join('/sys/fs/cgroup/pids', v1.slice(v1.indexOf(':pids:') + 6)) : join('/sys/fs/cgroup', (lines.find((l) => l.startsWith('0::')) ?? '0::/').slice(3));
  return existsSync(join(dir, 'pids.max')) ? dir : undefined;
}

t.test('clone(CLONE_VM | CLONE_PARENT) tasks are counted by the helper\'s pids limit: made until pids.max, then EAGAIN', async (t) => {
  const kit = await start(t, [kernel('kn')]);
  const conn = kit.broker.connect('kn');
  const native = async (fn: string): Promise<number> => ((await conn.call('native', { lib: PROBE, fn, args: [] })) as { value: number }).value;
  await conn.call('syscall', { name: 'getpid' });
  const spawned = kit.status('kn').pid!;
  const { init, node } = sandboxOf(spawned);
  const cgroup = pidsCgroup(node);
  if (cgroup === undefined) {
    t.plan(0, 'no pids cgroup for the helper');
    return;
  }
  const max = Number(readFileSync(join(cgroup, 'pids.max'), 'latin1'));
  t.equal(max, 64, 'the profile\'s limits.processes is the cgroup\'s pids.max');
  let made = 0;
  let last = 0;
  for (let i = 0; i < max + 8 && last >= 0; i++) {
    last = await native('bh_clone_linger');
    if (last > 0) made++;
  }
  t.ok(made > 0, `control: lingering CLONE_VM tasks were made (${made})`);
  t.equal(last, -11, 'then clone failed with EAGAIN: the limit counts them');
  t.equal(Number(readFileSync(join(cgroup, 'pids.current'), 'latin1')), max, 'the cgroup is full: node\'s threads, its holder and the clones');
  const tasks = rawChildren(init).filter((pid) => pid !== node);
  t.ok(tasks.length >= made, 'each clone is a task of its own under the sandbox\'s init');
  const exit = kit.nextExit('kn');
  process.kill(node, 'SIGKILL');
  await exit;
  t.same(await leftOf([spawned, init, node, ...tasks], 30_000), [], 'after node\'s death none of them remains');
});

t.test('fallback: without the library the launch plans no holder and no exception, and the takeover works as before', async (t) => {
  setHostProbeOverride((p) => ({ ...p, kernel: { ...p.kernel, mmPreload: null } }));
  t.teardown(() => setHostProbeOverride(undefined));
  const kit = await start(t, [manifest('pc', 'pure-compute', true)]);
  const conn = kit.broker.connect('pc');
  await conn.call('whoami', {});
  const spawned = kit.status('pc').pid!;
  const spare = kit.broker.status('pc').sparePid ?? await nextSpare(kit, 'pc');
  t.same(sandboxOf(spawned).others, [], 'no holder');
  t.notMatch(kit.broker.status('pc').sandbox?.rules.find((r) => r.rule === 'processes.children')?.detail ?? '', /CLONE_VM/, 'no exception');
  const exit = kit.nextExit('pc');
  process.kill(sandboxOf(spawned).node, 'SIGKILL');
  await exit;
  t.equal(kit.status('pc').pid, spare, 'the spare took over');
  t.ok(((await conn.call('whoami', {})) as { pid: number }).pid > 0, 'and answers');
});

/** What ld.so was given: the LD_PRELOAD entries of `pid`'s exec environment (the constructor's unsetenv leaves the block). */
function preloadEnv(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').filter((e) => e.startsWith('LD_PRELOAD='));
}
/** The files `pid` has mapped whose path ends in `/${name}`, with their inode (bind mounts keep it). */
function mapped(pid: number, name: string): { path: string; inode: number }[] {
  const seen = new Map<string, number>();
  for (const line of readFileSync(`/proc/${pid}/maps`, 'latin1').split('\n')) {
    const m = /^\S+ \S+ \S+ \S+ (\d+)\s+(\/.*)$/.exec(line);
    if (m !== null && m[2]!.endsWith(`/${name}`)) seen.set(m[2]!, Number(m[1]));
  }
  return [...seen].map(([path, inode]) => ({ path, inode }));
}

t.test('an install path with a space or a colon: the library is bound at one fixed path, the holder is made, the relaunch works', async (t) => {
  // LD_PRELOAD has no escape: ld.so splits it at every space and colon. bubblewrap binds the library (any path: one
  // argument) at MM_PRELOAD_BOUND, which the exec guard names. Each copy is a file of its own, so its inode shows
  // that node mapped exactly that file. Control: a plain path, the same way.
  t.teardown(() => setHostProbeOverride(undefined));
  for (const [what, dir] of [['control (no separator)', 'plain'], ['a space', 'my app'], ['a colon', 'a:b']] as const) {
    const library = join(probeDir, dir, 'mm_preload.so');
    mkdirSync(join(probeDir, dir), { mode: 0o755 });
    copyFileSync(MM_PRELOAD, library);
    chmodSync(library, 0o755);
    const inode = statSync(library).ino;
    setHostProbeOverride((p) => ({ ...p, kernel: { ...p.kernel, mmPreload: library } }));
    const kit = await startBroker({ root: FIXTURES, services: [manifest('pc', 'pure-compute', true)] as never });
    const ldso: string[] = [];
    kit.broker.on('log', (line) => { if (/LD_PRELOAD|ld\.so/.test(line.line)) ldso.push(line.line); });
    const conn = kit.broker.connect('pc');
    await conn.call('whoami', {});
    const spawned = kit.status('pc').pid!;
    const { node, others } = sandboxOf(spawned);
    t.same(others.map((pid) => field(pid, 'Name')), ['bh-mm-holder'], `${what}: a holder`);
    t.ok(/CLONE_VM/.test(kit.broker.status('pc').sandbox?.rules.find((r) => r.rule === 'processes.children')?.detail ?? ''), `${what}: and its exception`);
    t.same(preloadEnv(node), [`LD_PRELOAD=${MM_PRELOAD_BOUND}`], `${what}: ld.so was given the bound path alone`);
    t.same(mapped(node, 'mm_preload.so'), [{ path: MM_PRELOAD_BOUND, inode }], `${what}: node mapped that path, and it is the installed file (inode ${inode})`);
    // The relaunch: the spare (with a holder of its own) takes over after a crash and answers.
    const spare = kit.broker.status('pc').sparePid ?? await nextSpare(kit, 'pc');
    t.same(sandboxOf(spare).others.map((pid) => field(pid, 'Name')), ['bh-mm-holder'], `${what}: the spare has its holder`);
    const exit = kit.nextExit('pc');
    process.kill(node, 'SIGKILL');
    await exit;
    t.equal(kit.status('pc').pid, spare, `${what}: after a crash the spare serves`);
    t.ok(((await conn.call('whoami', {})) as { pid: number }).pid > 0, `${what}: and answers`);
    await kit.close();
    t.same(ldso, [], `${what}: nothing for ld.so to refuse`);
  }
});

t.test('the pieces ld.so would split an install path into (audit14) load nothing: libraries planted at them never run', async (t) => {
  // A library at `<dir>/my app/mm_preload.so`, split, would preload `<dir>/my` and, from node's cwd, `app/mm_preload.so`.
  // Planted libraries at both print from their constructors. Control, unsandboxed, with the split value: both run.
  // The sandboxed launch binds <dir> (kernel-pure-native reads ${probe}), so the absolute piece is in its view.
  t.teardown(() => setHostProbeOverride(undefined));
  const source = join(probeDir, 'planted.c');
  writeFileSync(source, '#include <unistd.h>\n#include <string.h>\n#ifndef TAG\n#define TAG "?"\n#endif\n__attribute__((constructor)) static void planted(void) { const char *m = "bh-planted-ran " TAG "\\n"; (void) !write(2, m, strlen(m)); }\n');
  mkdirSync(join(probeDir, 'app'), { recursive: true, mode: 0o755 });
  mkdirSync(join(probeDir, 'my app'), { recursive: true, mode: 0o755 });
  const library = join(probeDir, 'my app', 'mm_preload.so');
  copyFileSync(MM_PRELOAD, library);
  chmodSync(library, 0o755);
  for (const [tag, out] of [['absolute', join(probeDir, 'my')], ['relative', join(probeDir, 'app', 'mm_preload.so')]] as const) {
    execFileSync(process.env['CC'] ?? 'cc', ['-shared', '-fPIC', `-DTAG="${tag}"`, source, '-o', out], { stdio: 'ignore' });
    chmodSync(out, 0o755);
  }
  const control = spawnSync(process.execPath, ['-e', ''], { cwd: probeDir, env: { ...process.env, LD_PRELOAD: library }, encoding: 'latin1' });
  t.match(control.stderr, /bh-planted-ran absolute/, 'control: unsandboxed, the split value runs the library planted at the absolute piece');
  t.match(control.stderr, /bh-planted-ran relative/, 'control: and the one at the relative piece (from the cwd)');

  // Control: a helper's stderr reaches the broker's log, so a planted constructor that ran would be seen (the planted
  // library named as the holder's: bound and preloaded, it prints; it makes no holder).
  setHostProbeOverride((p) => ({ ...p, kernel: { ...p.kernel, mmPreload: join(probeDir, 'my') } }));
  const seen = await startBroker({ root: FIXTURES, services: [kernel('kn')] as never });
  const printed = new Promise<string>((resolve) => seen.broker.on('log', (line) => { if (line.line.includes('bh-planted-ran')) resolve(line.line); }));
  await seen.broker.connect('kn').call('syscall', { name: 'getpid' });
  t.match(await printed, /bh-planted-ran absolute/, 'control: a library preloaded in the sandboxed node prints into the broker\'s log');
  await seen.close();

  setHostProbeOverride((p) => ({ ...p, kernel: { ...p.kernel, mmPreload: library } }));
  const kit = await start(t, [kernel('kn')]);
  const lines: string[] = [];
  kit.broker.on('log', (line) => { lines.push(line.line); });
  const conn = kit.broker.connect('kn');
  await conn.call('syscall', { name: 'getpid' });
  const { node, others } = sandboxOf(kit.status('kn').pid!);
  t.ok(existsSync(join(probeDir, 'my')), 'the absolute piece is there, and inside the sandbox\'s view');
  t.same(others.map((pid) => field(pid, 'Name')), ['bh-mm-holder'], 'the holder is made');
  t.same(preloadEnv(node), [`LD_PRELOAD=${MM_PRELOAD_BOUND}`], 'ld.so was given the bound path alone');
  const fromDir = readFileSync(`/proc/${node}/maps`, 'latin1').split('\n').filter((l) => l.includes(probeDir));
  t.same(fromDir, [], 'node maps no file of that directory');
  const exit = kit.nextExit('kn');
  process.kill(node, 'SIGKILL');
  await exit;
  await conn.call('syscall', { name: 'getpid' }); // the spare, launched the same way, served the retry
  t.same(lines.filter((l) => /bh-planted-ran|ld\.so/.test(l)), [], 'no planted library ran, in the helper or its spare, and ld.so refused nothing');
});

t.test('fallback: the library loaded but its clone refused (a filter without the exception): node runs, no holder', async (t) => {
  // bubblewrap loads the filter and runs node with the library in LD_PRELOAD (as the exec guard would); node prints
  // bubblewrap's children. The filter is pure-compute's without the exec guard, so the exec of node is allowed.
  const profile = parseProfile('pure-compute', JSON.parse(readFileSync(join(REPO_ROOT, 'sandbox-profiles', 'pure-compute.json'), 'utf8')));
  const run = (mmHolder: boolean): Promise<{ children: number; out: string }> => {
    const file = join(probeDir, `filter-${String(mmHolder)}.bpf`);
    writeFileSync(file, compileFilter(profile, { ...profile.syscalls, execGuard: mmHolder, mmHolder }).bpf);
    const fd = openSync(file, 'r');
    const script = "const p = process.ppid; console.log(require('fs').readFileSync(`/proc/${p}/task/${p}/children`, 'latin1').trim().split(' ').length)";
    const child = spawn('bwrap', ['--dev-bind', '/', '/', '--seccomp', '3', '--', '/usr/bin/env', `LD_PRELOAD=${MM_PRELOAD}`, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe', fd] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
    return new Promise((resolve) => child.once('close', () => {
      closeSync(fd);
      resolve({ children: Number(out.trim().split('\n')[0]), out });
    }));
  };
  const refused = await run(false);
  t.equal(refused.children, 1, `the clone refused: node is bubblewrap's only child, and ran (${refused.out.trim()})`);
  const allowed = await run(true);
  t.equal(allowed.children, 2, `control: with the exception, node and its holder (${allowed.out.trim()})`);
});
