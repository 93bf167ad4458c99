/**
 * The CLI's building blocks, in process: the daemon's log store (rings,
 * cursors, long-poll wait), /proc parsing and the process-tree sampler,
 * the table and log formatting, and every command's --help.
 */
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import type { ServiceStatus } from '../lib/broker/service-supervisor.js';
import { descendants, parseProc, ProcessSampler, readProc } from '../lib/broker/process-stats.js';
import { describeLogEvent, LogStore } from '../lib/daemon/log-store.js';
import { formatBytes, formatDuration, formatExit, formatLogEntry, formatSandbox, formatTime, statusTable } from '../lib/cli/format.js';
import { latestEvents } from '../lib/cli/commands/ps.js';
import { createProgram } from '../lib/cli/program.js';

t.test('log store: per-service rings, cursors, missed entries', async (t) => {
  const store = new LogStore({ perService: 3 });
  store.line('a', 10, 'stdout', 'a1');
  store.event('b', 20, 'launched pid 20', { event: 'launch', service: 'b', pid: 20 });
  store.line('a', 10, 'stderr', 'a2');
  store.event(null, null, 'reload', { event: 'reload' });
  t.same(store.query().entries.map((e) => e.seq), [1, 2, 3, 4], 'one sequence across services, oldest first');
  t.same(store.query({ service: 'a' }).entries.map((e) => e.text), ['a1', 'a2']);
  t.same(store.query({ limit: 2 }).entries.map((e) => e.seq), [3, 4], 'without a cursor: the last entries');
  t.same(store.query({ events: true }).entries.map((e) => e.seq), [2, 4], 'events only');
  const page = store.query({ after: 1, limit: 2 });
  t.same(page.entries.map((e) => e.seq), [2, 3], 'with a cursor: what comes next');
  t.equal(page.cursor, 3);
  t.equal(page.missed, false);
  t.same(store.query({ service: 'b', after: 2 }), { entries: [], cursor: 4, missed: false }, 'nothing new: the cursor moves to the newest seq');
  // A chatty service overflows its own ring only.
  for (let i = 0; i < 5; i++) store.line('a', 10, 'stdout', `flood ${i}`);
  t.same(store.query({ service: 'a' }).entries.map((e) => e.text), ['flood 2', 'flood 3', 'flood 4']);
  t.same(store.query({ service: 'b' }).entries.map((e) => e.text), ['launched pid 20'], 'b keeps its lines');
  t.equal(store.query({ service: 'a', after: 3 }).missed, true, 'a reader that fell behind is told');
  t.equal(store.query({ service: 'a', after: store.query({ service: 'a' }).entries[0]!.seq - 1 }).missed, false);
  t.ok(store.knows('a'));
  t.notOk(store.knows('zzz'));
});

t.test('log store: wait resolves on news, on timeout, or on abort', async (t) => {
  const store = new LogStore();
  store.line('a', 1, 'stdout', 'old');
  // Settled before the next event-loop turn (no timer armed): an event, where a wall-clock bound swung with load.
  const first = await Promise.race([store.wait(0, 10_000).then(() => 'resolved'), new Promise((resolve) => setImmediate(() => resolve('pending')))]);
  t.equal(first, 'resolved', 'something newer already exists: no wait');
  const nothingNewer = await Promise.race([store.wait(store.lastSeq, 50).then(() => 'resolved'), new Promise((resolve) => setImmediate(() => resolve('pending')))]);
  t.equal(nothingNewer, 'pending', 'control: with nothing newer the same race sees a wait');
  const waiting = store.wait(1, 10_000, 'a');
  store.line('b', 2, 'stdout', 'other service');
  let woke = false;
  void waiting.then(() => {
    woke = true;
  });
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(woke, false, 'another service\'s line does not wake a filtered waiter');
  store.line('a', 1, 'stdout', 'news');
  await waiting;
  const controller = new AbortController();
  const aborted = store.wait(store.lastSeq, 10_000, undefined, controller.signal);
  controller.abort();
  await aborted;
  await store.wait(store.lastSeq, 1);
  const closing = store.wait(store.lastSeq, 10_000);
  store.close();
  await closing;
  t.pass('every wait ended');
});

t.test('log events read as one line each', async (t) => {
  t.equal(describeLogEvent({ event: 'launch', service: 's', pid: 7 }), 'launched pid 7');
  t.equal(describeLogEvent({ event: 'reload', added: [], removed: [], replaced: ['a', 'b'], editedProfiles: ['a'], relaunched: ['a'] }), 'reload: added [], removed [], replaced [a, b], profile edited [a], relaunched [a]');
  t.equal(describeLogEvent({ event: 'reload', added: ['x'], removed: [], replaced: [] }), 'reload: added [x], removed [], replaced []', 'an entry of an older daemon');
  t.equal(describeLogEvent({ event: 'exit', code: null, signal: 'SIGABRT', reason: 'memory limit (128 MiB)', requested: false }), 'was killed by SIGABRT (memory limit (128 MiB)), unrequested');
  t.equal(describeLogEvent({ event: 'exit', code: 0, signal: null, reason: 'stopped by broker', requested: true }), 'exited with code 0 (stopped by broker)');
  t.match(describeLogEvent({ event: 'denied', code: 'ERR_NOT_PERMITTED', client: 'guest', service: 'bulkhead.control', message: 'add it' }), 'denied guest access to bulkhead.control: ERR_NOT_PERMITTED add it');
  t.equal(describeLogEvent({ event: 'takeover', service: 's', pid: 8, replaced: 7 }), 'prewarmed spare pid 8 took over from pid 7 (its exit follows)');
  t.equal(describeLogEvent({ event: 'something-new', a: 1 }), 'something-new a=1');
});

t.test('/proc: parsing, a process tree, and the sampler', async (t) => {
  // Field 2 may hold spaces and parentheses: fields are counted from the last ")".
  const stat = '42 (we (ird) name) S 7 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 12345 1000 100 18446744073709551615';
  const snap = parseProc(42, stat, 'Name:\tx\nVmRSS:\t    2048 kB\n');
  t.same(snap, { pid: 42, ppid: 7, cpuMs: 3000, startMs: 123450, rssBytes: 2048 * 1024 });
  t.equal(parseProc(1, 'garbage', ''), undefined);

  const self = readProc(process.pid)!;
  t.equal(self.ppid, process.ppid);
  const rss = process.memoryUsage().rss;
  t.ok(self.rssBytes > rss / 2 && self.rssBytes < rss * 2, `VmRSS ${self.rssBytes} near process.memoryUsage().rss ${rss}`);
  t.equal(readProc(2 ** 30), undefined, 'no such process');

  // A fake /proc: 1 → 2 → 3, without children files (the full-scan fallback).
  const root = mkdtempSync(join(tmpdir(), 'bulkhead-proc-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const fake = (pid: number, ppid: number, ticks: number, kb: number) => {
    mkdirSync(join(root, String(pid), 'task', String(pid)), { recursive: true });
    writeFileSync(join(root, String(pid), 'stat'), `${pid} (node) S ${ppid} ${pid} ${pid} 0 -1 0 0 0 0 0 ${ticks} 0 0 0 20 0 1 0 100 0 0`);
    writeFileSync(join(root, String(pid), 'status'), `VmRSS:\t${kb} kB\n`);
  };
  fake(1, 0, 100, 1000);
  fake(2, 1, 200, 2000);
  fake(3, 2, 300, 3000);
  fake(9, 0, 1, 1);
  writeFileSync(join(root, 'uptime'), '11.00 20.00\n');
  t.same(descendants(1, root), [2, 3]);
  let now = 0;
  const sampler = new ProcessSampler(root, () => now);
  const first = sampler.sample(1)!;
  t.equal(first.rssBytes, 6000 * 1024, 'RSS of the whole tree');
  t.equal(first.processes, 3);
  t.equal(first.cpuMs, 6000);
  t.equal(first.cpuPercent, 60, 'first look: 6 s of CPU over 10 s of life');
  now = 1000;
  fake(3, 2, 350, 3000); // 0.5 s more CPU in 1 s
  t.equal(sampler.sample(1)!.cpuPercent, 50, 'then: since the previous sample');
  now = 1100;
  fake(3, 2, 400, 3000);
  t.equal(sampler.sample(1)!.cpuPercent, 50, 'a sample younger than 500 ms is reused');
  t.equal(sampler.sample(77), undefined);
});

const status = (over: Partial<ServiceStatus>): ServiceStatus => ({
  name: 'svc', protocol: 'p', state: 'idle', pid: null, launches: 0, crashes: 0, recentCrashes: 0, lastExit: null, startedAt: null,
  inFlight: 0, connections: 0, sandbox: null, failure: null, schedule: null, idleExitAt: null, rssBytes: null, cpuPercent: null, callsServed: 0,
  ...over,
}) as ServiceStatus;

t.test('formatting', async (t) => {
  t.equal(formatDuration(850), '850ms');
  t.equal(formatDuration(65_000), '1m05s');
  t.equal(formatDuration(3 * 3600_000 + 12 * 60_000), '3h12m');
  t.equal(formatDuration(50 * 3600_000), '2d02h');
  t.equal(formatBytes(64 * 2 ** 20), '64.0 MiB');
  t.equal(formatBytes(null), '-');
  const exit = { code: null, signal: 'SIGABRT' as const, reason: 'memory limit (128 MiB)', requested: false, stderrTail: [], at: 0, uptimeMs: 1 };
  t.equal(formatExit(exit), 'SIGABRT (memory limit (128 MiB))');
  t.equal(formatExit({ ...exit, signal: null, code: 3, reason: undefined }), 'exit 3');
  t.equal(formatSandbox({ profile: 'pure-compute', enforcement: 'strict', rules: [{ rule: 'a', layers: ['x'], unenforced: false }, { rule: 'b', layers: [], unenforced: true }] }), 'pure-compute 1/2');
  t.equal(formatSandbox({ profile: 'none', enforcement: 'none', rules: [] }), 'none');
  const now = 1_000_000;
  const table = statusTable([
    status({ name: 'echo', state: 'running', pid: 4242, startedAt: now - 61_000, launches: 2, crashes: 1, lastExit: exit, cpuPercent: 1.25, rssBytes: 50 * 2 ** 20, callsServed: 7, inFlight: 1 }),
    status({ name: 'nightly', schedule: { nextRunAt: now + 90_000, lastRun: null, runs: 0, skipped: 0, missedWhileDown: 0 } }),
  ], { now });
  const [header, echo, nightly] = table.split('\n');
  t.match(header, /^NAME\s+STATE\s+PID/);
  t.match(echo, /^echo\s+running\s+4242\s+1m01s\s+2\s+1\s+SIGABRT \(memory limit \(128 MiB\)\)\s+1\.3\s+50\.0 MiB\s+7\s+1\s+-\s+-$/);
  t.match(nightly, /in 1m30s/);
  t.notMatch(table, /\x1b\[/, 'no colour codes unless asked');
  t.equal(formatLogEntry({ seq: 1, time: new Date(2026, 4, 14, 10, 31, 2, 118).getTime(), service: 'echo', pid: 4242, stream: 'stdout', text: 'hi' }), '05-14 10:31:02.118 echo[4242] stdout: hi');
});

t.test('every command has --help with examples and the exit codes', async (t) => {
  const program = createProgram();
  const commands: Command[] = [];
  const walk = (command: Command) => {
    for (const sub of command.commands) {
      commands.push(sub);
      walk(sub);
    }
  };
  walk(program);
  const names = commands.map((c) => c.name());
  for (const name of ['validate', 'types', 'daemon', 'ps', 'top', 'logs', 'kickstart', 'stop', 'reload', 'identity', 'issue', 'revoke', 'sign']) t.ok(names.includes(name), `${name} is a command`);
  for (const command of [program, ...commands]) {
    let text = '';
    command.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
    command.outputHelp();
    t.match(text, /Examples:\n\s+\$ bulkhead /, `${command.name()} --help has examples`);
    t.match(text, /Exit codes/, `${command.name()} --help documents exit codes`);
  }
});

t.test('top: connection traffic does not push launches and exits out of the event lines', async (t) => {
  const entry = (event: string, i: number) => ({ time: i, data: { event } });
  const entries = [entry('launch', 0), entry('exit', 1), ...Array.from({ length: 20 }, (_, i) => entry(i % 2 === 0 ? 'connect' : 'disconnect', i + 2))];
  const shown = latestEvents(entries);
  t.same(shown.map((e) => e.data.event), ['launch', 'exit'], 'connect and disconnect are both filtered');
  t.match(formatTime(Date.UTC(2026, 11, 5, 15, 4, 5)), /^\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/, 'one 24-hour format with a date, for the header and the events');
});
