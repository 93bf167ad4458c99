// Limits of the whole helper (issue 12, item 4): every helper with memory, process or CPU
// limits runs in a cgroup of its own. Three children together over the memory limit end
// the helper, reported as a memory-limit death; a fork bomb stops at pids.max; cpu.max
// throttles (seen in the cgroup's own statistics); the cgroup is gone after the helper;
// a host without cgroups fails a strict profile closed and runs a best-effort one on
// rlimits that never break node. Positive controls: the same helpers under the limits.
import t, { type Test } from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBroker, type TestBroker } from 'bulkhead/testing';
import { setHostProbeOverride, type EnforcementReport } from '../lib/sandbox/index.js';
import { FIXTURES, recordUncaught, rejection } from './helpers.js';

const PROFILES = join(FIXTURES, 'sandbox', 'limits-profiles');
const MiB = 1024 * 1024;
const uncaught = recordUncaught();
t.afterEach(() => setHostProbeOverride(undefined));

const manifest = (name: string, sandbox: string) => ({ name, entry: './sandbox/limits-service.js', protocol: 'com.test.sandbox-limits', sandbox, launch: { throttleMs: 0, exitTimeoutMs: 500 } });

/** Starts a broker with one sandboxed service and launches it; `skip` says why this host cannot. */
async function launched(t: Test, name: string, profile: string): Promise<{ kit: TestBroker; report: EnforcementReport; skip?: string }> {
  const kit = await startBroker({ root: FIXTURES, profilesDir: PROFILES, services: [manifest(name, profile)] });
  t.teardown(() => kit.close());
  try {
    await kit.broker.connect(name).call('ping', {}, { timeoutMs: 20_000 });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_SANDBOX_UNENFORCEABLE') return { kit, report: undefined as never, skip: `this host has no cgroup layer: ${(err as Error).message}` };
    throw err;
  }
  return { kit, report: kit.broker.status(name).sandbox! };
}

/** The helper's cgroup directory for one controller (v1: its own hierarchy; v2: the one directory). */
function dirOf(report: EnforcementReport, controller: 'memory' | 'pids' | 'cpu'): string {
  const paths = report.cgroup!.paths;
  if (report.cgroup!.version === 2) return paths[0]!;
  const dir = paths.find((p) => p.includes(`/${controller}/`) || existsSync(join(p, controller === 'memory' ? 'memory.limit_in_bytes' : controller === 'pids' ? 'pids.max' : 'cpu.cfs_quota_us')));
  return dir!;
}

function keyed(file: string): Record<string, number> {
  return Object.fromEntries(readFileSync(file, 'utf8').trim().split('\n').map((line) => line.split(/\s+/)).map(([k, v]) => [k, Number(v)]));
}

t.test('three children together over the memory limit end the helper, reported as a memory-limit death; under it they run', async (t) => {
  const { kit, report, skip } = await launched(t, 'mem', 'limits-memory');
  if (skip !== undefined) return t.plan(0, skip);
  const rule = report.rules.find((r) => r.rule === 'limits.memoryMiB')!;
  t.match(rule.layers[0], /^cgroup-v[12]:memory$/, 'the helper\'s cgroup enforces the memory rule');
  t.equal(rule.unenforced, false);
  t.ok(!report.rules.some((r) => r.layers.includes('prlimit:data')), 'no RLIMIT_DATA with a cgroup (it would kill node 24+ at start)');
  const conn = kit.broker.connect('mem');

  // Positive control: three children of 40 MiB each, well inside 512 MiB together.
  t.same(await conn.call('children', { count: 3, mib: 40 }, { timeoutMs: 30_000 }), { ready: 3, exits: [] }, 'three children of 40 MiB run');

  // Each child of 200 MiB fits in 512 MiB alone (and in any per-process rlimit); three do not.
  const memoryDir = dirOf(report, 'memory');
  const exit = kit.nextExit('mem');
  const err = await rejection(conn.call('children', { count: 3, mib: 200 }, { timeoutMs: 30_000 }));
  const info = await exit;
  t.equal(err.code, 'ERR_INTERRUPTED', 'the call in flight is interrupted: the helper died');
  t.equal(err.data['reason'], 'memory limit (512 MiB)', `the reason names the limit (the helper showed ${info.signal ?? `code ${info.code}`})`);
  t.equal(info.reason, 'memory limit (512 MiB)');
  t.equal(kit.status('mem').lastExit?.reason, 'memory limit (512 MiB)', 'status says so too');
  t.equal(info.requested, false);
  // The figures for the report: what the helper held when it was stopped.
  const memory = kit.broker.status('mem').sandbox!.cgroup!.memory!;
  t.ok(memory.oomKills >= 1, `the cgroup's OOM killer killed ${memory.oomKills} process(es); the rest were killed with them`);
  const peak = memory.peakBytes!;
  t.ok(peak <= 512 * MiB && peak > 400 * MiB, `the helper held at most the limit: peak ${(peak / MiB).toFixed(1)} MiB of 512`);
  t.comment(`memory-limit death: peak ${(peak / MiB).toFixed(1)} MiB, ${memory.oomKills} OOM kill(s), ${memory.limitHits} limit hits, signal ${info.signal}, code ${info.code}, reason "${info.reason}"`);
  // The killed children are not our children: no event tells when the kernel has reaped them, so poll (bounded).
  const emptied = async (withinMs: number): Promise<boolean> => {
    const deadline = performance.now() + withinMs;
    for (;;) {
      if (!existsSync(memoryDir) || readFileSync(join(memoryDir, 'cgroup.procs'), 'utf8').trim() === '') return true;
      if (performance.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  t.ok(await emptied(30_000), 'nothing of the helper still runs in its cgroup');

  // The next call relaunches a fresh helper in a fresh cgroup.
  await conn.call('ping', {});
  t.equal(kit.status('mem').launches, 2, 'the next call relaunched it');
  t.same(uncaught, []);
});

t.test('a fork bomb stops at pids.max: every process and thread of the helper together', async (t) => {
  const { kit, report, skip } = await launched(t, 'bomb', 'limits-forkbomb');
  if (skip !== undefined) return t.plan(0, skip);
  const rule = report.rules.find((r) => r.rule === 'limits.processes')!;
  t.match(rule.layers, [/^cgroup-v[12]:pids$/], 'pids.max enforces it, not RLIMIT_NPROC');
  const pidsDir = dirOf(report, 'pids');
  t.equal(readFileSync(join(pidsDir, 'pids.max'), 'utf8').trim(), '48');
  const r = await kit.broker.connect('bomb').call('forkBomb', { max: 10_000 }, { timeoutMs: 30_000 }) as { spawned: number; error: string | null };
  t.equal(r.error, 'EAGAIN', `spawn failed with EAGAIN after ${r.spawned} children`);
  t.ok(r.spawned > 0 && r.spawned < 48, `${r.spawned} children: the limit counts node's own threads too`);
  t.ok(Number(readFileSync(join(pidsDir, 'pids.current'), 'utf8')) <= 48, 'the cgroup never holds more than 48 tasks');
  t.ok(keyed(join(pidsDir, 'pids.events'))['max']! > 0, 'the cgroup counted the refused forks (pids.events max)');
  await kit.crash('bomb');
  await kit.close();
  t.notOk(existsSync(pidsDir), 'its cgroup is gone once the broker closed, children and all');
});

t.test('cpu.max throttles the helper (cgroup statistics); under a generous quota the same work is not throttled', async (t) => {
  const limited = await launched(t, 'slow', 'limits-cpu');
  if (limited.skip !== undefined) return t.plan(0, limited.skip);
  const rule = limited.report.rules.find((r) => r.rule === 'limits.cpuPercent')!;
  t.match(rule.layers, [/^cgroup-v[12]:cpu$/]);
  const cpuDir = dirOf(limited.report, 'cpu');
  const stat = (dir: string): Record<string, number> => keyed(join(dir, 'cpu.stat'));
  const r = await limited.kit.broker.connect('slow').call('spin', { ms: 1000 }, { timeoutMs: 30_000 }) as { cpuMs: number };
  const after = stat(cpuDir);
  t.ok(after['nr_throttled']! > 0, `throttled in ${after['nr_throttled']} of ${after['nr_periods']} periods`);
  t.ok(r.cpuMs < 600, `1 s of spinning got ${r.cpuMs.toFixed(0)} ms of CPU at 10% (bound 600 ms; the quota is 100 ms per s)`);

  // Positive control: the same work under a quota of 10 CPUs is never throttled.
  const free = await launched(t, 'fast', 'limits-cpu-wide');
  const freeDir = dirOf(free.report, 'cpu');
  await free.kit.broker.connect('fast').call('spin', { ms: 300 }, { timeoutMs: 30_000 });
  t.equal(stat(freeDir)['nr_throttled'], 0, 'a generous quota, no throttling');
});

t.test('the cgroup is removed after the helper exits, and after a crash', async (t) => {
  const { kit, report, skip } = await launched(t, 'gone', 'limits-memory');
  if (skip !== undefined) return t.plan(0, skip);
  const paths = report.cgroup!.paths;
  t.ok(paths.length > 0 && paths.every((p) => existsSync(p)), `the helper runs in ${paths.join(', ')}`);
  const { pid } = await kit.broker.connect('gone').call('ping', {}) as { pid: number };
  const procs = paths.flatMap((p) => readFileSync(join(p, 'cgroup.procs'), 'utf8').trim().split('\n').map(Number));
  t.ok(procs.length > 0, 'its processes are in the cgroup');
  t.ok(procs.includes(pid) || report.cgroup!.version === 1, 'node itself is in it (pid namespaces hide the host pid; v1 lists host pids)');
  await kit.crash('gone');
  const relaunched = await kit.broker.connect('gone').call('ping', {}) as { pid: number };
  t.ok(relaunched.pid > 0);
  const second = kit.broker.status('gone').sandbox!.cgroup!.paths;
  t.not(second[0], paths[0], 'a relaunch gets a fresh cgroup');
  await kit.close();
  t.same([...paths, ...second].filter((p) => existsSync(p)), [], 'both cgroups are gone');
});

t.test('a host without cgroups: strict fails closed naming the layer; best-effort runs on rlimits that never break node', async (t) => {
  setHostProbeOverride((p) => ({ ...p, cgroup: null }));
  const kit = await startBroker({ root: FIXTURES, profilesDir: PROFILES, services: [manifest('strict', 'limits-forkbomb')] });
  t.teardown(() => kit.close());
  const err = await rejection(kit.broker.connect('strict').call('ping', {}));
  t.equal(err.code, 'ERR_SANDBOX_UNENFORCEABLE');
  t.equal(err.data['rule'], 'limits.memoryMiB', 'the first rule no layer enforces');
  t.match(String(err.data['missing']), /^a per-helper cgroup memory controller/);
  t.match(err.message, /missing layer a per-helper cgroup memory controller/);
  t.same((err.data['rules'] as { rule: string }[]).map((r) => r.rule), ['limits.memoryMiB', 'limits.processes'], 'memory and processes both need the cgroup');
  t.equal(kit.status('strict').launches, 0, 'nothing was spawned');
});

t.test('best-effort without cgroups: node starts under the RLIMIT_DATA fallback on this node line, and the report says it is per process', async (t) => {
  setHostProbeOverride((p) => ({ ...p, cgroup: null }));
  const kit = await startBroker({ root: FIXTURES, profilesDir: join(FIXTURES, 'sandbox', 'limits-profiles-best-effort'), services: [manifest('loose', 'limits-loose')] });
  t.teardown(() => kit.close());
  const { pid } = await kit.broker.connect('loose').call('ping', {}, { timeoutMs: 20_000 }) as { pid: number };
  t.ok(pid > 0, `the helper started on node ${process.version}`);
  const report = kit.broker.status('loose').sandbox!;
  const rule = report.rules.find((r) => r.rule === 'limits.memoryMiB')!;
  t.equal(rule.unenforced, true, 'reported unenforced: an rlimit is per process');
  t.same(rule.layers, ['prlimit:data', 'v8:max-old-space-size']);
  t.match(rule.missing, /cgroup memory controller/);
  t.equal(report.cgroup, undefined, 'no cgroup');
});

t.test('the shipped no-network profile stops a fork bomb at its 256 tasks', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [manifest('nonet', 'no-network')] });
  t.teardown(() => kit.close());
  const conn = kit.broker.connect('nonet');
  try {
    await conn.call('ping', {}, { timeoutMs: 20_000 });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_SANDBOX_UNENFORCEABLE') return t.plan(0, `no cgroup layer here: ${(err as Error).message}`);
    throw err;
  }
  const rule = kit.broker.status('nonet').sandbox!.rules.find((r) => r.rule === 'limits.processes')!;
  t.match(rule.layers, [/^cgroup-v[12]:pids$/]);
  const r = await conn.call('forkBomb', { max: 10_000 }, { timeoutMs: 60_000 }) as { spawned: number; error: string | null };
  t.equal(r.error, 'EAGAIN', `spawn failed with EAGAIN after ${r.spawned} children`);
  t.ok(r.spawned > 200 && r.spawned < 256, `${r.spawned} children, under the profile's 256`);
  await kit.crash('nonet');
  await kit.close();
  t.same(uncaught, []);
});
