// Hardening (issue 7, item 2): floods and overload. A helper broadcasting events as
// fast as it can must not grow the broker's memory without bound and must lose
// nothing; calls beyond maxInFlight + maxQueued fail with ERR_BACKPRESSURE, exactly
// the overflow and nothing else. A daemon client that stops reading is cut off with
// ERR_BACKPRESSURE once its backlog passes a bound.
import t, { type Test } from 'tap';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isBulkheadError, type BulkheadError } from 'bulkhead';
import { startBroker } from 'bulkhead/testing';
import { FIXTURES, recordUncaught } from './helpers.js';
import { seedStateDir, sharedIdentity } from './shared-ca.js';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../lib/daemon/daemon.js';
import { RemoteBroker } from '../lib/daemon/remote-broker.js';
import { untrustedPeerBacklog } from '../lib/wire/framed-channel.js';
import { CLIENT_STALL_MS } from '../lib/wire/backlog-watch.js';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;

const uncaught = recordUncaught();

const FLOOD = 200_000;
const MAX_IN_FLIGHT = 4;
const MAX_QUEUED = 16;

const kit = await startBroker({
  root: FIXTURES,
  services: [{ name: 'flood', entry: './hardening/flood-service.js', protocol: 'com.test.hardening-flood', maxInFlight: MAX_IN_FLIGHT, maxQueued: MAX_QUEUED, launch: { throttleMs: 0, exitTimeoutMs: 500 } }],
});
t.teardown(() => kit.close());

/** Samples memory every 5 ms while `work` runs; returns the peaks above a post-GC baseline. */
async function measured<T>(work: () => Promise<T>): Promise<{ value: T; heapPeak: number; rssPeak: number; baseline: { heapUsed: number; rss: number } }> {
  gc();
  const baseline = process.memoryUsage();
  let heapPeak = 0;
  let rssPeak = 0;
  const sample = () => {
    const m = process.memoryUsage();
    heapPeak = Math.max(heapPeak, m.heapUsed - baseline.heapUsed);
    rssPeak = Math.max(rssPeak, m.rss - baseline.rss);
  };
  const timer = setInterval(sample, 5);
  try {
    const value = await work();
    sample();
    return { value, heapPeak, rssPeak, baseline: { heapUsed: baseline.heapUsed, rss: baseline.rss } };
  } finally {
    clearInterval(timer);
  }
}

/** Counts ticks on a connection and checks they arrive in order, none missing, none doubled. */
function tickCounter(conn: ReturnType<typeof kit.broker.connect>) {
  const state = { count: 0, outOfOrder: 0, firstBad: -1 };
  conn.on('event', (name, payload) => {
    if (name !== 'tick') return;
    const { i } = payload as { i: number };
    if (i !== state.count && state.firstBad < 0) {
      state.outOfOrder++;
      state.firstBad = i;
    }
    state.count++;
  });
  return state;
}

t.test(`a helper broadcasting ${FLOOD} events: all arrive, in order, on every connection; broker memory bounded`, async (t) => {
  const a = kit.broker.connect('flood');
  const b = kit.broker.connect('flood');
  await a.call('hold', { token: 'warm', ms: 0 });
  const ta = tickCounter(a);
  const tb = tickCounter(b);
  const errors: BulkheadError[] = [];
  a.on('error', (e) => errors.push(e));
  const started = performance.now();
  const { value, heapPeak, rssPeak } = await measured(() => a.call('flood', { n: FLOOD }, { timeoutMs: 60_000 }));
  const seconds = (performance.now() - started) / 1000;
  t.equal(value.sent, FLOOD);
  t.same({ count: ta.count, outOfOrder: ta.outOfOrder }, { count: FLOOD, outOfOrder: 0 }, `connection A received all ${FLOOD} ticks in order`);
  t.same({ count: tb.count, outOfOrder: tb.outOfOrder }, { count: FLOOD, outOfOrder: 0 }, 'connection B too: broadcasts fan out, nothing dropped');
  t.same(errors, [], 'no event failed validation');
  t.ok(heapPeak < 64 * MiB, `broker heapUsed peak +${(heapPeak / MiB).toFixed(1)} MiB above its baseline during the flood (bound 64 MiB)`);
  t.ok(rssPeak < 128 * MiB, `broker rss peak +${(rssPeak / MiB).toFixed(1)} MiB (bound 128 MiB)`);
  t.comment(`flood: ${FLOOD} events × 2 connections in ${seconds.toFixed(2)} s (${Math.round(FLOOD / seconds)} events/s); broker heap peak +${(heapPeak / MiB).toFixed(1)} MiB, rss peak +${(rssPeak / MiB).toFixed(1)} MiB; helper heap +${(value.heapGrowth / MiB).toFixed(1)} MiB, buffers +${(value.bufferGrowth / MiB).toFixed(1)} MiB, rss +${(value.rssGrowth / MiB).toFixed(1)} MiB`);
});

t.test('a broker that stops reading for 1 s (a slow listener): nothing is lost, broker memory bounded', async (t) => {
  const conn = kit.broker.connect('flood');
  const ticks = tickCounter(conn);
  let blocked = false;
  const sub = conn.on('event', () => {
    if (blocked) return;
    blocked = true;
    // A synchronous listener that hogs the broker's thread: the broker reads nothing meanwhile.
    const until = performance.now() + 1000;
    while (performance.now() < until) { /* busy */ }
  });
  const { value, heapPeak, rssPeak } = await measured(() => conn.call('flood', { n: FLOOD }, { timeoutMs: 60_000 }));
  sub.dispose();
  t.same({ count: ticks.count, outOfOrder: ticks.outOfOrder }, { count: FLOOD, outOfOrder: 0 }, `all ${FLOOD} ticks arrived in order after the stall`);
  t.ok(heapPeak < 64 * MiB, `broker heapUsed peak +${(heapPeak / MiB).toFixed(1)} MiB (bound 64 MiB)`);
  t.ok(rssPeak < 128 * MiB, `broker rss peak +${(rssPeak / MiB).toFixed(1)} MiB (bound 128 MiB)`);
  // The helper is never told to slow down: ServiceHandle.emit returns nothing, so what the
  // broker does not read piles up in the helper's write queue. Reported, not asserted here.
  t.comment(`slow broker: broker heap peak +${(heapPeak / MiB).toFixed(1)} MiB, rss peak +${(rssPeak / MiB).toFixed(1)} MiB; helper heap +${(value.heapGrowth / MiB).toFixed(1)} MiB, buffers +${(value.bufferGrowth / MiB).toFixed(1)} MiB, rss +${(value.rssGrowth / MiB).toFixed(1)} MiB while the broker did not read (emit has no backpressure signal)`);
});

async function settle(promise: Promise<unknown>): Promise<string> {
  try {
    const r = (await promise) as { token: string };
    return `ok:${r.token}`;
  } catch (err) {
    if (isBulkheadError(err)) return err.code;
    throw err;
  }
}

t.test(`calls beyond maxInFlight (${MAX_IN_FLIGHT}) + maxQueued (${MAX_QUEUED}): exactly the overflow gets ERR_BACKPRESSURE`, async (t) => {
  const conn = kit.broker.connect('flood');
  await conn.call('hold', { token: 'warm', ms: 0 }); // running: calls go straight to the RpcClient
  const total = 100;
  const calls = Array.from({ length: total }, (_, i) => conn.call('hold', { token: `t${i}`, ms: 30 }, { timeoutMs: 30_000 }));
  t.equal(kit.broker.status('flood').inFlight, MAX_IN_FLIGHT + MAX_QUEUED, 'the helper holds maxInFlight, the queue maxQueued');
  const outcomes = await Promise.all(calls.map(settle));
  const accepted = MAX_IN_FLIGHT + MAX_QUEUED;
  t.same(outcomes.slice(0, accepted), Array.from({ length: accepted }, (_, i) => `ok:t${i}`), `the first ${accepted} calls completed, each with its own token`);
  t.same(outcomes.slice(accepted), Array.from({ length: total - accepted }, () => 'ERR_BACKPRESSURE'), `the other ${total - accepted} failed with ERR_BACKPRESSURE`);
  t.equal(kit.broker.status('flood').inFlight, 0, 'nothing left in flight');
  t.equal(conn.inFlight, 0);

  // Slots free up: the next burst gets the same treatment, not a worse one.
  const again = await Promise.all(Array.from({ length: accepted + 1 }, (_, i) => settle(conn.call('hold', { token: `u${i}`, ms: 1 }))));
  t.same(again, [...Array.from({ length: accepted }, (_, i) => `ok:u${i}`), 'ERR_BACKPRESSURE']);
  t.equal(kit.status('flood').launches, 1, 'overload never cost the helper');
});

t.test('the in-flight limits are per helper: every connection shares them', async (t) => {
  const a = kit.broker.connect('flood');
  const b = kit.broker.connect('flood');
  const accepted = MAX_IN_FLIGHT + MAX_QUEUED;
  const fromA = Array.from({ length: accepted }, (_, i) => settle(a.call('hold', { token: `a${i}`, ms: 30 })));
  const fromB = await settle(b.call('hold', { token: 'b0', ms: 0 }));
  t.equal(fromB, 'ERR_BACKPRESSURE', 'a second connection finds the shared queue full');
  t.same(await Promise.all(fromA), Array.from({ length: accepted }, (_, i) => `ok:a${i}`));
});

/** A daemon connection's two paths: handed off to the helper (the default), or routed through the daemon. */
type ClientPath = 'direct' | 'routed';
const PATHS: ClientPath[] = ['direct', 'routed'];

/**
 * One CA for the run (test/shared-ca.ts): each daemon below starts from a copy of it (and of the admin identity a
 * daemon issues itself on first start) in its own state dir, instead of generating 2048-bit RSA keys at every start
 * (0.2-0.9 s a key on Node 20); the client identities are issued from it once per run. Every daemon still has its
 * own state dir, socket and helper.
 */
const identities = { stalled: await sharedIdentity('stalled'), other: await sharedIdentity('other') };

/**
 * A daemon serving the flood service with a 64 KiB frame limit; `disconnects` collects its disconnect log entries.
 * Its clients take `path`: on a direct channel the helper paces them, on a routed one the daemon does.
 */
async function floodDaemon(t: Test, path: ClientPath) {
  const work = mkdtempSync(join(tmpdir(), 'bulkhead-stall-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const maxFrameBytes = 64 * 1024;
  const config = join(work, 'bulkhead.json');
  writeFileSync(config, JSON.stringify({ root: FIXTURES, maxFrameBytes, services: [{ name: 'flood', entry: './hardening/flood-service.js', protocol: 'com.test.hardening-flood', clients: ['*'], launch: { throttleMs: 0 } }] }));
  await seedStateDir(join(work, 'state'));
  const disconnects: Record<string, unknown>[] = [];
  let cutOff!: (entry: Record<string, unknown>) => void;
  const firstDisconnect = new Promise<Record<string, unknown>>((resolve) => (cutOff = resolve));
  const daemon = await Daemon.start({
    config,
    settings: { socketPath: join(work, 'd.sock'), stateDir: join(work, 'state') },
    log: (e) => {
      if (e['event'] !== 'disconnect') return;
      disconnects.push(e);
      cutOff(e);
    },
  });
  t.teardown(() => daemon.close());
  const identityFile = join(work, 'client.json');
  writeFileSync(identityFile, JSON.stringify(identities.stalled));
  /** Runs the stalled client fixture; with `stallMs` it reads on after that long (`mode`: see the fixture). */
  const client = (stallMs?: number, mode?: 'paced' | 'trickle') => {
    const child = spawn(process.execPath, [join(FIXTURES, 'hardening', 'stalled-daemon-client.js'), daemon.socketPath, identityFile, join(FIXTURES, 'protocols'), path, String(FLOOD), ...(stallMs === undefined ? [] : [String(stallMs)]), ...(mode === undefined ? [] : [mode])], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => child.kill('SIGKILL'));
    let out = '';
    let flooding!: () => void;
    /** The flood call was sent: the client's connection is up. */
    const stalling = new Promise<void>((resolve) => (flooding = resolve));
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('stalling\n')) flooding();
    });
    const exited = new Promise<string>((resolve) => child.once('close', () => resolve(out)));
    return { child, exited, stalling };
  };
  /** The path of the stalled client's connection, as the daemon's status reports it. */
  const pathOf = () => daemon.connectionStatus().clients.filter((c) => c.name === 'stalled').map((c) => c.path);
  return { daemon, disconnects, firstDisconnect, client, pathOf, limit: untrustedPeerBacklog(maxFrameBytes) };
}

for (const path of PATHS) {
t.test(`daemon, ${path}: a client that stops reading is cut off with ERR_BACKPRESSURE; the daemon stays bounded and serves others`, async (t) => {
  const { daemon, firstDisconnect, client, pathOf, limit } = await floodDaemon(t, path);
  let seenPath: ClientPath[] = [];
  const { value: entry, heapPeak, baseline: { heapUsed: baselineHeap } } = await measured(async () => {
    const { stalling } = client();
    await stalling;
    seenPath = pathOf();
    return firstDisconnect;
  });
  t.same(seenPath, [path], `the client's connection is ${path}`);
  t.equal(entry['code'], 'ERR_BACKPRESSURE', `cut off: ${String(entry['message'])}`);
  t.match(String(entry['message']), `for ${CLIENT_STALL_MS} ms`, 'after it held its helper back for the stall time');
  t.equal(entry['client'], 'stalled');
  // The peak includes garbage not yet collected (and the helper's launch), so its bound is loose;
  // what stays after GC is the bound that matters.
  t.ok(heapPeak < 64 * MiB, `daemon heap peak +${(heapPeak / MiB).toFixed(1)} MiB while the client stalled (backlog limit ${(limit / MiB).toFixed(2)} MiB)`);
  gc();
  const retained = process.memoryUsage().heapUsed - baselineHeap;
  t.ok(retained < 4 * MiB, `daemon heap after GC +${(retained / MiB).toFixed(2)} MiB once the client was cut off`);
  const other = new RemoteBroker(daemon.socketPath, identities.other, { protocolsDir: join(FIXTURES, 'protocols') });
  t.teardown(() => other.close());
  t.same(await other.connect('flood', { protocol: 'com.test.hardening-flood' }).call('hold', { token: 'still here', ms: 0 }), { token: 'still here' }, 'another client is served');
});

t.test(`daemon, ${path}: a client that reads more slowly than its helper writes is not cut off; the helper waits for it`, async (t) => {
  const { disconnects, client, pathOf, limit } = await floodDaemon(t, path);
  // Blocks for half the stall time while the flood runs: far more than the backlog bound is
  // emitted meanwhile (that alone cut such a client off before the helper was held back).
  const { stalling, exited } = client(CLIENT_STALL_MS / 2);
  await stalling;
  t.same(pathOf(), [path], `the client's connection is ${path}`);
  const out = await exited;
  const report = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { count: number; outOfOrder: number; result?: { sent: number; bufferGrowth: number }; error?: string };
  t.equal(report.error, undefined, 'the flood call succeeded');
  t.same({ count: report.count, outOfOrder: report.outOfOrder }, { count: FLOOD, outOfOrder: 0 }, `the client received all ${FLOOD} ticks in order`);
  t.equal(report.result?.sent, FLOOD);
  t.ok((report.result?.bufferGrowth ?? 0) > limit, `the helper held the backlog meanwhile: its buffers grew +${((report.result?.bufferGrowth ?? 0) / MiB).toFixed(2)} MiB, more than the ${(limit / MiB).toFixed(2)} MiB bound that cut such a client off at once`);
  t.same(disconnects.filter((e) => e['code'] !== null), [], 'no connection was cut off');
});

t.test(`daemon, ${path}: a client that reads slowly but steadily for longer than the stall time is not cut off`, async (t) => {
  const { disconnects, client } = await floodDaemon(t, path);
  // Blocked for half the stall time, then 25 ms of work per 2000 events: ~2.5 s of slow reading
  // through a backlog that stays above the mark for longer than CLIENT_STALL_MS.
  const started = performance.now();
  const out = await client(CLIENT_STALL_MS / 2, 'trickle').exited;
  const ms = performance.now() - started;
  const report = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { count: number; outOfOrder: number; error?: string };
  t.equal(report.error, undefined, 'the flood call succeeded');
  t.same({ count: report.count, outOfOrder: report.outOfOrder }, { count: FLOOD, outOfOrder: 0 }, `the client received all ${FLOOD} ticks in order, in ${ms.toFixed(0)} ms`);
  t.ok(ms > CLIENT_STALL_MS, 'it read for longer than the stall time');
  t.same(disconnects.filter((e) => e['code'] !== null), [], 'no connection was cut off');
});

t.test(`daemon, ${path}: a helper that awaits emit() waits while its client is blocked, then goes on`, async (t) => {
  const { disconnects, client } = await floodDaemon(t, path);
  const blockMs = CLIENT_STALL_MS / 2;
  const out = await client(blockMs, 'paced').exited;
  const report = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { count: number; outOfOrder: number; result?: { sent: number; longestWaitMs: number }; error?: string };
  t.equal(report.error, undefined, 'the flood call succeeded');
  t.same({ count: report.count, outOfOrder: report.outOfOrder }, { count: FLOOD, outOfOrder: 0 }, `the client received all ${FLOOD} ticks in order`);
  // Without backpressure every emit() resolves within a tick; here one waited for the blocked client.
  const waited = report.result?.longestWaitMs ?? 0;
  t.ok(waited > blockMs / 4, `the helper's emit() waited ${waited.toFixed(0)} ms at once while its client was blocked for ${blockMs} ms`);
  t.same(disconnects.filter((e) => e['code'] !== null), [], 'no connection was cut off');
});
}

t.test('no uncaught exception', async (t) => {
  t.same(uncaught, []);
});
