// The fast tier of issue 12's limits (no process spawned): which layer the compiler picks for
// memory, tasks and CPU with and without a cgroup layer, per Node line; the RLIMIT_DATA fallback
// never goes below what the node line reserves; the cgroup join is the first wrapper after env;
// a memory-limit death is read from the cgroup's counters whatever the signal.
import t from 'tap';
import { compileProfile, type CompileInput } from '../lib/sandbox/compile.js';
import { explainExit } from '../lib/sandbox/exit-reason.js';
import { isolateReserveMiB, type HostProbe } from '../lib/sandbox/host-probe.js';
import { parseProfile } from '../lib/sandbox/index.js';

const MiB = 1024 * 1024;

const probe = (over: { major?: number; cgroup?: boolean; allowNet?: boolean } = {}): HostProbe => {
  const major = over.major ?? 24;
  return {
    isRoot: true, uid: 0, bwrap: '/usr/bin/bwrap', bwrapTmpfsSize: true, bwrapDisableUserns: true, bwrapProblem: null, userNamespaces: true,
    kernel: { seccompProblem: 'not needed by these tests', libseccomp: null, landlockAbi: 0, execGuardProblem: 'not needed by these tests' },
    unshare: '/usr/bin/unshare', setpriv: '/usr/bin/setpriv', prlimit: '/usr/bin/prlimit', pasta: null, env: '/usr/bin/env', sh: '/bin/sh',
    node: { flag: major >= 22 ? '--permission' : '--experimental-permission', allowAddons: true, disableWarning: true, allowNet: over.allowNet ?? major >= 25, major, isolateReserveMiB: isolateReserveMiB(major) },
    runtimeRoots: [{ path: '/usr', symlink: null }],
    cgroup: over.cgroup === false ? null : { version: 1, parents: { memory: '/sys/fs/cgroup/memory/x/bulkhead', pids: '/sys/fs/cgroup/pids/bulkhead', cpu: '/sys/fs/cgroup/cpu/bulkhead' }, problem: null },
  };
};

const joined: unknown[] = [];
const input: CompileInput = {
  service: 's', nodePath: '/usr/bin/node', nodeArgs: [], entry: '/app/s.js', reads: ['/app/s.js'], writes: [], scratch: '/tmp/scr', scratchTmp: '/tmp/scr/tmp',
  cgroupFor: (limits) => {
    joined.push(limits);
    return ['/sys/fs/cgroup/memory/x/bulkhead/s.1/cgroup.procs', '/sys/fs/cgroup/pids/bulkhead/s.1/cgroup.procs'];
  },
};
const profile = (limits: Record<string, number>, workers = false) => parseProfile('p', { limits, processes: { workers }, enforcement: 'best-effort' });
const rule = (c: ReturnType<typeof compileProfile>, name: string) => c.rules.find((r) => r.rule === name)!;

t.test('isolateReserveMiB: what V8 reserves per isolate, by Node line (measured), and the larger one when unknown', async (t) => {
  t.same([20, 22, 24, 26, 0].map(isolateReserveMiB), [0, 0, 576, 576, 576]);
});

t.test('with a cgroup layer: memory, tasks and CPU go to the cgroup, no RLIMIT_DATA/NPROC, sh joins first', async (t) => {
  joined.length = 0;
  const c = compileProfile(profile({ memoryMiB: 512, processes: 64, cpuPercent: 50, openFiles: 64 }), probe(), input);
  t.same(rule(c, 'limits.memoryMiB').layers, ['cgroup-v1:memory', 'v8:max-old-space-size']);
  t.same(rule(c, 'limits.processes').layers, ['cgroup-v1:pids']);
  t.same(rule(c, 'limits.cpuPercent').layers, ['cgroup-v1:cpu']);
  t.notOk(c.rules.some((r) => r.rule.startsWith('limits.') && r.unenforced), 'no limit unenforced');
  t.same(joined, [{ memoryMiB: 512, processes: 64, cpuPercent: 50 }], 'the cgroup is asked for once, with its limits');
  t.same(c.cgroupLimits, { memoryMiB: 512, processes: 64, cpuPercent: 50 });
  const argv = [c.command, ...c.args];
  t.equal(argv[0], '/usr/bin/env', 'env -u stays the outermost wrapper');
  const sh = argv.indexOf('/bin/sh');
  t.ok(sh > 0 && sh < argv.indexOf('/usr/bin/prlimit'), 'sh (the cgroup join) runs before prlimit, bwrap and node');
  t.same(argv.slice(sh + 3, sh + 6), ['bulkhead-cgroup-join', '2', '/sys/fs/cgroup/memory/x/bulkhead/s.1/cgroup.procs']);
  t.notOk(argv.some((a) => a.startsWith('--data=') || a.startsWith('--nproc=')), 'no RLIMIT_DATA, no RLIMIT_NPROC');
  t.ok(argv.includes('--nofile=64:64'), 'per-process rlimits stay rlimits');
  t.ok(argv.includes('--max-old-space-size=256'), 'the V8 heap cap is half the limit');
});

t.test('without a cgroup layer: the rules are unenforced, naming the cgroup; RLIMIT_DATA is the limit plus the line\'s reserve', async (t) => {
  for (const major of [20, 22, 24, 26]) {
    const c = compileProfile(profile({ memoryMiB: 512, processes: 64, cpuPercent: 50 }), probe({ major, cgroup: false }), input);
    const memory = rule(c, 'limits.memoryMiB');
    t.equal(memory.unenforced, true, `node ${major}: memory unenforced`);
    t.match(memory.missing, /^a per-helper cgroup memory controller/);
    const data = (512 + isolateReserveMiB(major)) * MiB;
    t.ok(c.args.includes(`--data=${data}:${data}`), `node ${major}: RLIMIT_DATA ${512 + isolateReserveMiB(major)} MiB`);
    t.equal(rule(c, 'limits.processes').unenforced, true);
    t.same(rule(c, 'limits.cpuPercent').layers, []);
    t.equal(c.cgroupLimits, undefined);
    t.notOk(c.args.includes('/bin/sh'), 'no cgroup join');
  }
  const workers = compileProfile(profile({ memoryMiB: 512 }, true), probe({ major: 24, cgroup: false }), input);
  t.notOk(workers.args.some((a) => a.startsWith('--data=')), 'node 24 with workers allowed: no RLIMIT_DATA at all (each worker reserves another 523 MiB)');
  t.same(rule(workers, 'limits.memoryMiB').layers, ['v8:max-old-space-size']);
  const old = compileProfile(profile({ memoryMiB: 512 }, true), probe({ major: 20, cgroup: false }), input);
  t.ok(old.args.includes(`--data=${512 * MiB}:${512 * MiB}`), 'node 20 with workers: its workers reserve next to nothing');
});

t.test('--permission from Node 22.13, --allow-net where the node has it (or fd 3 would be refused)', async (t) => {
  const flags = (major: number) => compileProfile(profile({}), probe({ major }), input).args;
  t.ok(flags(20).includes('--experimental-permission'));
  t.ok(flags(24).includes('--permission'));
  t.notOk(flags(24).includes('--allow-net'));
  t.ok(flags(26).includes('--allow-net'));
});

t.test('explainExit: the cgroup\'s OOM counter decides, whatever signal the helper showed', async (t) => {
  const limits = { memoryMiB: 512 };
  for (const signal of ['SIGKILL', 'SIGSEGV', 'SIGABRT'] as const) {
    t.equal(explainExit(limits, null, signal, [], { oomKills: 1, limitHits: 0 }), 'memory limit (512 MiB)', signal);
  }
  t.equal(explainExit(limits, 137, null, [], { oomKills: 1, limitHits: 0 }), 'memory limit (512 MiB)', '128 + SIGKILL from bubblewrap');
  t.equal(explainExit(limits, null, 'SIGSEGV', [], { oomKills: 0, limitHits: 3 }), 'memory limit (512 MiB)', 'an allocation that hit the limit, then a crash');
  t.equal(explainExit(limits, null, 'SIGKILL', [], { oomKills: 0, limitHits: 0 }), undefined, 'a SIGKILL with clean counters is not blamed on memory');
  t.equal(explainExit(limits, 1, null, [], { oomKills: 0, limitHits: 5 }), undefined, 'a plain exit is not either');
  t.equal(explainExit({}, null, 'SIGKILL', [], { oomKills: 1, limitHits: 0 }), undefined, 'no memory limit, no blame');
});
