// Hardening (issue 7, item 1): seeded hostile frames against the broker.
//
// Part 1 feeds FUZZ_CASES generated cases (test/fixtures/hardening/fuzz-gen.js: random,
// valid-but-hostile, mutated, adversarial and multi-frame streams) through a real
// FramedChannel over a Unix socket and checks, per case, exactly what the channel
// delivered and why it closed. Part 2 has a real helper write hostile bytes straight
// to its fd 3 and checks the broker cuts it off with the predicted code while another
// service keeps serving and memory stays flat. Part 3 forges answers to the helper's
// own calls. The last two tests measure what one-byte objects (empty maps, empty byte
// strings) cost the broker's heap, refused past the object limit of docs/wire.md section 3
// and retained at it. `node fuzz/run.js --cases 1000000` runs part 1 for long.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { BulkheadError } from 'bulkhead';
import { startBroker } from 'bulkhead/testing';
import { FIXTURES, rejection } from './helpers.js';
import { gen, polluted, streamOracle, type FuzzCase, type Verdict } from './fuzz-oracle.js';
import { FramedChannel } from '../lib/wire/framed-channel.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../lib/wire/frame-decoder.js';

// ------------------------------------------------------------------ set-up

const uncaught: unknown[] = [];
const onUncaught = (err: unknown) => uncaught.push(err);
process.on('uncaughtException', onUncaught);
process.on('unhandledRejection', onUncaught);

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;
function heap(): { heapUsed: number; rss: number } {
  gc();
  gc();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, rss: m.rss };
}

const SEED = Number(process.env['BULKHEAD_FUZZ_SEED'] ?? 20240607);
const FUZZ_CASES = Number(process.env['BULKHEAD_FUZZ_CASES'] ?? 50_000);
/** Small bulk cases keep part 1 fast; fuzz/run.js uses the generator's defaults. */
const GEN_OPTIONS = { maxBulkBytes: 16 * 1024 };
const ID_BASE = gen.DEFAULT_OPTIONS.idBase;
const CONCURRENCY = Number(process.env['BULKHEAD_FUZZ_CONCURRENCY'] ?? 32);


// ------------------------------------------------------------------ part 1: FramedChannel over a Unix socket

interface ChannelOutcome extends Verdict {
  /** How many reads the bytes arrived in. */
  reads: number;
  closes: number;
  foreign: string | undefined;
}

/**
 * A server that, for each connection, reads one "<case id>\n" line and then
 * writes that case's bytes (in 1–3 writes) and ends. The client side of each
 * connection is the FramedChannel under test, attached before any byte arrives.
 */
async function channelRig(maxFrameBytes: number) {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-fuzz-'));
  const path = join(dir, 's');
  const cases = new Map<number, Buffer>();
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    let head = '';
    const onId = (data: Buffer) => {
      head += data.toString('latin1');
      const nl = head.indexOf('\n');
      if (nl < 0) return;
      socket.off('data', onId);
      socket.resume(); // drain the channel's error frame
      const id = Number(head.slice(0, nl));
      const bytes = cases.get(id)!;
      const r = gen.rng(id ^ 0x5bd1e995);
      const cuts = [0, ...Array.from({ length: r.int(3) }, () => r.int(bytes.length + 1)).sort((a, b) => a - b), bytes.length];
      for (let i = 1; i < cuts.length; i++) if (cuts[i]! > cuts[i - 1]!) socket.write(bytes.subarray(cuts[i - 1], cuts[i]));
      socket.end();
    };
    socket.on('data', onId);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));

  function run(id: number, bytes: Buffer): Promise<ChannelOutcome> {
    cases.set(id, bytes);
    return new Promise((resolve) => {
      const socket = net.connect(path);
      let reads = 0;
      socket.on('data', () => reads++);
      const channel = new FramedChannel(socket, { maxFrameBytes });
      const kinds: string[] = [];
      let bad: string | undefined;
      let closes = 0;
      channel.attach({
        envelope: (e) => {
          kinds.push(e.kind);
          bad ??= gen.foreign(e);
        },
        closed: (error) => {
          closes++;
          if (closes > 1) return;
          // A second close report would land here within the same turn; give it one.
          setImmediate(() => {
            cases.delete(id);
            resolve({ kinds, code: error?.code, reads, closes, foreign: bad });
          });
        },
      });
      socket.write(`${id}\n`);
    });
  }

  return {
    run,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

t.test(`part 1: ${FUZZ_CASES} seeded cases through FramedChannel over a Unix socket`, async (t) => {
  const rig = await channelRig(DEFAULT_MAX_FRAME_BYTES);
  t.teardown(() => rig.close());
  const names = gen.ADVERSARIAL_NAMES;
  // Every named attack first (deterministically), then the seeded mix.
  const caseAt = (i: number): FuzzCase => (i < names.length
    ? gen.generateCase(SEED, i, { ...GEN_OPTIONS, family: 'adversarial', name: names[i] })
    : gen.generateCase(SEED, i, GEN_OPTIONS));
  const before = heap();
  const started = performance.now();
  const tally = new Map<string, number>();
  const count = (key: string) => tally.set(key, (tally.get(key) ?? 0) + 1);
  const failures: string[] = [];
  let split = 0;
  let next = 0;
  let peakHeap = 0;
  const worker = async () => {
    while (next < FUZZ_CASES && failures.length < 20) {
      const i = next++;
      const c = caseAt(i);
      const out = await rig.run(i, c.bytes);
      const stream = streamOracle(c.bytes);
      const label = `case ${i} (${c.family}: ${c.name})`;
      if (out.closes !== 1) failures.push(`${label}: closed ${out.closes} times`);
      if (out.foreign !== undefined) failures.push(`${label}: delivered ${out.foreign}`);
      // Read in stream order, the verdict must be the same: what a peer's bytes cause never
      // depends on how reads split them (frames before an oversize header are delivered).
      if (out.code !== stream.code || out.kinds.join() !== stream.kinds.join()) {
        failures.push(`${label}: channel gave ${out.code ?? 'clean end'} after [${out.kinds.join()}], stream order gives ${stream.code ?? 'clean end'} after [${stream.kinds.join()}]`);
      }
      if (out.reads > 1) split++;
      count(`${c.family} → ${out.code ?? 'accepted'}`);
      if (i % 5000 === 0) peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const after = heap();
  const seconds = (performance.now() - started) / 1000;
  t.same(failures, [], 'every case: the exact delivery and close its bytes call for');
  t.equal(next >= FUZZ_CASES, true, `all ${FUZZ_CASES} cases ran`);
  t.equal(polluted(), false, 'Object.prototype untouched');
  t.same(uncaught, [], 'no uncaught exception or unhandled rejection');
  const growth = (after.heapUsed - before.heapUsed) / MiB;
  t.ok(growth < 16, `heap after GC grew ${growth.toFixed(1)} MiB over ${FUZZ_CASES} cases (bound 16 MiB)`);
  t.comment(`part 1: ${FUZZ_CASES} cases in ${seconds.toFixed(1)} s; outcomes: ${JSON.stringify(Object.fromEntries([...tally].sort()))}`);
  t.comment(`part 1: ${split} cases arrived in more than one read`);
  t.comment(`part 1: heapUsed ${(before.heapUsed / MiB).toFixed(1)} → ${(after.heapUsed / MiB).toFixed(1)} MiB after GC (peak sampled ${(peakHeap / MiB).toFixed(1)} MiB); rss ${(before.rss / MiB).toFixed(0)} → ${(after.rss / MiB).toFixed(0)} MiB`);
});

// ------------------------------------------------------------------ part 2: a real helper writes hostile bytes on fd 3

/** Attacks sent from a real helper, one launch each: every kind of header, CBOR and envelope abuse. */
const HELPER_ATTACKS = [
  'header 0xffffffff', 'header maxFrameBytes+1', 'zero-length frame', 'frame one byte short',
  'reply nested one over the frame limit (67)', 'arrays nested 100000', 'maps nested 10000', 'indefinite arrays nested 50000',
  'text of 2^64-1 bytes', 'array of 2^64-1 items', 'map of 2^32-1 pairs', 'envelope array of 2^32 items',
  'unknown tag', 'tag 27 generic object', 'value-sharing expansion bomb', 'cbor-x record definition (0xdfff) with hostile keys',
  'cbor-x record definitions (0xdffe)', 'legacy record (tag 105) with __proto__', 'packed table (tag 51) + refs (tag 6)', 'bignum of 65 bytes',
  'non-text map key', 'unknown kind', 'bad call ids', 'call from the service', 'cancel from the service', 'indefinite text',
  'array of empty maps (amplification)', 'array of empty byte strings (amplification)', 'empty maps one over the object limit',
];
/** Named attacks the broker must tolerate (valid envelopes with hostile content): sent before the first fatal round. */
const TOLERATED_ATTACKS = [
  'invalid UTF-8 event name', 'invalid UTF-8 map keys', 'reply nested exactly to the frame limit (66)', 'maps nested 64 in an event',
  'error with toString key in data', 'empty maps at the object limit', 'empty byte strings at the object limit', 'map with many duplicate keys',
];
const RANDOM_FATAL_ROUNDS = 6;

/**
 * What the broker does with these bytes from a helper, frame by frame: the code
 * it cuts the helper off with (decode errors, or a call/cancel a service may not
 * send), and the events the connection sees before that. `safe` is false when a
 * frame could touch a call the test has in flight (an id below ID_BASE).
 */
function brokerOracle(bytes: Buffer): { fatal: string | undefined; events: number; errors: number; safe: boolean; pending: number } {
  const s = streamOracle(bytes);
  let events = 0;
  let errors = 0;
  for (const e of s.envelopes) {
    switch (e.kind) {
      case 'call':
      case 'cancel':
        return { fatal: 'ERR_BAD_FRAME', events, errors, safe: true, pending: 0 };
      case 'reply':
        if (e.id < ID_BASE) return { fatal: undefined, events, errors, safe: false, pending: 0 };
        break;
      case 'error':
        if (e.id !== 0 && e.id < ID_BASE) return { fatal: undefined, events, errors, safe: false, pending: 0 };
        break;
      case 'event':
        if (e.callId !== 0 && e.callId < ID_BASE) return { fatal: undefined, events, errors, safe: false, pending: 0 };
        if (e.callId === 0) {
          if (e.name === gen.DEFAULT_OPTIONS.declaredEvent) events++;
          else errors++;
        }
        break;
      default:
        break;
    }
  }
  return { fatal: s.code, events, errors, safe: true, pending: s.pending };
}

t.test('part 2: hostile frames from a real helper: cut off with the predicted code, others keep serving, memory flat', async (t) => {
  const kit = await startBroker({
    root: FIXTURES,
    services: [
      { name: 'fuzz', entry: './hardening/fuzz-service.js', protocol: 'com.test.hardening-fuzz', launch: { throttleMs: 0, maxRestarts: 1000 } },
      { name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' },
    ],
  });
  t.teardown(() => kit.close());
  const fuzz = kit.broker.connect('fuzz');
  const echo = kit.broker.connect('echo');
  const launches: number[] = [];
  kit.broker.on('launch', (name, pid) => {
    if (name === 'fuzz') launches.push(pid);
  });
  let events = 0;
  let eventErrors = 0;
  fuzz.on('event', () => events++);
  fuzz.on('error', () => eventErrors++);

  // The bystander: a steady stream of echo calls for the whole test.
  const { pid: echoPid } = await echo.call('echo', { text: 'start' });
  let stopBystander = false;
  const bystander = (async () => {
    let ok = 0;
    const failures: string[] = [];
    const pids = new Set<number>();
    // Bounded, and it stops at the first failure: it must never spin on a closed broker.
    while (!stopBystander && failures.length === 0 && ok < 1_000_000) {
      try {
        const r = await echo.call('echo', { text: `b${ok}` }, { timeoutMs: 5000 });
        if (r.text !== `b${ok}`) failures.push(`wrong reply ${r.text}`);
        pids.add(r.pid);
        ok++;
      } catch (err) {
        failures.push((err as BulkheadError).code);
      }
      // Paced (~200 calls/s): a steady load, not a CPU hog competing with the rounds.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return { ok, failures, pids };
  })();
  t.teardown(() => {
    stopBystander = true;
  });

  // Rounds: the named attacks, then random fatal cases found by scanning the seeded mix.
  const rounds: Array<{ label: string; indexes: number[]; options: Record<string, unknown>; fatal: string }> = [];
  for (const name of HELPER_ATTACKS) {
    const options = { ...GEN_OPTIONS, family: 'adversarial', name };
    const o = brokerOracle(gen.generateCase(SEED, 0, options).bytes);
    t.ok(o.fatal !== undefined && o.safe, `${name}: predicted fatal (${o.fatal})`);
    rounds.push({ label: name, indexes: [0], options, fatal: o.fatal! });
  }
  // Tolerated cases (valid frames with hostile content, ignored or delivered) to send before each fatal one.
  const tolerated: Array<{ index: number; events: number; errors: number }> = [];
  let scan = 1_000_000;
  while (rounds.length < HELPER_ATTACKS.length + RANDOM_FATAL_ROUNDS || tolerated.length < 200) {
    const index = scan++;
    const o = brokerOracle(gen.generateCase(SEED, index, GEN_OPTIONS).bytes);
    if (!o.safe) continue;
    if (o.fatal === undefined && o.pending === 0) {
      if (tolerated.length < 200) tolerated.push({ index, events: o.events, errors: o.errors });
    } else if (o.fatal !== undefined && rounds.length < HELPER_ATTACKS.length + RANDOM_FATAL_ROUNDS) {
      rounds.push({ label: `seeded case ${index} (${gen.generateCase(SEED, index, GEN_OPTIONS).name})`, indexes: [index], options: GEN_OPTIONS, fatal: o.fatal });
    }
  }

  const codes = new Map<string, number>();
  let baseline: { heapUsed: number; rss: number } | undefined;
  let peakRss = 0;
  let toleratedSent = 0;
  // The named tolerated attacks, each in its own call: delivered or ignored exactly as predicted, helper kept.
  for (const name of TOLERATED_ATTACKS) {
    const options = { ...GEN_OPTIONS, family: 'adversarial', name };
    const o = brokerOracle(gen.generateCase(SEED, 0, options).bytes);
    const eventsBefore = events;
    const errorsBefore = eventErrors;
    await fuzz.call('inject', { seed: SEED, indexes: [0], ...options }, { timeoutMs: 10_000 });
    t.same({ fatal: o.fatal, events: events - eventsBefore, errors: eventErrors - errorsBefore }, { fatal: undefined, events: o.events, errors: o.errors }, `${name}: tolerated, ${o.events} event(s) and ${o.errors} event error(s) as predicted`);
  }
  t.equal(launches.length, 1, 'the tolerated attacks cost the helper nothing');

  try {
  for (const [n, round] of rounds.entries()) {
    if (n === 4) baseline = heap();
    // Valid-but-hostile frames first: the helper stays connected and the events arrive as predicted.
    const batch = tolerated.slice((n * 5) % tolerated.length, ((n * 5) % tolerated.length) + 5);
    const eventsBefore = events;
    const errorsBefore = eventErrors;
    const sent = await fuzz.call('inject', { seed: SEED, indexes: batch.map((c) => c.index), ...GEN_OPTIONS }, { timeoutMs: 10_000 });
    toleratedSent += batch.length;
    t.equal(events - eventsBefore, batch.reduce((sum, c) => sum + c.events, 0), `${round.label}: tolerated frames delivered exactly the predicted events`);
    t.equal(eventErrors - errorsBefore, batch.reduce((sum, c) => sum + c.errors, 0), `${round.label}: and the predicted ERR_INVALID_RESULT event errors`);
    // Then the fatal bytes: the call in flight fails with the code, the helper is cut off and exits.
    const exit = kit.nextExit('fuzz');
    const err = await rejection(fuzz.call('inject', { seed: SEED, indexes: round.indexes, ...round.options }, { timeoutMs: 10_000 }));
    t.equal(err.code, round.fatal, `${round.label}: the call on the helper rejects with ${round.fatal}`);
    codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
    const info = await exit;
    t.equal(info.requested, false, `${round.label}: the helper (pid ${sent.pid}) was disconnected and exited`);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
  } finally {
    stopBystander = true;
  }
  const after = heap();
  const bystanderResult = await bystander;

  t.equal(launches.length, rounds.length, `one launch per round (${rounds.length})`);
  t.same(bystanderResult.failures, [], `the other service answered all ${bystanderResult.ok} calls made during the rounds`);
  t.same([...bystanderResult.pids], [echoPid], 'from the same helper: it was never disturbed');
  t.equal(polluted(), false, 'Object.prototype untouched');
  t.same(uncaught, [], 'no uncaught exception in the broker');
  const heapGrowth = (after.heapUsed - baseline!.heapUsed) / MiB;
  const rssGrowth = (after.rss - baseline!.rss) / MiB;
  t.ok(heapGrowth < 8, `heapUsed after GC grew ${heapGrowth.toFixed(2)} MiB from round 4 to round ${rounds.length} (bound 8 MiB)`);
  t.ok(rssGrowth < 64, `rss grew ${rssGrowth.toFixed(1)} MiB from round 4 to round ${rounds.length} (bound 64 MiB)`);
  t.comment(`part 2: ${rounds.length} hostile helpers cut off; codes ${JSON.stringify(Object.fromEntries(codes))}; ${toleratedSent} tolerated hostile cases delivered (${events} events, ${eventErrors} event errors); bystander served ${bystanderResult.ok} calls`);
  t.comment(`part 2: heapUsed after GC ${(baseline!.heapUsed / MiB).toFixed(1)} → ${(after.heapUsed / MiB).toFixed(1)} MiB; rss ${(baseline!.rss / MiB).toFixed(0)} → ${(after.rss / MiB).toFixed(0)} MiB (peak ${(peakRss / MiB).toFixed(0)} MiB)`);
});

// ------------------------------------------------------------------ part 3: forged answers to the helper's own calls

t.test('part 3: a helper forging answers to its own calls', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [{ name: 'fuzz', entry: './hardening/fuzz-service.js', protocol: 'com.test.hardening-fuzz', launch: { throttleMs: 0, exitTimeoutMs: 200 } }] });
  t.teardown(() => kit.close());
  const fuzz = kit.broker.connect('fuzz');
  const { pid } = await fuzz.call('ping', {});

  const r = (await fuzz.call('forge', { attack: 'reply-proto' }, { timeoutMs: 5000 })) as Record<string, unknown>;
  t.equal(Object.getPrototypeOf(r), Object.prototype, '__proto__/constructor/prototype keys: a plain object');
  t.same(Object.keys(r), ['__proto_', 'constructor', 'prototype', 'ok'], 'with own keys (cbor-x renames __proto__)');
  t.equal(polluted(), false, 'Object.prototype untouched');

  const invalid = await rejection(fuzz.call('forge', { attack: 'reply-invalid' }, { timeoutMs: 5000 }));
  t.equal(invalid.code, 'ERR_INVALID_RESULT', 'a result failing its schema is ERR_INVALID_RESULT');

  const forged = await rejection(fuzz.call('forge', { attack: 'error-forged-interrupted' }, { timeoutMs: 5000 }));
  t.equal(forged.code, 'ERR_SERVICE_ERROR', 'a helper cannot claim the broker interrupted the call');
  t.equal(forged.data['remoteCode'], 'ERR_INTERRUPTED');
  t.equal(Object.getPrototypeOf(forged.data), Object.prototype);
  const forged2 = await rejection(fuzz.call('forge', { attack: 'error-forged-invalidated' }, { timeoutMs: 5000 }));
  t.equal(forged2.code, 'ERR_SERVICE_ERROR', 'nor that it is invalidated');
  t.equal(forged2.data['remoteCode'], 'ERR_INVALIDATED');

  t.equal((await fuzz.call('ping', {})).pid, pid, 'none of these cost the helper its connection');
  t.equal(kit.status('fuzz').launches, 1);
  t.same(uncaught, []);
});

// ------------------------------------------------------------------ amplification: one-byte items that decode to objects

t.test('a frame of empty maps costs the broker at most 8 bytes of heap per wire byte', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [{ name: 'fuzz', entry: './hardening/fuzz-service.js', protocol: 'com.test.hardening-fuzz', launch: { throttleMs: 0, exitTimeoutMs: 200 } }] });
  t.teardown(() => kit.close());
  const fuzz = kit.broker.connect('fuzz');
  await fuzz.call('ping', {});
  const size = MiB;
  const before = heap();
  // A connection-level error (id 0) whose data holds 1 Mi empty maps: ~64 MiB of objects if decoded.
  const exit = kit.nextExit('fuzz');
  const err = await rejection(fuzz.call('forge', { attack: 'amplify-retained', size }, { timeoutMs: 5000 }));
  t.equal(err.code, 'ERR_BAD_FRAME', 'refused before decoding: the helper is cut off and its call fails with ERR_BAD_FRAME');
  t.match(err.message, /more than \d+ arrays, maps and byte strings .*1024 \+ 1 per 8 bytes/, `the message names the limit: ${err.message}`);
  t.equal((await exit).requested, false, 'the helper was disconnected and exited');
  const after = heap();
  const perByte = (after.heapUsed - before.heapUsed) / size;
  t.ok(perByte <= 8, `one ${size}-byte frame of empty maps left ${((after.heapUsed - before.heapUsed) / MiB).toFixed(2)} MiB of broker heap (${perByte.toFixed(2)} bytes per wire byte; bound 8)`);
  t.same(uncaught, []);
});

t.test('the densest frames the object limit accepts: heap per wire byte stays near BYTES_PER_OBJECT', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [{ name: 'fuzz', entry: './hardening/fuzz-service.js', protocol: 'com.test.hardening-fuzz', launch: { throttleMs: 0, exitTimeoutMs: 200 } }] });
  t.teardown(() => kit.close());
  const fuzz = kit.broker.connect('fuzz');
  const { pid } = await fuzz.call('ping', {});
  const size = 2 * MiB;
  const baseline = heap();
  // Decoded sizes on Node 20 (V8, 64-bit): an empty map ~56 B + an 8 B array slot, an empty Buffer ~96 B + slot.
  for (const { item, label, bound } of [{ item: 0xa0, label: 'empty maps', bound: 9 }, { item: 0x40, label: 'empty byte strings', bound: 16 }]) {
    // Accepted: the broker keeps an id-0 error as the helper's last error while it lives, so the decoded
    // value stays in the heap; the next one replaces it, so each is measured from the same baseline.
    const err = await rejection(fuzz.call('forge', { attack: 'amplify-retained-limit', size, item }, { timeoutMs: 2000 }));
    t.equal(err.code, 'ERR_DEADLINE', `${label} at the limit: accepted, and the id-0 error settles no call`);
    t.equal((await fuzz.call('ping', {})).pid, pid, `${label} at the limit: the helper keeps its connection`);
    const pinned = heap().heapUsed - baseline.heapUsed;
    const perByte = pinned / size;
    t.ok(perByte <= bound, `a ${size}-byte frame of ${label} at the object limit pinned ${(pinned / MiB).toFixed(1)} MiB of broker heap (${perByte.toFixed(2)} bytes per wire byte; bound ${bound})`);
  }
  t.same(uncaught, []);
});

t.test('an answer that outgrows the frame limit when the broker re-encodes it (for a helper\'s routed outbound call) fails that call only', async (t) => {
  const kit = await startBroker({
    root: FIXTURES,
    maxFrameBytes: 256 * 1024,
    // The routed path (fd 4) is the one that re-encodes; a direct channel passes no frame through the broker.
    directConnects: false,
    services: [
      { name: 'fuzz', entry: './hardening/fuzz-service.js', protocol: 'com.test.hardening-fuzz', launch: { throttleMs: 0 } },
      { name: 'caller', entry: './caller-service.js', protocol: 'com.test.caller', connects: ['fuzz'] },
    ],
  });
  t.teardown(() => kit.close());
  const caller = kit.broker.connect('caller');
  // 80,000 half floats: 240 kB as the callee wrote them, 720 kB as doubles once the broker rewrites the ids.
  const r = await caller.call('relay', { service: 'fuzz', method: 'forge', params: { attack: 'widen-reply', size: 80_000 } });
  t.same([r.ok, r.code], [false, 'ERR_FRAME_TOO_LARGE'], `the caller gets the reason: ${r.message}`);
  t.equal((await caller.call('relay', { service: 'fuzz', method: 'ping' })).ok, true, 'and calls on through the same route');
  // Exactly at the object limit with wide heads: shortest-form re-encoding would put it over at the caller.
  const shrunk = await caller.call('relay', { service: 'fuzz', method: 'forge', params: { attack: 'shrink-at-limit', size: 100_000 } });
  t.same([shrunk.ok, shrunk.code], [false, 'ERR_INVALID_RESULT'], `refused before it reaches the caller: ${shrunk.message}`);
  t.equal((await caller.call('relay', { service: 'fuzz', method: 'ping' })).ok, true, 'whose outbound channel stays open');
  t.equal(kit.status('caller').launches, 1, 'the calling helper was not cut off');
  t.same(uncaught, [], 'the broker did not throw');
});

t.test('no uncaught exception or unhandled rejection in the whole file', async (t) => {
  t.same(uncaught, []);
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
});
