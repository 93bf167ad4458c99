// The parent-death stage (lib/broker/parent-death.ts, native/parent-death/parent_death.c):
// an unsandboxed helper dies with its broker even when its event loop is blocked, through
// the native stage and through the setpriv fallback; the native stage refuses to start a
// helper whose broker is already gone, and otherwise changes nothing but the signal.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NATIVE_PARENT_DEATH_STAGE, PARENT_GONE_EXIT, nativeParentDeathStage, setprivPath, verifiedNativeStage, withParentDeathSignal } from '../lib/broker/parent-death.js';
import { elfProblem } from '../lib/broker/elf-check.js';
import { alive, dead, FIXTURES, firstStdoutLine } from './helpers.js';

const native = nativeParentDeathStage();

/** Runs `command args`, collecting stdout/stderr and the exit code. */
function run(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string; pid: number | undefined }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(env === undefined ? {} : { env }) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr, pid: child.pid }));
  });
}

t.test('the plan: native stage first (broker pid, then the command), setpriv without it, unchanged when it already dies with its parent', async (t) => {
  const plan = { command: '/usr/bin/node', args: ['entry.js'] };
  t.same(withParentDeathSignal(plan, '/x/parent-death'), { command: '/x/parent-death', args: [String(process.pid), '/usr/bin/node', 'entry.js'] });
  const setpriv = setprivPath();
  t.same(withParentDeathSignal(plan, null), setpriv === null ? plan : { command: setpriv, args: ['--pdeathsig', 'KILL', '--', '/usr/bin/node', 'entry.js'] });
  const wrapped = withParentDeathSignal(plan, '/x/parent-death');
  t.same(withParentDeathSignal({ ...wrapped, command: NATIVE_PARENT_DEATH_STAGE }, '/x/parent-death').args, wrapped.args, 'never wrapped twice');
  t.equal(withParentDeathSignal({ command: 'node', args: [] }, '/x/parent-death').command, setpriv ?? 'node', 'a bare command name (no PATH lookup in the stage) goes through setpriv');
  t.same(withParentDeathSignal({ command: 'bwrap', args: ['--die-with-parent', 'node'] }, '/x/parent-death').command, 'bwrap');
  t.equal(withParentDeathSignal(plan).command, native ?? setpriv ?? plan.command, 'the default is the built native stage, else setpriv');
});

t.test('the ELF check: the built stage passes; a script, a foreign machine and a missing loader do not', async (t) => {
  t.ok(native !== null, 'the native stage is built here (CI installs gcc): positive control');
  t.equal(elfProblem(process.execPath), null, 'node itself passes');
  t.match(elfProblem(process.execPath, 'riscv64'), /ELF machine/);
  const dir = mkdtempSync(join(tmpdir(), 'pdeath-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const script = join(dir, 'script');
  writeFileSync(script, '#!/bin/sh\nexit 120\n');
  chmodSync(script, 0o755);
  t.equal(elfProblem(script), 'not an ELF file');
  t.equal(verifiedNativeStage(script), null);
  t.equal(verifiedNativeStage(join(dir, 'absent')), null);
  // A directory opens but cannot be read (EISDIR): a reason, never a throw that would fail every unsandboxed launch.
  t.equal(typeof elfProblem(dir), 'string', 'a directory: a reason, not a throw');
  t.equal(verifiedNativeStage(dir), null, 'a directory is not a stage');
});

t.test('the native stage execs the target unchanged: same pid, env and fds passed, exit status the target\'s', { skip: native === null && 'native stage not built' }, async (t) => {
  const r = await run(native!, [String(process.pid), process.execPath, '-e', 'process.stdout.write(JSON.stringify({ pid: process.pid, foo: process.env.FOO, argv: process.argv.slice(1) })); process.exit(7)', 'a b'], { FOO: 'bar' });
  t.equal(r.code, 7, 'the exit status is node\'s');
  const seen = JSON.parse(r.stdout) as { pid: number; foo: string; argv: string[] };
  t.equal(seen.pid, r.pid, 'node runs in the stage\'s process (exec, no fork)');
  t.equal(seen.foo, 'bar', 'the environment passes through');
  t.same(seen.argv, ['a b'], 'the arguments pass through unchanged');
});

t.test('the race: a broker that died before the prctl → the stage exits 121 without exec\'ing the target', { skip: native === null && 'native stage not built' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pdeath-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const marker = join(dir, 'ran');
  const target = ['-e', `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'x')`];
  const ok = await run(native!, [String(process.pid), process.execPath, ...target]);
  t.equal(ok.code, 0);
  t.ok(existsSync(marker), 'positive control: with its broker alive the target ran');
  rmSync(marker);
  // The stage's parent is this test; told its broker is another pid, it sees what it would see
  // after the broker died (a reaper as parent) and must refuse.
  const gonePid = String(process.ppid);
  const refused = await run(native!, [gonePid, process.execPath, ...target]);
  t.equal(refused.code, PARENT_GONE_EXIT, 'exits 121');
  t.match(refused.stderr, /the broker \(pid \d+\) died before the helper started/);
  t.notOk(existsSync(marker), 'the target never ran');
  const usage = await run(native!, []);
  t.equal(usage.code, 120, 'no command: its usage exit');
  const bad = await run(native!, ['12x', process.execPath]);
  t.equal(bad.code, 120, 'a malformed pid: usage exit');
  const noPath = await run(native!, [String(process.pid), 'node', '-e', '0']);
  t.equal(noPath.code, 120, 'a command name, not a path: usage exit (no PATH lookup)');
  const missing = await run(native!, [String(process.pid), '/nonexistent/node']);
  t.equal(missing.code, 122, 'an exec that fails: 122');
  t.match(missing.stderr, /exec of \/nonexistent\/node failed/);
});

async function killHostWithBlockedHelper(t: Test, mode: 'native' | 'setpriv'): Promise<void> {
  const host = spawn(process.execPath, [join(FIXTURES, 'supervision', 'pdeath-host.js'), mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    host.kill('SIGKILL');
  });
  const line = await firstStdoutLine(host);
  const { helperPid, stagePid, command } = JSON.parse(line) as { helperPid: number; stagePid: number; command: string };
  t.equal(command, mode === 'native' ? native : setprivPath(), `started through the ${mode} stage`);
  t.equal(helperPid, stagePid, 'the stage exec\'d node in its own process');
  t.ok(alive(helperPid), 'positive control: the helper runs (and answered with its pid)');
  const hostExit = new Promise((resolve) => host.once('exit', resolve));
  host.kill('SIGKILL');
  await hostExit;
  t.ok(await dead(helperPid, 30_000), 'the helper, its event loop blocked, died with its host');
}

t.test('SIGKILL of the host: a blocked helper started through the native stage dies too', { skip: native === null && 'native stage not built' }, async (t) => {
  await killHostWithBlockedHelper(t, 'native');
});

t.test('SIGKILL of the host: a blocked helper started through setpriv (the fallback) dies too', { skip: setprivPath() === null && 'no setpriv on this host' }, async (t) => {
  await killHostWithBlockedHelper(t, 'setpriv');
});

t.test('a plan that drops the user with setpriv gets the stage after the drop (the kernel clears the signal at a uid change)', async (t) => {
  const plan = { command: '/bin/sh', args: ['-c', 'exec "$@"', 'sh', '/usr/bin/setpriv', '--reuid=65534', '--regid=65534', '--', process.execPath, 'entry.js'] };
  const at = plan.args.indexOf('--') + 1;
  if (native !== null) {
    const wrapped = withParentDeathSignal(plan, native);
    t.equal(wrapped.command, '/bin/sh', 'not around the whole chain');
    t.same(wrapped.args.slice(at, at + 3), [native, String(process.pid), process.execPath], 'the native stage right after setpriv\'s --');
    t.equal(withParentDeathSignal(wrapped, native), wrapped, 'wrapped once');
  }
  const fallback = withParentDeathSignal(plan, null);
  if (setprivPath() !== null) t.same(fallback.args.slice(at, at + 5), [setprivPath(), '--pdeathsig', 'KILL', '--', process.execPath], 'without the native stage: setpriv --pdeathsig after the drop');
});

t.test('root broker without bubblewrap, helper dropped to another user, loop blocked: it dies with its host', { skip: process.getuid?.() !== 0 && 'needs root (the uid drop)' }, async (t) => {
  const host = spawn(process.execPath, [join(FIXTURES, 'supervision', 'blocked-dropped-host.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    host.kill('SIGKILL');
  });
  const { helperPid, enforcement } = JSON.parse(await firstStdoutLine(host)) as { helperPid: number; enforcement: string };
  t.teardown(() => {
    try {
      process.kill(helperPid, 'SIGKILL');
    } catch { /* gone, as it should be */ }
  });
  t.equal(enforcement, 'best-effort', 'launched without bubblewrap (the probe override)');
  const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${String(helperPid)}/status`, 'utf8'))![1]);
  t.not(uid, 0, `positive control: the helper runs, as uid ${String(uid)} (dropped by setpriv)`);
  t.ok(alive(helperPid), 'positive control: the helper runs, its loop blocked');
  host.kill('SIGKILL');
  t.ok(await dead(helperPid, 30_000), 'the dropped, blocked helper died with its host');
});
