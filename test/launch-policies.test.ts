// Launch policies with real helpers: keepAlive variants, runAtLoad, idle exit
// and transactions, schedules driven by an injected clock, watched paths.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JobRunResult, ServiceManifest } from 'bulkhead';
import { ManualClock, startBroker, type TestBroker } from 'bulkhead/testing';
import { FIXTURES } from './helpers.js';

const jobs = (launch: ServiceManifest['launch'], extra: Partial<ServiceManifest> = {}): ServiceManifest =>
  ({ name: 'jobs', entry: './jobs-service.js', protocol: 'com.test.jobs', launch: { throttleMs: 0, ...launch }, ...extra });

function nextJob(kit: TestBroker): Promise<JobRunResult> {
  return new Promise((resolve) => {
    const sub = kit.broker.on('job', (_service, result) => {
      sub.dispose();
      resolve(result);
    });
  });
}

function tempDir(t: { teardown(fn: () => void): void }, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('keepAlive: true relaunches after a clean exit and after a crash', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [jobs({ keepAlive: true })] });
  t.teardown(() => kit.close());
  await kit.waitFor('jobs', 'running');
  t.equal(kit.status('jobs').launches, 1, 'keepAlive implies launch at load');
  const exit = kit.nextExit('jobs');
  await kit.broker.connect('jobs').call('exit', { code: 0 });
  t.equal((await exit).code, 0);
  t.equal(kit.status('jobs').state, 'launching', 'relaunched at once after exit 0');
  await kit.waitFor('jobs', 'running');
  await kit.crash('jobs');
  t.equal(kit.status('jobs').state, 'launching', 'relaunched after SIGKILL');
  await kit.waitFor('jobs', 'running');
  t.equal(kit.status('jobs').launches, 3);
});

t.test('keepAlive: { crashed: true } relaunches only after a crash', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [jobs({ keepAlive: { crashed: true } })] });
  t.teardown(() => kit.close());
  await kit.waitFor('jobs', 'running');
  await kit.crash('jobs');
  t.equal(kit.status('jobs').state, 'launching', 'crash → relaunch');
  await kit.waitFor('jobs', 'running');
  const exit = kit.nextExit('jobs');
  await kit.broker.connect('jobs').call('exit', { code: 0 });
  await exit;
  t.equal(kit.status('jobs').state, 'idle', 'clean exit → stays down');
  const failing = kit.nextExit('jobs');
  await kit.broker.connect('jobs').call('exit', { code: 2 }); // an on-demand launch, then exit 2
  t.equal((await failing).code, 2);
  t.equal(kit.status('jobs').state, 'launching', 'non-zero exit counts as a crash → relaunch');
});

t.test('keepAlive: { successfulExit: true } relaunches only after exit 0', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [jobs({ keepAlive: { successfulExit: true } })] });
  t.teardown(() => kit.close());
  await kit.waitFor('jobs', 'running');
  await kit.crash('jobs');
  t.equal(kit.status('jobs').state, 'idle', 'crash → stays down');
  const exit = kit.nextExit('jobs');
  await kit.broker.connect('jobs').call('exit', { code: 0 });
  await exit;
  t.equal(kit.status('jobs').state, 'launching', 'clean exit → relaunch');
});

t.test('runAtLoad launches at registration; on-demand does not', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [jobs({ runAtLoad: true }), { ...jobs({}), name: 'lazy' }] });
  t.teardown(() => kit.close());
  await kit.waitFor('jobs', 'running');
  t.equal(kit.status('jobs').launches, 1);
  t.equal(kit.status('lazy').launches, 0);
  t.equal(kit.status('lazy').state, 'idle');
});

t.test('idleExitMs stops an idle helper gracefully; a transaction holds it; the next call relaunches', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const kit = await startBroker({ root: FIXTURES, clock, services: [jobs({ idleExitMs: 30_000 })] });
  t.teardown(() => kit.close());
  const conn = kit.broker.connect('jobs');
  const { pid } = await conn.call('ping', {});
  t.equal(kit.broker.status('jobs').idleExitAt, clock.now() + 30_000);
  await clock.advance(29_999);
  t.equal(kit.status('jobs').state, 'running');
  const exit = kit.nextExit('jobs');
  await clock.advance(1);
  const info = await exit;
  t.equal(info.requested, true);
  t.equal(info.code, 0);
  t.equal(info.reason, 'idle exit');
  t.equal(kit.status('jobs').crashes, 0);

  const again = await conn.call('ping', {});
  t.not(again.pid, pid, 'relaunched on demand');
  await conn.call('hold', {}); // opens a transaction that outlives the call
  await clock.advance(120_000);
  t.equal(kit.status('jobs').state, 'running', 'an open transaction prevents idle exit');
  t.equal(kit.broker.status('jobs').idleExitAt, null);
  await conn.call('release', {});
  const second = kit.nextExit('jobs');
  await clock.advance(30_000);
  t.equal((await second).reason, 'idle exit');
});

/** Resolves once `check()` holds; it reads state the broker learns from a helper's report, which raises no event. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

t.test('idle exit counts calls on a direct helper-to-helper channel: none stops a helper mid-call, the last one restarts the count', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const kit = await startBroker({ root: FIXTURES, clock, services: [
    jobs({ idleExitMs: 30_000 }),
    { name: 'caller', entry: './caller-service.js', protocol: 'com.test.caller', connects: ['jobs'] },
  ] });
  t.teardown(() => kit.close());
  await kit.broker.connect('jobs').call('ping', {}); // the broker's own call arms the idle timer
  const caller = kit.broker.connect('caller');
  const blocked = caller.call('relay', { service: 'jobs', method: 'block' });
  await until(() => kit.broker.status('jobs').inFlight === 1, 'the helper to report the direct call in flight');
  t.equal(kit.broker.status('caller').outbound?.['jobs'], 'direct', 'the call went over a direct channel');
  await clock.advance(60_000);
  t.equal(kit.status('jobs').state, 'running', 'a helper with a direct call in flight is not idle');

  const served = kit.broker.status('jobs').callsServed;
  t.same(await caller.call('relay', { service: 'jobs', method: 'unblock' }), { ok: true, result: null });
  t.same(await blocked, { ok: true, result: { count: 1 } });
  await until(() => kit.broker.status('jobs').callsServed >= served + 2 && kit.broker.status('jobs').inFlight === 0, 'the helper to report both calls answered');
  t.equal(kit.broker.status('jobs').idleExitAt, clock.now() + 30_000, 'the last direct call restarted the count');
  await clock.advance(29_999);
  t.equal(kit.status('jobs').state, 'running');
  const exit = kit.nextExit('jobs');
  await clock.advance(1);
  t.equal((await exit).reason, 'idle exit');
});

t.test('an interval job runs once per interval with an injected clock', async (t) => {
  const start = Date.UTC(2026, 0, 1, 12);
  const clock = new ManualClock(start);
  const kit = await startBroker({ root: FIXTURES, clock, stateDir: tempDir(t, 'bulkhead-state-'), services: [jobs({ schedule: { intervalMs: 60_000, method: 'tick' } })] });
  t.teardown(() => kit.close());
  t.equal(kit.broker.status('jobs').schedule?.nextRunAt, start + 60_000);
  t.equal(kit.status('jobs').launches, 0, 'nothing runs before the first due time');
  for (let i = 1; i <= 3; i++) {
    const job = nextJob(kit);
    await clock.advance(60_000);
    const result = await job;
    t.equal(result.result, 'ok');
    t.equal(result.dueAt, start + i * 60_000);
  }
  const status = kit.broker.status('jobs').schedule!;
  t.equal(status.runs, 3);
  t.equal(status.nextRunAt, start + 4 * 60_000);
  t.equal((await kit.broker.connect('jobs').call('tick', {})).count, 4, 'the helper counted three scheduled ticks');
});

t.test('a calendar expression fires at the right instants', async (t) => {
  const clock = new ManualClock(new Date('2026-03-10T00:07:00Z'));
  const kit = await startBroker({ root: FIXTURES, clock, stateDir: tempDir(t, 'bulkhead-state-'), services: [jobs({ schedule: { calendar: '*/15 * * * *', method: 'tick' } })] });
  t.teardown(() => kit.close());
  const at = () => new Date(kit.broker.status('jobs').schedule!.nextRunAt!).toISOString();
  t.equal(at(), '2026-03-10T00:15:00.000Z');
  const job = nextJob(kit);
  await clock.advanceTo(new Date('2026-03-10T00:15:00Z'));
  t.equal(new Date((await job).dueAt).toISOString(), '2026-03-10T00:15:00.000Z');
  t.equal(at(), '2026-03-10T00:30:00.000Z');
  await clock.advanceTo(new Date('2026-03-10T00:29:59Z'));
  t.equal(kit.broker.status('jobs').schedule!.runs, 1, 'nothing fires before 00:30');
});

t.test('a run still going when the next is due is not doubled: it is skipped and recorded', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const kit = await startBroker({ root: FIXTURES, clock, stateDir: tempDir(t, 'bulkhead-state-'), services: [jobs({ schedule: { intervalMs: 1000, method: 'block' } })] });
  t.teardown(() => kit.close());
  const results: JobRunResult[] = [];
  const finished = new Promise<void>((resolve) => kit.broker.on('job', (_service, result) => {
    results.push(result);
    if (result.result !== 'skipped') resolve();
  }));
  const conn = kit.broker.connect('jobs');
  const blocked = new Promise((resolve) => conn.onEvent('noted', resolve));
  await clock.advance(1000); // run 1 starts and blocks
  await clock.advance(1000); // due while run 1 is still going
  t.same(results.map((r) => r.result), ['skipped']);
  await blocked;
  await conn.call('unblock', {});
  await finished;
  t.same(results.map((r) => r.result), ['skipped', 'ok'], 'run 1 finished after the skip');
  const s = kit.broker.status('jobs').schedule!;
  t.equal(s.runs, 1);
  t.equal(s.skipped, 1);
});

t.test('runs missed while the broker was down are reported, and made up once when persistent', async (t) => {
  const start = Date.UTC(2026, 0, 1, 6);
  const stateDir = tempDir(t, 'bulkhead-state-');
  writeFileSync(join(stateDir, 'jobs.schedule.json'), JSON.stringify({ lastDueAt: start - 3 * 60_000 - 1 }));
  writeFileSync(join(stateDir, 'lazy.schedule.json'), JSON.stringify({ lastDueAt: start - 3 * 60_000 - 1 }));
  const clock = new ManualClock(start);
  const kit = await startBroker({
    root: FIXTURES,
    clock,
    stateDir,
    services: [
      jobs({ schedule: { intervalMs: 60_000, method: 'tick', persistent: true } }),
      { ...jobs({ schedule: { intervalMs: 60_000, method: 'tick' } }), name: 'lazy' },
    ],
  });
  t.teardown(() => kit.close());
  const persistent = kit.broker.status('jobs').schedule!;
  t.equal(persistent.missedWhileDown, 3);
  t.equal(persistent.runs, 1, 'one make-up run started at once');
  const lazy = kit.broker.status('lazy').schedule!;
  t.equal(lazy.missedWhileDown, 3);
  t.equal(lazy.runs, 0, 'not persistent: reported only');
  await kit.waitFor('jobs', 'running');
  t.equal(kit.status('lazy').launches, 0);
});

t.test('a whole-helper job: launched on schedule, its exit code is the result', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const kit = await startBroker({
    root: FIXTURES,
    clock,
    stateDir: tempDir(t, 'bulkhead-state-'),
    services: [
      { name: 'nightly', entry: './job-once.js', protocol: 'com.test.jobs', launch: { throttleMs: 0, schedule: { intervalMs: 1000 } } },
      { name: 'broken', entry: './job-once.js', protocol: 'com.test.jobs', env: { JOB_EXIT_CODE: '4' }, launch: { throttleMs: 0, schedule: { intervalMs: 1000 } } },
    ],
  });
  t.teardown(() => kit.close());
  const results = new Map<string, JobRunResult>();
  const both = new Promise<void>((resolve) => kit.broker.on('job', (service, result) => {
    results.set(service, result);
    if (results.size === 2) resolve();
  }));
  await clock.advance(1000);
  await both;
  t.equal(results.get('nightly')?.result, 'ok');
  t.equal(kit.status('nightly').crashes, 0, 'a job that exits 0 did not crash');
  t.equal(results.get('broken')?.result, 'error');
  t.equal(results.get('broken')?.error?.data?.['exitCode'], 4);
});

t.test('watchPaths: a change launches the helper, or calls watchMethod', async (t) => {
  const watched = tempDir(t, 'bulkhead-watch-');
  const kit = await startBroker({
    root: FIXTURES,
    services: [
      jobs({ watchPaths: [watched] }),
      { ...jobs({ watchPaths: [watched], watchMethod: 'changed' }), name: 'notified' },
    ],
  });
  t.teardown(() => kit.close());
  t.equal(kit.status('jobs').launches, 0);
  const launched = kit.waitFor('jobs', 'running');
  const noted = new Promise<{ path: string; event: string }>((resolve) => kit.broker.connect('notified').onEvent('noted', resolve));
  writeFileSync(join(watched, 'new-file.txt'), 'hello');
  await launched;
  t.equal(kit.status('jobs').launches, 1, 'the change launched the helper');
  const note = await noted;
  t.equal(note.path, watched, 'watchMethod was called with the watched path');
  t.match(note.event, /^(rename|change)$/);
});

t.test('bad launch sections are refused with the field named', async (t) => {
  const kit = await startBroker({ root: FIXTURES });
  t.teardown(() => kit.close());
  const bad = (launch: unknown, pointer: string) => {
    const err = t.throws(() => kit.broker.register({ name: 'x', entry: './jobs-service.js', protocol: 'com.test.jobs', launch } as ServiceManifest)) as { code?: string; data?: { pointer?: string } };
    t.equal(err.code, 'ERR_INVALID_MANIFEST');
    t.equal(err.data?.pointer, pointer);
  };
  bad({ keepAlive: 'yes' }, '/launch/keepAlive');
  bad({ schedule: { intervalMs: 10, calendar: '* * * * *' } }, '/launch/schedule');
  bad({ schedule: { calendar: 'every tuesday' } }, '/launch/schedule/calendar');
  bad({ schedule: { intervalMs: 1000, method: 'nope' } }, '/launch/schedule/method');
  bad({ watchPaths: ['/nonexistent/dir'] }, '/launch/watchPaths/0');
  bad({ idleExitMs: 0 }, '/launch/idleExitMs');
});
