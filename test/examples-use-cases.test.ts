// Runs every use-case example under examples/ (all but the demo, which has its
// own test) as a user would, and checks what really happened from each one's
// final `EXAMPLE-RESULT {json}` line, from exit codes and from /proc:
//
//   typed-protocol      generated types are current (`bulkhead types --check`), the
//                       TypeScript app type-checks (tsc --noEmit) and its compiled JS runs
//   relaunch-in-tap     the user's own tap test passes when run standalone with node
//   scheduled-job       a scheduled run happens, and a persistent schedule makes up missed runs
//   daemon-two-clients  one identity is allowed, the other refused with ERR_NOT_PERMITTED
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, REPO_ROOT, alive, gone } from './helpers.js';

const EXAMPLES = join(REPO_ROOT, 'examples');
const TSC = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const RUN_TIMEOUT_MS = 60_000;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  wallMs: number;
}

/** The environment of a run, without what the tap runner sets for its own children. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== 'TAP' && !key.startsWith('TAP_') && key !== 'NODE_OPTIONS'));
}

/** Runs a node script from the repository root. */
function node(script: string, args: string[] = []): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = execFile(process.execPath, [script, ...args], { cwd: REPO_ROOT, env: cleanEnv(), timeout: RUN_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, signal: child.signalCode, stdout, stderr, wallMs: performance.now() - started });
    });
    child.on('error', reject);
  });
}

/** The JSON after `prefix` on the last line that starts with it. */
function resultLine<T>(stdout: string, prefix = 'EXAMPLE-RESULT '): T | undefined {
  const line = stdout.split('\n').filter((l) => l.startsWith(prefix)).at(-1);
  return line === undefined ? undefined : (JSON.parse(line.slice(prefix.length)) as T);
}

/** pids of live processes whose command line mentions dir (an example's helpers, or its daemon). */
function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

/**
 * No helper (or daemon) left under `dir` once the app exited. The broker's cache writers are the one kind of
 * process that may outlive the app for a moment (unref-ed by design, lib/broker/writer-process.ts: they finish
 * writing a cache for the next start): anything else left is a failure at once; a writer must end within 10 s.
 */
async function nothingLeftUnder(t: Test, dir: string, what = 'no helper left running'): Promise<void> {
  const left = processesUnder(dir);
  const cmd = (pid: number): string => { try { return readFileSync(`/proc/${String(pid)}/cmdline`, 'utf8').replaceAll('\0', ' '); } catch { return ''; } };
  // Command lines read once each; '' is a process that ended meanwhile.
  const notWriters = left.map(cmd).filter((line) => line !== '' && !/(?:code|validators)-cache-writer\.js/.test(line));
  t.same(notWriters, [], what);
  for (const pid of left) t.ok(await gone(pid, 10_000), `a cache writer (${String(pid)}) left after the app ended within 10 s`);
}

t.test('typed-protocol: generated types are current, the app type-checks, and its compiled JS runs', async (t) => {
  const dir = join(EXAMPLES, 'typed-protocol');
  const check = await node(CLI, ['types', join(dir, 'protocols'), '-o', join(dir, 'types'), '--check']);
  t.equal(check.code, 0, `bulkhead types --check: the committed types/ match the protocol (${check.stdout}${check.stderr})`);

  // The example's own tsconfig; its @ts-expect-error lines must each hide a real error, or tsc fails (TS2578).
  // One tsc run type-checks and emits (a run with --noEmit first checked the same program again): it exits non-zero
  // and prints the errors when the app does not type-check. Into a private directory inside the example (main.js
  // finds protocols/ one level up).
  const out = mkdtempSync(join(dir, '.test-build-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const build = await node(TSC, ['-p', dir, '--outDir', out, '--pretty', 'false']);
  t.equal(build.stdout, '', 'tsc reports nothing: the app type-checks');
  t.equal(build.code, 0, `tsc exits 0 and emits the app (${build.stdout})`);

  const run = await node(join(out, 'main.js'));
  const r = resultLine<{ ok: boolean; available: number; reservation: { reservationId: string; remaining: number }; lowStock: Array<{ sku: string; remaining: number }>; outOfStock: string; wrongType: string; unknownMethod: string }>(run.stdout);
  t.equal(run.code, 0, 'the compiled app exits 0');
  t.equal(run.stderr, '', 'nothing on stderr');
  if (r === undefined) return t.fail(`no EXAMPLE-RESULT line:\n${run.stdout}`);
  t.equal(r.ok, true);
  t.equal(r.available, 4, 'stock: the typed result came back');
  t.same(r.reservation, { reservationId: 'r-1', remaining: 2 });
  t.same(r.lowStock, [{ sku: 'pear', remaining: 2 }], 'the typed lowStock event arrived once');
  t.equal(r.outOfStock, 'OUT_OF_STOCK', 'a declared handler error arrives as data.remoteCode');
  t.equal(r.wrongType, 'ERR_INVALID_PARAMS', 'the call tsc refuses is refused at run time by the helper too');
  t.equal(r.unknownMethod, 'ERR_UNKNOWN_METHOD', 'an undeclared method is refused before sending');
  t.comment(`ran in ${Math.round(run.wallMs)} ms`); // a figure, not a bound: a hang is caught by RUN_TIMEOUT_MS (SIGKILL, so the exit code fails)
  await nothingLeftUnder(t, out);
});

t.test('relaunch-in-tap: the user\'s tap test passes when run with node', async (t) => {
  const dir = join(EXAMPLES, 'relaunch-in-tap');
  const run = await node(join(dir, 'counter.example-test.js'));
  t.equal(run.code, 0, 'the tap test file exits 0');
  t.equal(run.signal, null);
  const summary = /^# \{ total: (\d+), pass: (\d+)(.*)\}$/m.exec(run.stdout);
  t.ok(summary, `tap printed its summary:\n${run.stdout}`);
  t.equal(summary?.[1], summary?.[2], 'every assertion passed');
  t.ok(Number(summary?.[1]) >= 10, `${summary?.[1]} assertions ran`);
  t.equal(summary?.[3]?.trim().replace(/^,\s*/, ''), '', 'no failures, todos or skips');
  t.notMatch(run.stdout, /^\s*not ok /m);
  const r = resultLine<{ onDemand: { firstPid: number; secondPid: number; interrupted: string; launches: number }; keepAlive: { beforePid: number; afterPid: number; launches: number } }>(run.stdout, '# EXAMPLE-RESULT ');
  if (r === undefined) return t.fail(`no EXAMPLE-RESULT comment:\n${run.stdout}`);
  t.not(r.onDemand.secondPid, r.onDemand.firstPid, 'the next call ran in a relaunched helper (new pid)');
  t.equal(r.onDemand.interrupted, 'ERR_INTERRUPTED', 'the call in flight at the crash was interrupted');
  t.equal(r.onDemand.launches, 2);
  t.not(r.keepAlive.afterPid, r.keepAlive.beforePid, 'keepAlive relaunched the helper without a call');
  t.equal(r.keepAlive.launches, 2);
  for (const pid of [r.onDemand.firstPid, r.onDemand.secondPid, r.keepAlive.beforePid, r.keepAlive.afterPid]) t.equal(alive(pid), false, `helper ${pid} is gone`);
  await nothingLeftUnder(t, dir);
});

t.test('scheduled-job: a scheduled run, then a persistent schedule makes up the runs missed while down', async (t) => {
  const dir = join(EXAMPLES, 'scheduled-job');
  const run = await node(join(dir, 'main.js'));
  type Session = { missedWhileDown: number; launchesAtStart: number; firstNextRunInMs: number; run: { trigger: string; result: string; durationMs: number }; swept: { removed: string[]; kept: number; pid: number }; nextRunAt: number; lastRun: string | null };
  const r = resultLine<{ ok: boolean; intervalMs: number; downMs: number; workDir: string; first: Session; second: Session; left: string[]; elapsedMs: number }>(run.stdout);
  t.equal(run.code, 0, 'exits 0');
  t.equal(run.stderr, '', 'nothing on stderr');
  if (r === undefined) return t.fail(`no EXAMPLE-RESULT line:\n${run.stdout}`);
  t.equal(r.ok, true, 'the example judged its own run a success');

  t.equal(r.first.launchesAtStart, 0, 'registering a schedule launches nothing');
  t.ok(r.first.firstNextRunInMs > 0 && r.first.firstNextRunInMs <= r.intervalMs, `the first run was due one interval after registering (${r.first.firstNextRunInMs} ms)`);
  t.match(r.first.run, { trigger: 'schedule', result: 'ok' }, 'the scheduled run succeeded');
  t.same(r.first.swept.removed, ['2024-01-01.log', '2024-01-02.log'], 'it removed the two old files, as the helper reported');
  t.equal(r.first.swept.kept, 1);
  t.equal(r.first.lastRun, 'ok', 'status().schedule.lastRun');

  t.ok(r.second.missedWhileDown >= 1, `runs missed while down were counted (${r.second.missedWhileDown})`);
  t.match(r.second.run, { trigger: 'missed', result: 'ok' }, 'persistent: one make-up run at start');
  t.same(r.second.swept.removed, ['2024-01-03.log'], 'the make-up run removed the file that arrived while down');
  t.not(r.second.swept.pid, r.first.swept.pid, 'a new broker launched a new helper');
  t.same(r.left, ['today.log'], 'the fresh file was kept');
  t.equal(existsSync(r.workDir), false, 'the temp dir was removed');
  t.comment(`ran in ${Math.round(run.wallMs)} ms`); // a figure, not a bound: a hang is caught by RUN_TIMEOUT_MS (SIGKILL, so the exit code fails)
  await nothingLeftUnder(t, dir);
});

t.test('daemon-two-clients: one identity allowed, the other refused with ERR_NOT_PERMITTED', async (t) => {
  const dir = join(EXAMPLES, 'daemon-two-clients');
  const run = await node(join(dir, 'run.js'));
  interface App { app: string; greeter: { greeting: string; peer: string }; ledger: { entry?: number; by?: string; balanceCents?: number; code?: string } }
  const r = resultLine<{ ok: boolean; daemonPid: number; workDir: string; apps: { billing: App; reports: App }; launches: Record<string, number>; denied: Array<{ code: string; client: string; service: string }>; daemonExit: { code: number | null; signal: string | null }; socketRemoved: boolean; error?: { message: string } }>(run.stdout);
  t.equal(run.code, 0, 'exits 0');
  t.equal(run.stderr, '', 'nothing on stderr');
  if (r === undefined) return t.fail(`no EXAMPLE-RESULT line:\n${run.stdout}`);
  t.equal(r.ok, true, `the example judged its own run a success${r.error === undefined ? '' : `: ${r.error.message}`}`);

  t.same(r.apps.billing.greeter, { greeting: 'hello, billing', peer: 'billing' }, 'billing sees its own name as ctx.peer');
  t.same(r.apps.reports.greeter, { greeting: 'hello, reports', peer: 'reports' }, 'reports sees its own name as ctx.peer');
  t.same(r.apps.billing.ledger, { entry: 1, by: 'billing', balanceCents: 4200 }, 'billing, listed in clients, may call the ledger');
  t.same(r.apps.reports.ledger, { code: 'ERR_NOT_PERMITTED' }, 'reports, not listed, is refused');
  t.same(r.denied, [{ code: 'ERR_NOT_PERMITTED', client: 'reports', service: 'ledger' }], 'the daemon logged the one refusal, with the verified name');
  t.same(r.launches, { ledger: 1, greeter: 1 }, 'the refusal launched nothing');
  t.same(r.daemonExit, { code: 0, signal: null }, 'SIGTERM stopped the daemon cleanly');
  t.equal(r.socketRemoved, true, 'the daemon removed its socket');
  t.equal(alive(r.daemonPid), false, 'the daemon is gone');
  t.equal(existsSync(r.workDir), false, 'the temp dir (socket, CA, identities) was removed');
  t.comment(`ran in ${Math.round(run.wallMs)} ms`); // a figure, not a bound: a hang is caught by RUN_TIMEOUT_MS (SIGKILL, so the exit code fails)
  await nothingLeftUnder(t, dir, 'no helper or daemon left running');
});
