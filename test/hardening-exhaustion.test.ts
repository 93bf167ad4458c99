// Hardening (issue 7, item 4): resource exhaustion by a helper. One never answers
// (deadlines fire, nothing leaks), one blocks its event loop (deadlines fire, close()
// still ends it via SIGTERM/SIGKILL on time), one floods stderr (the captured tail
// and the broker's memory stay bounded). Under sandbox profiles with limits: a fork
// bomb stops at the process limit, a big file at the file-size limit, a memory hog at
// the memory limit, many small files at the scratch dir's size cap.
import t, { type Test } from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startBroker } from 'bulkhead/testing';
import { FIXTURES, rejection, recordUncaught } from './helpers.js';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;
const PROTOCOL = 'com.test.hardening-exhaust';
const ENTRY = './hardening/exhaust-service.js';
const PROFILES = join(FIXTURES, 'hardening', 'sandbox-profiles');

const uncaught = recordUncaught();


const manifest = (name: string, extra: Record<string, unknown> = {}) => ({ name, entry: ENTRY, protocol: PROTOCOL, launch: { throttleMs: 0, exitTimeoutMs: 300 }, ...extra });

t.test('a helper that never answers: every call hits its deadline, the helper is told, nothing leaks', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [manifest('never')] });
  t.teardown(() => kit.close());
  const conn = kit.broker.connect('never');
  const { pid } = await conn.call('ping', {});
  gc();
  const before = process.memoryUsage().heapUsed;
  const rounds = 5;
  const perRound = 200;
  for (let r = 0; r < rounds; r++) {
    const started = performance.now();
    const errors = await Promise.all(Array.from({ length: perRound }, () => rejection(conn.call('never', {}, { timeoutMs: 100 }))));
    const took = performance.now() - started;
    t.same([...new Set(errors.map((e) => e.code))], ['ERR_DEADLINE'], `round ${r + 1}: all ${perRound} calls failed with ERR_DEADLINE`);
    // Each error is the call's own 100 ms deadline (it names timeoutMs), and none fired early (a timer cannot; 5 ms slack).
    // No upper bound: the rejections are awaited events, and a wall-clock ceiling only measures the machine's load.
    t.ok(errors.every((e) => e.data['timeoutMs'] === 100), `round ${r + 1}: each is the call's own 100 ms deadline`);
    t.ok(took >= 100 - 5, `round ${r + 1}: not before it (${took.toFixed(0)} ms)`);
    t.equal(kit.broker.status('never').inFlight, 0, `round ${r + 1}: status().inFlight is back to 0`);
    t.equal(conn.inFlight, 0);
  }
  // The helper is still answering, and each handler's ctx.signal aborted with ERR_DEADLINE.
  t.same(await conn.call('aborts', {}), { ERR_DEADLINE: rounds * perRound }, 'the deadline crossed the process boundary for every call');
  t.equal((await conn.call('ping', {})).pid, pid, 'same helper: a slow service is not a dead one');
  gc();
  const growth = (process.memoryUsage().heapUsed - before) / MiB;
  t.ok(growth < 4, `broker heap after GC +${growth.toFixed(2)} MiB after ${rounds * perRound} abandoned calls (bound 4 MiB)`);
  t.same(uncaught, []);
});

t.test('a helper that blocks its event loop: deadlines fire; close() ends it with SIGTERM after exitTimeoutMs', async (t) => {
  const exitTimeoutMs = 300;
  const kit = await startBroker({ root: FIXTURES, services: [manifest('blocked', { launch: { throttleMs: 0, exitTimeoutMs } })] });
  const conn = kit.broker.connect('blocked');
  await conn.call('ping', {});
  t.equal((await rejection(conn.call('block', {}, { timeoutMs: 200 }))).code, 'ERR_DEADLINE', 'the blocking call hits its deadline');
  const later = await Promise.all(Array.from({ length: 10 }, () => rejection(conn.call('ping', {}, { timeoutMs: 200 }))));
  t.same([...new Set(later.map((e) => e.code))], ['ERR_DEADLINE'], 'so does every call after it');
  t.equal(kit.broker.status('blocked').inFlight, 0);
  const exit = kit.nextExit('blocked');
  const started = performance.now();
  await kit.close();
  const took = performance.now() - started;
  const info = await exit;
  t.equal(info.signal, 'SIGTERM', 'goodbye went unanswered; SIGTERM ended it');
  // The signal says which step ended it (SIGTERM, not the SIGKILL at 2 × exitTimeoutMs); the lower bound says the broker
  // waited exitTimeoutMs for the goodbye first. No upper bound: that only measures the machine's load.
  t.ok(took >= exitTimeoutMs - 50, `close() took ${took.toFixed(0)} ms, not less than exitTimeoutMs ${exitTimeoutMs}`);
  t.same(uncaught, []);
});

t.test('a helper that blocks its event loop and traps SIGTERM: SIGKILL after 2 × exitTimeoutMs', async (t) => {
  const exitTimeoutMs = 300;
  const kit = await startBroker({ root: FIXTURES, services: [manifest('stubborn', { launch: { throttleMs: 0, exitTimeoutMs } })] });
  const conn = kit.broker.connect('stubborn');
  await conn.call('trapTerm', {});
  t.equal((await rejection(conn.call('block', {}, { timeoutMs: 200 }))).code, 'ERR_DEADLINE');
  const exit = kit.nextExit('stubborn');
  const started = performance.now();
  await kit.close();
  const took = performance.now() - started;
  const info = await exit;
  t.equal(info.signal, 'SIGKILL', 'SIGTERM was trapped; SIGKILL ended it');
  // SIGKILL says the last step ended it; the lower bound says both steps waited. No upper bound (the machine's load).
  t.ok(took >= 2 * exitTimeoutMs - 50, `close() took ${took.toFixed(0)} ms, not less than 2 × exitTimeoutMs = ${2 * exitTimeoutMs}`);
  t.same(uncaught, []);
});

t.test('a helper flooding stderr: the captured tail and the broker memory stay bounded', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [manifest('spew')] });
  t.teardown(() => kit.close());
  const conn = kit.broker.connect('spew');
  await conn.call('ping', {});
  gc();
  const base = process.memoryUsage();
  let rssPeak = 0;
  let heapPeak = 0;
  let buffersPeak = 0;
  let lines = 0;
  let longest = 0;
  const target = 200; // MiB written by the helper before we stop it
  const sample = setInterval(() => {
    const m = process.memoryUsage();
    rssPeak = Math.max(rssPeak, m.rss - base.rss);
    heapPeak = Math.max(heapPeak, m.heapUsed - base.heapUsed);
    buffersPeak = Math.max(buffersPeak, m.arrayBuffers - base.arrayBuffers);
  }, 5);
  const started = performance.now();
  const reached = new Promise<void>((resolve) => {
    const sub = kit.broker.on('log', (line) => {
      lines++;
      longest = Math.max(longest, line.line.length);
      const m = /^spew: (\d+) MiB$/.exec(line.line);
      if (m !== null && Number(m[1]) >= target) {
        sub.dispose();
        resolve();
      }
    });
  });
  await conn.call('spew', {});
  await reached;
  const seconds = (performance.now() - started) / 1000;
  const info = await kit.crash('spew');
  clearInterval(sample);
  t.ok(info.stderrTail.length <= 20, `lastExit.stderrTail has ${info.stderrTail.length} lines (≤ 20)`);
  const widest = Math.max(...info.stderrTail.map((l) => l.length));
  t.ok(widest <= 4097, `its longest line is ${widest} characters (≤ 4096 + "…")`);
  t.same(kit.broker.status('spew').lastExit?.stderrTail, info.stderrTail, 'status().lastExit holds the same bounded tail');
  t.ok(longest <= 4097, `every 'log' line was cut to 4 KiB (longest ${longest})`);
  t.ok(rssPeak < 96 * MiB, `broker rss peak +${(rssPeak / MiB).toFixed(1)} MiB while ${target} MiB went through stderr (bound 96 MiB)`);
  t.ok(heapPeak < 64 * MiB, `broker heapUsed peak +${(heapPeak / MiB).toFixed(1)} MiB (bound 64 MiB)`);
  // Read into one shared buffer (lib/broker/helper-output.ts), not a new one per read whose memory waits for the GC
  // (a 'data' listener's chunks: +12 to +19 MiB here, freed by a background thread that load starves).
  t.ok(buffersPeak < 4 * MiB, `broker arrayBuffers peak +${(buffersPeak / MiB).toFixed(1)} MiB: no buffer per read (bound 4 MiB)`);
  t.comment(`stderr flood: ${target} MiB in ${seconds.toFixed(2)} s (${(target / seconds).toFixed(0)} MiB/s), ${lines} log lines; broker rss peak +${(rssPeak / MiB).toFixed(1)} MiB, heap peak +${(heapPeak / MiB).toFixed(1)} MiB, buffers peak +${(buffersPeak / MiB).toFixed(1)} MiB; tail ${info.stderrTail.length} lines, widest ${widest}`);
  t.same(uncaught, []);
});

t.test('stderr lines keep multi-byte characters that straddle two reads', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [manifest('utf8')] });
  t.teardown(() => kit.close());
  const conn = kit.broker.connect('utf8');
  await conn.call('ping', {});
  const expected = 'é✓😀'.repeat(20);
  const lines = 20_000; // ~2.4 MiB: about 37 reads of 64 KiB, each boundary likely inside a character
  let good = 0;
  const bad: string[] = [];
  // The reply can overtake the last stderr bytes (another pipe): wait for the lines themselves, bounded.
  const all = new Promise<void>((resolve) => {
    const sub = kit.broker.on('log', (line) => {
      if (line.line === expected) good++;
      else bad.push(line.line);
      if (good + bad.length === lines) {
        sub.dispose();
        resolve();
      }
    });
    setTimeout(() => {
      sub.dispose();
      resolve();
    }, 10_000).unref();
  });
  await conn.call('utf8', { lines });
  await all;
  t.equal(good + bad.length, lines, `all ${lines} lines arrived`);
  t.same(bad.slice(0, 3), [], `every line decoded intact (${bad.length} garbled)`);
});

// ---------------------------------------------------------------- under sandbox profiles with limits

/** Processes on this host owned by `uid` (from /proc). */
function processesOf(uid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      const line = /^Uid:\s+(\d+)/m.exec(status);
      if (line !== null && Number(line[1]) === uid) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

async function noneLeft(uid: number, withinMs: number): Promise<number[]> {
  const deadline = performance.now() + withinMs;
  let left = processesOf(uid);
  while (left.length > 0 && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    left = processesOf(uid);
  }
  return left;
}

const sandboxed = async (t: Test, name: string, profile: string) => {
  const kit = await startBroker({ root: FIXTURES, profilesDir: PROFILES, services: [manifest(name, { sandbox: profile })] });
  t.teardown(() => kit.close());
  const conn = kit.broker.connect(name);
  try {
    await conn.call('ping', {}, { timeoutMs: 20_000 });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_SANDBOX_UNENFORCEABLE') return { kit, conn, skip: `this host cannot enforce ${profile}: ${(err as Error).message}` };
    throw err;
  }
  return { kit, conn, skip: undefined };
};

t.test('a fork bomb stops at its profile\'s process limit, and nothing survives the helper', async (t) => {
  const { kit, conn, skip } = await sandboxed(t, 'forker', 'hardening-forkbomb');
  if (skip !== undefined) return t.plan(0, skip);
  const rule = kit.broker.status('forker').sandbox?.rules.find((r) => r.rule === 'limits.processes');
  t.equal(rule?.unenforced, false, 'limits.processes is enforced on this host');
  const r = await conn.call('forkBomb', { max: 10_000 }, { timeoutMs: 30_000 }) as { spawned: number; error: string | null };
  t.equal(r.error, 'EAGAIN', `spawn failed with EAGAIN after ${r.spawned} children`);
  t.ok(r.spawned > 0 && r.spawned < 48, `${r.spawned} children (< the 48 the limit allows including node's own threads)`);
  t.ok(processesOf(64123).length > r.spawned, 'the children run as the profile\'s uid 64123');
  await kit.crash('forker');
  t.same(await noneLeft(64123, 30_000), [], 'once the helper is killed, none of its children survive (pid namespace)');
  t.same(uncaught, []);
});

t.test('one big file stops at the profile\'s file-size limit', async (t) => {
  const { kit, conn, skip } = await sandboxed(t, 'filler', 'hardening-disk');
  if (skip !== undefined) return t.plan(0, skip);
  const r = await conn.call('fill', { files: 1, fileMiB: 16 }, { timeoutMs: 30_000 }) as { written: number; error: string | null };
  t.same(r, { written: 2 * MiB, error: 'EFBIG' }, 'the write past 2 MiB fails with EFBIG (node ignores SIGXFSZ)');
  t.equal(kit.status('filler').launches, 1, 'and the helper lives on');
});

t.test('many small files cannot fill the disk: limits.scratchMiB caps the scratch dir', async (t) => {
  const { kit, conn, skip } = await sandboxed(t, 'filler2', 'hardening-disk');
  if (skip !== undefined) return t.plan(0, skip);
  const rule = kit.broker.status('filler2').sandbox?.rules.find((r) => r.rule === 'limits.scratchMiB');
  if (rule?.unenforced === true) return t.plan(0, `this host cannot cap a tmpfs: ${rule.missing}`);
  t.same(rule?.layers, ['bubblewrap:tmpfs-size'], 'status says which layer caps it');
  // 32 files of 1 MiB: each under the 2 MiB file-size limit, 32 MiB in all against a 16 MiB scratch.
  const r = await conn.call('fill', { files: 32, fileMiB: 1 }, { timeoutMs: 30_000 }) as { written: number; error: string | null };
  t.equal(r.error, 'ENOSPC', 'the write past 16 MiB fails with ENOSPC');
  t.ok(r.written <= 16 * MiB && r.written >= 15 * MiB, `wrote ${(r.written / MiB).toFixed(2)} MiB before the cap`);
  await conn.call('ping', {});
  t.equal(kit.status('filler2').launches, 1, 'the helper lives on: it answers, still on its first launch');
});

t.test('a memory hog dies at its profile\'s memory limit; the broker says why', async (t) => {
  const { kit, conn, skip } = await sandboxed(t, 'hog', 'hardening-memory');
  if (skip !== undefined) return t.plan(0, skip);
  const err = await rejection(conn.call('hog', {}, { timeoutMs: 30_000 }));
  t.equal(err.code, 'ERR_INTERRUPTED');
  t.equal(err.data['reason'], 'memory limit (256 MiB)');
  t.equal(kit.status('hog').lastExit?.reason, 'memory limit (256 MiB)');
  t.same(uncaught, []);
});
