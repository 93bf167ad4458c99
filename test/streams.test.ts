// Streams (issue 16): items in both directions under credit flow control, validated
// by their receiver, ended cleanly from either side, with no stream state left over.
import t from 'tap';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isBulkheadError, type BulkheadError, type ExitInfo, STREAM_WINDOW } from 'bulkhead';
import { startBroker } from 'bulkhead/testing';
import { FIXTURES, recordUncaught } from './helpers.js';

const uncaught = recordUncaught();
const MiB = 1024 * 1024;
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const kit = await startBroker({
  root: FIXTURES,
  services: [
    { name: 'streams', entry: './streams-service.js', protocol: 'com.test.streams', launch: { throttleMs: 0, exitTimeoutMs: 500 } },
    { name: 'caller', entry: './caller-service.js', protocol: 'com.test.caller', connects: ['streams'] },
  ],
});
t.teardown(() => kit.close());

interface Produced { produced: number; openStreams: number; lastAbort: string | null; finallyRan: number }

async function streamError(iterable: AsyncIterable<unknown>): Promise<{ error: BulkheadError; items: number }> {
  let items = 0;
  try {
    for await (const _ of iterable) items++;
  } catch (err) {
    if (isBulkheadError(err)) return { error: err, items };
    throw err;
  }
  throw new Error(`expected the stream to fail; it ended after ${items} items`);
}

/** Chunk c of `size` bytes with the fixture's pattern. */
function chunk(c: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let k = 0; k < size; k += 4096) b[k] = (c + k) & 255;
  return b;
}

t.test('10,000 items arrive in order, then the result; nothing is left open on either side', async (t) => {
  const conn = kit.broker.connect('streams');
  const stream = conn.stream('count', { n: 10_000 });
  let expected = 0;
  let outOfOrder = 0;
  for await (const item of stream) {
    if ((item as { i: number }).i !== expected) outOfOrder++;
    expected++;
  }
  t.equal(expected, 10_000, 'every item arrived');
  t.equal(outOfOrder, 0, 'in order');
  t.same(await stream.result, { count: 10_000 }, 'the generator\'s return value is the result');
  t.equal(conn.inFlight, 0, 'the caller holds no call');
  const state = await conn.call('produced', {}) as Produced;
  t.equal(state.openStreams, 0, 'the helper holds no stream');
  await conn.close();
});

t.test('an invalid item ends the stream with ERR_INVALID_RESULT naming its index; the handler is stopped', async (t) => {
  const conn = kit.broker.connect('streams');
  const { error, items } = await streamError(conn.stream('count', { n: 1000, badAt: 37 }));
  t.equal(error.code, 'ERR_INVALID_RESULT');
  t.equal(error.data['index'], 37, 'data.index is the offending item');
  t.equal(error.data['part'], 'yields');
  t.equal(items, 37, 'the items before it were delivered');
  const state = await waitForAbort(conn);
  t.equal(state.lastAbort, 'ERR_CANCELLED', 'the helper stopped the stream');
  t.ok(state.produced < 1000, `the generator was not run to the end (${state.produced} produced)`);
  await conn.close();
});

t.test('a handler that throws ends the iterator with its typed error after the items before it', async (t) => {
  const conn = kit.broker.connect('streams');
  const stream = conn.stream('count', { n: 100, throwAt: 10 });
  const { error, items } = await streamError(stream);
  t.equal(error.code, 'ERR_SERVICE_ERROR');
  t.equal(error.data['remoteCode'], 'E_AT');
  t.equal(items, 10);
  const result = await stream.result.then(() => undefined, (e: BulkheadError) => e);
  t.equal(result?.code, 'ERR_SERVICE_ERROR', '.result rejects with the same error');
  await conn.close();
});

t.test('break, abort and deadline reach the handler\'s ctx.signal and stop its generator', async (t) => {
  const conn = kit.broker.connect('streams');
  const before = (await conn.call('produced', {}) as Produced).finallyRan;

  let seen = 0;
  for await (const _ of conn.stream('count', { n: 1_000_000 })) if (++seen === 5) break;
  let state = await waitForAbort(conn);
  t.equal(state.lastAbort, 'ERR_CANCELLED', 'break: ctx.signal aborted with ERR_CANCELLED');
  t.ok(state.produced <= 5 + STREAM_WINDOW.items + 1, `break: the producer stopped within one window (${state.produced} produced)`);

  const controller = new AbortController();
  const aborted = conn.stream('count', { n: 10, waitAt: 3 }, { signal: controller.signal });
  let got = 0;
  const failure = (async () => {
    for await (const _ of aborted) if (++got === 3) controller.abort();
  })().then(() => undefined, (e: BulkheadError) => e);
  t.equal((await failure)?.code, 'ERR_CANCELLED', 'abort: the iterator throws ERR_CANCELLED');
  state = await waitForAbort(conn);
  t.equal(state.lastAbort, 'ERR_CANCELLED', 'abort: ctx.signal aborted');

  const { error } = await streamError(conn.stream('count', { n: 10, waitAt: 2 }, { timeoutMs: 300 }));
  t.equal(error.code, 'ERR_DEADLINE', 'deadline: the iterator throws ERR_DEADLINE');
  state = await waitForAbort(conn);
  t.equal(state.lastAbort, 'ERR_DEADLINE', 'deadline: ctx.signal aborted with ERR_DEADLINE');
  t.equal(state.finallyRan, before + 3, 'every generator ran its finally block');
  t.equal(state.openStreams, 0, 'no stream left open in the helper');
  t.equal(conn.inFlight, 0, 'no call left on the caller');
  await conn.close();
});

/** The cancel reaches the helper asynchronously: ask until its generator has run its finally block. */
async function waitForAbort(conn: ReturnType<typeof kit.broker.connect>): Promise<Produced> {
  for (;;) {
    const state = await conn.call('produced', {}) as Produced;
    if (state.openStreams === 0) return state;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

// The outcome and its order, no time bound (a hang fails on tap's timeout): the error is the helper's own end (the
// kill's signal, as its exit reports it), not a deadline or a closed connection, and it comes before the relaunch.
t.test('SIGKILL mid-stream: the iterator throws ERR_INTERRUPTED with the kill\'s signal, before the relaunch; the next stream relaunches', async (t) => {
  const conn = kit.broker.connect('streams');
  const stream = conn.stream('count', { n: 1_000_000 });
  const order: string[] = [];
  const launches = kit.broker.on('launch', (service) => service === 'streams' && order.push('launch'));
  t.teardown(() => launches.dispose());
  let got = 0;
  let crashed: Promise<ExitInfo> | undefined;
  const { error } = await streamError((async function* () {
    for await (const item of stream) {
      yield item;
      if (++got === 100) crashed = kit.crash('streams');
    }
  })());
  order.push(`error ${error.code}`);
  const exit = await crashed;
  t.equal(exit?.signal, 'SIGKILL', 'the helper died of the kill');
  t.same({ code: error.code, signal: error.data['signal'], service: error.data['service'] }, { code: 'ERR_INTERRUPTED', signal: 'SIGKILL', service: 'streams' }, 'the stream\'s error carries the helper\'s end');
  t.equal(conn.inFlight, 0, 'no call left on the caller');
  let n = 0;
  for await (const _ of conn.stream('count', { n: 10 })) n++;
  t.equal(n, 10, 'a new stream works on the relaunched helper');
  t.same(order, ['error ERR_INTERRUPTED', 'launch'], 'the error came before the relaunch');
  await conn.close();
});

t.test('caller → service: numbers streamed in, summed into the result', async (t) => {
  const conn = kit.broker.connect('streams');
  async function* numbers() {
    for (let i = 1; i <= 5000; i++) yield i;
  }
  const stream = conn.stream('sum', {}, { input: numbers() });
  const items: unknown[] = [];
  for await (const item of stream) items.push(item);
  t.same(items, [], 'a method that yields nothing iterates empty');
  t.same(await stream.result, { sum: 5000 * 5001 / 2, count: 5000 });
  t.same(await conn.stream('sum', {}, { input: [1.5, 2.5] }).result, { sum: 4, count: 2 }, 'a plain array works as input');
  t.same(await conn.stream('sum', {}).result, { sum: 0, count: 0 }, 'no input: empty');
  await conn.close();
});

t.test('an invalid input item fails the call with ERR_INVALID_PARAMS naming its index; input stops being pulled', async (t) => {
  const conn = kit.broker.connect('streams');
  let pulled = 0;
  async function* numbers() {
    for (let i = 0; i < 100_000; i++) {
      pulled++;
      yield i === 20 ? 'twenty' : i;
    }
  }
  const error = await conn.stream('sum', {}, { input: numbers() }).result.then(() => undefined, (e: BulkheadError) => e);
  t.equal(error?.code, 'ERR_INVALID_PARAMS');
  t.equal(error?.data['index'], 20);
  t.ok(pulled < 100_000, `the input was not drained (${pulled} pulled)`);
  await conn.close();
});

t.test('both directions at once: items echoed back as they come', async (t) => {
  const conn = kit.broker.connect('streams');
  const out: number[] = [];
  for await (const x of conn.stream('echoItems', {}, { input: Array.from({ length: 2000 }, (_, i) => i) })) out.push(x as number);
  t.equal(out.length, 2000);
  t.equal(out[1999], 3998);
  await conn.close();
});

t.test('64 MiB as a stream of 1 MiB chunks, download and upload', async (t) => {
  const conn = kit.broker.connect('streams');
  let bytes = 0;
  let chunks = 0;
  let ok = true;
  const started = performance.now();
  for await (const c of conn.stream('chunks', { count: 64, size: MiB })) {
    const b = c as Uint8Array;
    for (let k = 0; k < b.length; k += 4096) if (b[k] !== ((chunks + k) & 255)) ok = false;
    bytes += b.length;
    chunks++;
  }
  const down = performance.now() - started;
  t.equal(bytes, 64 * MiB, 'download: 64 MiB arrived');
  t.ok(ok, 'download: every chunk holds its pattern');
  async function* upload() {
    for (let c = 0; c < 64; c++) yield chunk(c, MiB);
  }
  const upStarted = performance.now();
  const result = await conn.stream('upload', {}, { input: upload() }).result as { bytes: number; chunks: number; ok: boolean };
  const up = performance.now() - upStarted;
  t.same({ bytes: result.bytes, chunks: result.chunks, ok: result.ok }, { bytes: 64 * MiB, chunks: 64, ok: true }, 'upload: 64 MiB arrived intact');
  t.comment(`download ${(64 / (down / 1000)).toFixed(0)} MB/s, upload ${(64 / (up / 1000)).toFixed(0)} MB/s`);
  await conn.close();
});

t.test('slow consumer, fast producer of 1 MiB items: the producer\'s lead stays within the window, memory with it', async (t) => {
  const conn = kit.broker.connect('streams');
  const lead: number[] = [];
  const queued: number[] = [];
  let consumed = 0;
  const CHUNKS = 160;
  gc();
  const baseline = process.memoryUsage().arrayBuffers;
  let peakBuffers = 0;
  const stream = conn.stream('chunks', { count: CHUNKS, size: MiB });
  for await (const _ of stream) {
    consumed++;
    if (consumed % 8 === 0) {
      // Give the producer every chance to run ahead, then ask how far it got.
      await new Promise((resolve) => setTimeout(resolve, 30));
      const { produced } = await conn.call('produced', {}) as Produced;
      lead.push(produced - consumed);
      queued.push(stream.buffered);
      gc();
      peakBuffers = Math.max(peakBuffers, process.memoryUsage().arrayBuffers - baseline);
    }
  }
  const bound = Math.ceil(STREAM_WINDOW.bytes / MiB) + 1;
  t.ok(Math.max(...lead) <= bound, `lead ≤ ${bound} items (4 MiB window + one item + the one being produced): max ${Math.max(...lead)} (${lead.join(', ')})`);
  t.ok(Math.max(...queued) <= bound, `items queued in the consumer ≤ ${bound}: max ${Math.max(...queued)}`);
  // A loose bound: 160 MiB go through; what stays after GC is the window plus buffers V8 and the socket free lazily.
  t.ok(peakBuffers < 48 * MiB, `consumer's buffers after GC peak +${(peakBuffers / MiB).toFixed(1)} MiB while ${CHUNKS} MiB went through`);
  await conn.close();
});

t.test('slow service reading a fast uploader: the uploader is held back, helper memory bounded', async (t) => {
  const conn = kit.broker.connect('streams');
  const probe = kit.broker.connect('streams');
  let pulled = 0;
  const lead: number[] = [];
  async function* upload() {
    for (let c = 0; c < 24; c++) {
      pulled++;
      if (c >= 8) {
        // Pulled as soon as flow control allows: how far ahead of the slow handler are we?
        const { uploaded } = await probe.call('produced', {}) as { uploaded: number };
        lead.push(pulled - uploaded);
      }
      yield chunk(c, MiB);
    }
  }
  const result = await conn.stream('upload', { slowMs: 20 }, { input: upload() }).result as { chunks: number; ok: boolean; peakRss: number };
  t.equal(result.chunks, 24);
  t.ok(result.ok);
  t.equal(pulled, 24);
  const bound = Math.ceil(STREAM_WINDOW.bytes / MiB) + 1;
  t.ok(Math.max(...lead) <= bound, `uploader's lead ≤ ${bound} items (4 MiB window + one item + the one being pulled): max ${Math.max(...lead)} (${lead.join(', ')})`);
  t.ok(Math.max(...lead) >= 2, 'and it does run ahead: the window is used');
  await probe.close();
  t.comment(`helper peak RSS ${(result.peakRss / MiB).toFixed(0)} MiB`);
  await conn.close();
});

t.test('call() on a stream method and stream() on a plain one are refused with a typed error', async (t) => {
  const conn = kit.broker.connect('streams');
  const e1 = await conn.call('count', { n: 1 }).then(() => undefined, (e: BulkheadError) => e);
  t.equal(e1?.code, 'ERR_INVALID_OPTION');
  const { error } = await streamError(conn.stream('produced', {}));
  t.equal(error.code, 'ERR_INVALID_OPTION');
  await conn.close();
});

t.test('a helper streams from another service through the broker (connects), both directions', async (t) => {
  const caller = kit.broker.connect('caller');
  t.same(await caller.call('relayStream', { service: 'streams', method: 'count', params: { n: 1000 } }), { ok: true, items: 1000, last: { i: 999 }, result: { count: 1000 } }, 'yields: 1000 items, in order, and the result');
  const input = Array.from({ length: 700 }, (_, i) => i);
  t.same(await caller.call('relayStream', { service: 'streams', method: 'echoItems', input }), { ok: true, items: 700, last: 1398, result: null }, 'accepts and yields: 700 items each way, past the first window');
  // 1 MiB chunks through the broker's route, which re-encodes each item with the route's call id:
  // the receiver's byte check must not refuse a sender that keeps the window.
  const big = await caller.call('relayStream', { service: 'streams', method: 'chunks', params: { count: 24, size: MiB } }) as { ok: boolean; items: number; code?: string };
  t.same([big.ok, big.items, big.code], [true, 24, undefined], '24 MiB of chunks, through a re-encoding hop');
  const bad = await caller.call('relayStream', { service: 'streams', method: 'count', params: { n: 100, badAt: 5 } }) as { ok: boolean; code: string };
  t.same([bad.ok, bad.code], [false, 'ERR_INVALID_RESULT'], 'an invalid item ends the stream with its code');
  const state = await waitForAbort(kit.broker.connect('streams'));
  t.equal(state.openStreams, 0, 'nothing left open in the target');
  await caller.close();
});

t.test('nothing threw out of band', async (t) => {
  t.same(uncaught, []);
});
