// Events that push back (issue 16): ctx.emit() returns a promise that waits while the
// channel's backlog is over EVENT_BACKLOG.highWaterBytes. A helper flooding a million small
// events at a client that stops reading is slowed to the reader's pace, and its memory
// stays bounded; every event still arrives, in order.
import t from 'tap';
import { EVENT_BACKLOG } from 'bulkhead';
import { startBroker } from 'bulkhead/testing';
import { FIXTURES, recordUncaught } from './helpers.js';

const uncaught = recordUncaught();
const MiB = 1024 * 1024;
const FLOOD = 1_000_000;

const kit = await startBroker({
  root: FIXTURES,
  // --expose-gc: the flood samples its live heap after a full collection (what is really held).
  services: [{ name: 'streams', entry: './streams-service.js', protocol: 'com.test.streams', nodeArgs: ['--expose-gc'], launch: { throttleMs: 0, exitTimeoutMs: 500 } }],
});
t.teardown(() => kit.close());

interface Flood { sent: number; peakRss: number; peakHeap: number; peakLive: number; waits: number; error?: string }

t.test(`a million events while the client stops reading: the helper is slowed, its memory bounded, nothing lost`, async (t) => {
  const conn = kit.broker.connect('streams');
  const baseline = await conn.call('flood', { n: 1 }) as Flood;
  let count = 0;
  let outOfOrder = 0;
  let stalled = false;
  conn.onEvent('tick', ({ i }: { i: number }) => {
    if (i !== count) outOfOrder++;
    count++;
    if (count === 1000 && !stalled) {
      stalled = true;
      // The client stops reading: its thread is busy, nothing is read from the helper meanwhile.
      const until = performance.now() + 1500;
      while (performance.now() < until) { /* busy */ }
    }
  });
  const started = performance.now();
  const result = await conn.call('flood', { n: FLOOD }, { timeoutMs: 300_000 }) as Flood;
  const seconds = (performance.now() - started) / 1000;
  t.equal(result.error, undefined, 'emit never threw');
  t.equal(result.sent, FLOOD);
  t.same({ count, outOfOrder }, { count: FLOOD, outOfOrder: 0 }, 'every event arrived, in order');
  t.ok(result.waits > 0, `emit() made the helper wait ${result.waits} times`);
  const growth = result.peakHeap - baseline.peakHeap;
  const rssGrowth = result.peakRss - baseline.peakRss;
  const live = result.peakLive - baseline.peakLive;
  // What can wait in the helper is the high-water mark plus one event. Unbounded, the million events
  // (~100 bytes each on the heap) would hold ~100 MiB. The heap and RSS peaks also count garbage a GC
  // has not collected yet (Node 24+ collects later than 20), so they are reported, not asserted.
  t.ok(live < 32 * MiB, `helper live heap after GC +${(live / MiB).toFixed(1)} MiB over its baseline (high-water mark ${EVENT_BACKLOG.highWaterBytes / MiB} MiB)`);
  t.comment(`${FLOOD} events in ${seconds.toFixed(1)} s (${Math.round(FLOOD / seconds)} events/s) with a 1.5 s stall; helper live heap +${(live / MiB).toFixed(1)} MiB, heap peak +${(growth / MiB).toFixed(1)} MiB, rss +${(rssGrowth / MiB).toFixed(1)} MiB, ${result.waits} waits`);
  await conn.close();
});

t.test('an emitter that never awaits is stopped by the hard bound with ERR_BACKPRESSURE, not grown without limit', async (t) => {
  const conn = kit.broker.connect('streams');
  let stalled = false;
  conn.onEvent('tick', () => {
    if (stalled) return;
    stalled = true;
    const until = performance.now() + 1500;
    while (performance.now() < until) { /* busy */ }
  });
  // 4 million events of ~20 bytes exceed the 32 MiB bound if nobody reads them.
  const result = await conn.call('flood', { n: 4_000_000, await: false }, { timeoutMs: 300_000 }) as Flood;
  t.equal(result.error, 'ERR_BACKPRESSURE', `emit threw ERR_BACKPRESSURE after ${result.sent} events`);
  t.ok(result.sent < 4_000_000);
  await conn.close();
});

t.test('nothing threw out of band', async (t) => {
  t.same(uncaught, []);
});
