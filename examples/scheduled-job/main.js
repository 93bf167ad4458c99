// A scheduled job: the broker calls cleanup.sweep() every INTERVAL_MS (launchd's
// StartInterval; a real app would use a calendar, see README.md), launching the
// helper on demand. With persistent: true, runs that fell due while the app was
// down are made up once at the next start (systemd's Persistent=true).
//
// It uses the real clock with a short interval (400 ms), so it finishes in about
// two seconds: one broker runs the job once, closes, stays down for 0.9 s, then
// a second broker with the same state directory makes up the missed runs.
//
//   node examples/scheduled-job/main.js
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Broker, isBulkheadError } from 'bulkhead';

const INTERVAL_MS = 400;
const DOWN_MS = 900;
const HOUR = 3600_000;

const here = fileURLToPath(new URL('.', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'bulkhead-scheduled-job-'));
const inbox = join(work, 'inbox');
const stateDir = join(work, 'state'); // where the broker remembers the last due time
mkdirSync(inbox);

const manifest = {
  name: 'cleanup',
  entry: './cleanup-service.js',
  protocol: 'com.example.cleanup',
  launch: {
    schedule: {
      intervalMs: INTERVAL_MS, // production: "calendar": "30 3 * * *", "timezone": "Europe/Berlin"
      method: 'sweep',
      params: { dir: inbox, maxAgeMs: 1 * HOUR },
      timeoutMs: 10_000,
      persistent: true,
    },
  },
};

/** Writes a file whose last change was ageMs ago. */
function put(name, ageMs) {
  const file = join(inbox, name);
  writeFileSync(file, `${name}\n`);
  const at = new Date(Date.now() - ageMs);
  utimesSync(file, at, at);
}

const clockTime = (ms) => new Date(ms).toISOString().slice(11, 23);

/**
 * Waits for a promise, at most ms. The broker's schedule timers are unref'd (a
 * schedule alone does not keep a process alive), so an app that only waits for
 * scheduled runs needs something that does: here, this deadline timer.
 */
function within(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Starts a broker, waits for one finished run (its 'job' result and its 'swept' event), closes the broker. */
async function session(label, waitForTrigger) {
  const broker = new Broker({ root: here, stateDir });
  const run = new Promise((resolve) => {
    const sub = broker.on('job', (service, result) => {
      if (service === 'cleanup' && result.trigger === waitForTrigger && result.result !== 'skipped') {
        sub.dispose();
        resolve(result);
      }
    });
  });
  try {
    broker.register(manifest); // a persistent schedule with missed runs starts its make-up run here
    const started = Date.now();
    const cleanup = broker.connect('cleanup');
    const swept = new Promise((resolve) => cleanup.onEvent('swept', resolve));
    const before = broker.status('cleanup');
    console.log(`${label}: cleanup registered at ${clockTime(started)}; it is ${before.state}, ${before.launches} launches so far`);
    console.log(`  next run at ${clockTime(before.schedule.nextRunAt)} (in ${before.schedule.nextRunAt - started} ms); runs missed while down: ${before.schedule.missedWhileDown}; runs started: ${before.schedule.runs}`);
    const result = await within(run, 10_000, 'run');
    const summary = await within(swept, 10_000, "'swept' event");
    const after = broker.status('cleanup');
    console.log(`  run due ${clockTime(result.dueAt)} (trigger ${result.trigger}): ${result.result} in ${result.durationMs} ms, helper pid ${summary.pid}`);
    console.log(`    removed ${summary.removed.join(', ') || 'nothing'}; kept ${summary.kept}`);
    const skipped = after.schedule.skipped === 0 ? '' : ` (due while the run, helper launch included, was still going: skipped, never doubled)`;
    console.log(`  next run at ${clockTime(after.schedule.nextRunAt)}; lastRun.result ${after.schedule.lastRun?.result}; runs ${after.schedule.runs}, skipped ${after.schedule.skipped}${skipped}`);
    return {
      missedWhileDown: before.schedule.missedWhileDown,
      launchesAtStart: before.launches,
      firstNextRunInMs: before.schedule.nextRunAt - started,
      run: { trigger: result.trigger, result: result.result, durationMs: result.durationMs },
      swept: summary,
      nextRunAt: after.schedule.nextRunAt,
      lastRun: after.schedule.lastRun?.result ?? null,
    };
  } finally {
    await broker.close();
  }
}

const result = { ok: false, intervalMs: INTERVAL_MS, downMs: DOWN_MS, workDir: work };
const t0 = Date.now();
try {
  put('2024-01-01.log', 3 * HOUR);
  put('2024-01-02.log', 2 * HOUR);
  put('today.log', 60_000);
  console.log(`inbox ${inbox}: ${readdirSync(inbox).join(', ')} (the .log files from 2024 are hours old)`);

  result.first = await session('1. first start', 'schedule');

  put('2024-01-03.log', 5 * HOUR);
  console.log(`2. the app is down for ${DOWN_MS} ms (${Math.floor(DOWN_MS / INTERVAL_MS)} runs fall due meanwhile); an old file arrives: 2024-01-03.log`);
  await sleep(DOWN_MS);

  result.second = await session('3. restart with the same state directory', 'missed');
  result.left = readdirSync(inbox);
  result.ok = result.first.launchesAtStart === 0 && result.first.run.result === 'ok'
    && result.first.swept.removed.join() === '2024-01-01.log,2024-01-02.log'
    && result.second.missedWhileDown >= 1 && result.second.run.trigger === 'missed'
    && result.second.swept.removed.join() === '2024-01-03.log' && result.left.join() === 'today.log';
} catch (err) {
  result.error = isBulkheadError(err) ? { code: err.code, message: err.message } : { message: String(err) };
} finally {
  rmSync(work, { recursive: true, force: true });
}
result.elapsedMs = Date.now() - t0;
console.log(`${result.ok ? 'done' : 'FAILED'} in ${result.elapsedMs} ms; left in the inbox: ${result.left?.join(', ')}`);
console.log(`EXAMPLE-RESULT ${JSON.stringify(result)}`);
if (!result.ok) process.exitCode = 1;
