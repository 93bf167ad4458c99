// Issue 14, items 1–3: a hung helper is noticed (status shows how long its event
// loop has been silent; launch.watchdogMs kills and relaunches it), the bytes
// queued toward a stuck helper stay bounded whatever the deadlines do, and an
// unsandboxed helper whose event loop is blocked dies with its SIGKILLed host.
import t from 'tap';
import v8 from 'node:v8';
import { spawn } from 'node:child_process';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import { isBulkheadError } from 'bulkhead';
import { startBroker } from 'bulkhead/testing';
import { alive, dead, FIXTURES, firstStdoutLine, recordUncaught } from './helpers.js';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;
const uncaught = recordUncaught();

const spinService = (name: string, extra: Record<string, unknown> = {}) => ({
  name, entry: './supervision/spin-service.js', protocol: 'com.test.supervision', ...extra,
});

/** Resolves once `check` returns true, checked on every status poll of `ms`. */
function until(check: () => boolean, ms = 20): Promise<void> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (!check()) return;
      clearInterval(timer);
      resolve();
    }, ms);
  });
}

t.test('without watchdogMs: a spinning handler leaves the helper running, and status shows how long its loop is silent', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [spinService('spin', { launch: { throttleMs: 0, exitTimeoutMs: 200 } })] });
  t.teardown(() => kit.close());
  const conn = kit.broker.connect('spin');
  const { pid } = await conn.call('echo', { text: 'a' }) as { pid: number };
  t.equal(kit.broker.status('spin').unresponsiveMs, 0, 'a helper that answers is not unresponsive');
  const spinning = conn.call('spin', { ms: 0 });
  spinning.catch(() => undefined);
  await until(() => (kit.broker.status('spin').unresponsiveMs ?? 0) >= 500);
  const status = kit.broker.status('spin');
  t.equal(status.state, 'running', 'no watchdog: still running');
  t.equal(status.pid, pid, 'same pid');
  t.ok(status.unresponsiveMs! >= 500, `status shows the silent loop (${status.unresponsiveMs} ms)`);
  const exit = kit.nextExit('spin');
  kit.broker.kill('spin');
  await exit;
  const err = await spinning.then(() => undefined, (e: unknown) => e);
  t.ok(isBulkheadError(err) && err.code === 'ERR_INTERRUPTED', 'the spinning call is interrupted by the kill');
});

t.test('watchdogMs: a spinning helper is killed, its calls fail ERR_INTERRUPTED (reason watchdog), and it is relaunched', async (t) => {
  // Well above this shared machine's scheduling stalls (load ~17 on 2 cores): a watchdog must not kill a starved but healthy helper.
  const watchdogMs = 1000;
  const kit = await startBroker({ root: FIXTURES, services: [spinService('dog', { launch: { throttleMs: 0, watchdogMs } })] });
  t.teardown(() => kit.close());
  const conn = kit.broker.connect('dog');
  const { pid } = await conn.call('echo', { text: 'a' }) as { pid: number };
  // A handler that blocks for less than the watchdog is left alone.
  await conn.call('spin', { ms: Math.floor(watchdogMs / 4) });
  t.equal(kit.broker.status('dog').pid, pid, 'a short block does not trip the watchdog');

  const started = performance.now();
  const bystander = conn.call('slow', { ms: 60_000 });
  let seenInCatch: { pid: number | null; reason: string | undefined } | undefined;
  const spun = await conn.call('spin', { ms: 0 }).then(() => undefined, (err: unknown) => {
    const s = kit.broker.status('dog');
    seenInCatch = { pid: s.pid, reason: s.lastExit?.reason };
    return err;
  });
  const detectedMs = performance.now() - started;
  t.ok(isBulkheadError(spun) && spun.code === 'ERR_INTERRUPTED', 'the spinning call fails ERR_INTERRUPTED');
  t.equal(isBulkheadError(spun) ? spun.data['reason'] : undefined, 'watchdog', 'its error says watchdog');
  const other = await bystander.then(() => undefined, (e: unknown) => e);
  t.ok(isBulkheadError(other) && other.code === 'ERR_INTERRUPTED', 'other pending calls fail ERR_INTERRUPTED too');
  t.same(seenInCatch, { pid: null, reason: 'watchdog' }, 'status is updated before the calls reject');
  t.equal(kit.broker.status('dog').lastExit?.signal, 'SIGKILL');
  // The error's reason, the SIGKILL and the status say the watchdog killed it; a watchdog cannot fire before its
  // period (50 ms slack for the heartbeat's granularity). No upper bound: it only measured the machine's load.
  t.ok(detectedMs >= watchdogMs - 50, `killed ${Math.round(detectedMs)} ms after the loop blocked, not before watchdogMs ${watchdogMs}`);
  t.comment(`watchdog detection: ${Math.round(detectedMs)} ms with watchdogMs ${watchdogMs}`);
  const again = await conn.call('echo', { text: 'b' }) as { pid: number };
  t.not(again.pid, pid, 'relaunched under a new pid');
  t.equal(kit.broker.status('dog').crashes, 1, 'the watchdog kill counts as a crash');
});

t.test('watchdog CPU cost: an idle helper with a 1 s watchdog uses little CPU and is never taken for a hung one', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [spinService('idle', { launch: { watchdogMs: 1000 } })] });
  t.teardown(() => kit.close());
  const conn = kit.broker.connect('idle');
  await conn.call('echo', { text: 'a' });
  kit.broker.status('idle'); // first sample: CPU over its life so far
  const brokerBefore = process.cpuUsage();
  const wallBefore = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const helperCpu = kit.broker.status('idle').cpuPercent;
  const brokerCpuMs = (process.cpuUsage(brokerBefore).user + process.cpuUsage(brokerBefore).system) / 1000;
  const wall = performance.now() - wallBefore;
  t.comment(`idle helper with watchdogMs 1000 (heartbeat every 250 ms): helper ${helperCpu}% of a core, broker ${(100 * brokerCpuMs / wall).toFixed(2)}% (all work of this test process)`);
  t.ok(helperCpu !== null && helperCpu < 5, `helper CPU ${helperCpu}% < 5%`);
  t.equal(kit.broker.status('idle').crashes, 0, 'an idle helper is never taken for a hung one');
});

t.test('watchdogMs: a cold helper never called heartbeats from the broker\'s hello (its timer starts there, not in serve())', async (t) => {
  // The heartbeat's timer starts when the helper reads the broker's hello (lib/connection/helper-server.ts), which a cold
  // launch sends at spawn: a helper launched at load and never called must still beat, or its watchdog would kill it.
  const kit = await startBroker({ root: FIXTURES, services: [spinService('unused', { launch: { watchdogMs: 300, runAtLoad: true } })] });
  t.teardown(() => kit.close());
  await until(() => kit.broker.status('unused').pid !== undefined);
  const pid = kit.broker.status('unused').pid;
  // Five watchdog periods with no call: only heartbeats keep it alive (the spinning test above is the positive control).
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.equal(kit.broker.status('unused').crashes, 0, 'never taken for a hung one');
  t.equal(kit.broker.status('unused').pid, pid, 'the same helper throughout');
  t.same(await kit.broker.connect('unused').call('echo', { text: 'late' }), { text: 'late', pid }, 'and that helper answers its first call');
});

t.test('abandoned calls to a stuck helper: queued bytes stay bounded, calls past the bound fail fast with ERR_BACKPRESSURE', async (t) => {
  const maxQueuedBytes = 4 * MiB;
  const kit = await startBroker({ root: FIXTURES, maxFrameBytes: MiB, services: [spinService('stuck', { maxQueuedBytes, launch: { throttleMs: 0, exitTimeoutMs: 200 } })] });
  t.teardown(() => kit.close());
  const conn = kit.broker.connect('stuck');
  await conn.call('echo', { text: 'a' });
  conn.call('spin', { ms: 0 }).catch(() => undefined);
  gc();
  const before = process.memoryUsage();
  const data = 'x'.repeat(64 * 1024);
  const codes = new Map<string, number>();
  // 94 MiB of 64 KiB calls, each abandoned at a 20 ms deadline, in waves.
  const total = 1504;
  for (let wave = 0; wave < total / 94; wave++) {
    const calls = [];
    for (let i = 0; i < 94; i++) calls.push(conn.call('take', { data }, { timeoutMs: 20 }).then(() => 'ok', (e: unknown) => (isBulkheadError(e) ? e.code : String(e))));
    for (const code of await Promise.all(calls)) codes.set(code, (codes.get(code) ?? 0) + 1);
  }
  const queued = kit.broker.supervisorOf('stuck').process!.channel.writableLength;
  gc();
  const after = process.memoryUsage();
  const grew = (after.heapUsed + after.arrayBuffers) - (before.heapUsed + before.arrayBuffers);
  t.comment(`outcomes: ${JSON.stringify(Object.fromEntries(codes))}; bytes queued toward the helper ${queued}; broker heap+buffers after GC +${(grew / MiB).toFixed(1)} MiB`);
  t.ok((codes.get('ERR_DEADLINE') ?? 0) > 0, 'calls within the bound were sent and hit their deadline (positive control)');
  t.ok((codes.get('ERR_BACKPRESSURE') ?? 0) > 0, 'calls past the bound failed fast with ERR_BACKPRESSURE');
  t.equal((codes.get('ERR_DEADLINE') ?? 0) + (codes.get('ERR_BACKPRESSURE') ?? 0), total, 'every call settled with one of the two');
  t.ok(queued <= maxQueuedBytes + MiB + 64, `queued bytes ${queued} ≤ maxQueuedBytes + one frame`);
  t.ok(grew < maxQueuedBytes + 16 * MiB, `broker memory after GC grew by ${(grew / MiB).toFixed(1)} MiB (< bound + 16 MiB)`);
});

t.test('SIGKILL of the host: its unsandboxed helper, event loop blocked, dies too (parent-death signal)', async (t) => {
  const host = spawn(process.execPath, [join(FIXTURES, 'supervision', 'blocked-host.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    host.kill('SIGKILL');
  });
  const line = await firstStdoutLine(host);
  const { helperPid, unresponsiveMs } = JSON.parse(line) as { helperPid: number; unresponsiveMs: number };
  t.ok(alive(helperPid), 'positive control: the helper runs');
  t.ok(unresponsiveMs > 0, `its event loop is blocked (silent for ${unresponsiveMs} ms)`);
  const hostExit = new Promise((resolve) => host.once('exit', resolve));
  host.kill('SIGKILL');
  await hostExit;
  t.ok(await dead(helperPid, 30_000), 'the blocked helper died with its host');
});

t.test('no uncaught exception', async (t) => {
  t.same(uncaught, []);
});
