/**
 * The young-generation nudge (lib/wire/scavenge-nudge.ts): fresh body memory comes with short-lived JS
 * arrays worth its size (capped) times a ratio that follows the young generation's size, none of which
 * outlives the call; memory reused from the pool with none; only on the V8 versions
 * where it pays (nudgePaysOn: off on V8 12, Node 22), where it is off it allocates nothing. Its effect on
 * V8's collections is measured in bench/README.md ("Round six"), not asserted here: it depends on V8's version.
 */
import t from 'tap';
import { releaseBytes } from '../lib/index.js';
import { POOLED_BODY_MIN_BYTES, takeBody } from '../lib/wire/body-pool.js';
import { keptBody, sharedRead } from '../lib/wire/shared-read-buffers.js';
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import { NUDGE_ENABLED, nudgeHeld, nudgePaysOn, nudgeRatio, nudgeRatioInForce, nudgeYoungGeneration, nudgedSlots } from '../lib/wire/scavenge-nudge.js';

const v8Major = Number.parseInt(process.versions.v8, 10);

t.test('the nudge is on exactly where it pays: V8 11, 13, 14 and newer, not V8 12', (t) => {
  t.same([11, 12, 13, 14, 15].map(nudgePaysOn), [true, false, true, true, true]);
  t.equal(NUDGE_ENABLED, nudgePaysOn(v8Major), `this process (V8 ${String(v8Major)}): ${NUDGE_ENABLED ? 'on' : 'off'}`);
  t.end();
});

t.test('where it is off, fresh body memory allocates nothing', { skip: NUDGE_ENABLED ? `on for V8 ${String(v8Major)}` : false }, (t) => {
  const before = nudgedSlots();
  const body = takeBody(POOLED_BODY_MIN_BYTES + 1234);
  nudgeYoungGeneration(64 * 1024);
  nudgeYoungGeneration(16 * 1024 * 1024);
  t.equal(nudgedSlots(), before, 'no array allocated');
  t.equal(releaseBytes(body), true);
  t.end();
});

const whereOn = { skip: NUDGE_ENABLED ? false : `off for V8 ${String(v8Major)}` };

t.test('fresh body memory nudges; memory reused from the pool does not', whereOn, (t) => {
  const size = POOLED_BODY_MIN_BYTES + 4321;
  const before = nudgedSlots();
  const body = takeBody(size);
  const afterFresh = nudgedSlots();
  t.equal(afterFresh - before, Math.floor((size * nudgeRatioInForce()) / 8), 'a fresh body allocated JS arrays worth its size × the ratio');
  t.equal(nudgeHeld(), undefined, 'and holds none of them afterwards');
  t.equal(releaseBytes(body), true);
  const again = takeBody(size);
  t.equal(again.length, size);
  t.equal(nudgedSlots(), afterFresh, 'a body from the pool allocated none');
  t.end();
});

t.test('a kept copy of 16 KiB or more out of the shared read buffer nudges too; a smaller one does not', whereOn, (t) => {
  const shared = sharedRead();
  const before = nudgedSlots();
  const small = keptBody(shared.subarray(0, POOLED_BODY_MIN_BYTES - 1));
  t.equal(nudgedSlots(), before, 'below 16 KiB: none');
  const large = keptBody(shared.subarray(0, POOLED_BODY_MIN_BYTES + 100));
  t.ok(nudgedSlots() > before, '16 KiB or more: JS arrays allocated');
  t.not(large.buffer, shared.buffer, 'and the copy is its own memory');
  t.equal(small.length + 1, POOLED_BODY_MIN_BYTES);
  t.end();
});

t.test('the ratio follows the semi-space size: 1 at 8 MB, in proportion, between 0.5 and 4', (t) => {
  const MB = 1024 * 1024;
  t.same([1, 4, 8, 12, 16, 32, 64].map((mb) => nudgeRatio(mb * MB)), [0.5, 0.5, 1, 1.5, 2, 4, 4]);
  t.end();
});

t.test('the body size × the ratio, in chunks below the large-object size, capped at 1 MiB of body; nothing held afterwards', whereOn, (t) => {
  const slots = (bytes: number): number => {
    const before = nudgedSlots();
    nudgeYoungGeneration(bytes);
    t.equal(nudgeHeld(), undefined, `${String(bytes)}: no array outlives the call`);
    return nudgedSlots() - before;
  };
  nudgeYoungGeneration(64 * 1024);
  const ratio = nudgeRatioInForce();
  t.ok(ratio >= 0.5 && ratio <= 4, `the ratio in this process: ${String(ratio)}`);
  t.equal(slots(64 * 1024), Math.floor((64 * 1024 * ratio) / 8), '64 KiB');
  t.equal(slots(100_000), Math.floor((100_000 * ratio) / 8), '100,000 bytes');
  t.equal(slots(16 * 1024 * 1024), Math.floor((1024 * 1024 * ratio) / 8), '16 MiB → as for 1 MiB');
  t.equal(slots(0), 0, 'nothing for an empty body');
  t.end();
});

t.test('the allocation is real: nudging 128 MiB of bodies starts young-generation collections', whereOn, async (t) => {
  // A compiler that dropped the arrays as unused would leave the young generation still: no scavenge in the loop.
  const inLoop: number[] = [];
  let start = Number.POSITIVE_INFINITY;
  let end = Number.POSITIVE_INFINITY;
  let seen = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      seen++;
      const { detail } = entry as PerformanceEntry & { detail?: { kind?: number } };
      const minor = detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR;
      if (minor && entry.startTime >= start && entry.startTime <= end) inLoop.push(entry.startTime);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  start = performance.now();
  for (let i = 0; i < 2048; i++) nudgeYoungGeneration(64 * 1024);
  end = performance.now();
  // gc entries arrive asynchronously; the loop allocated nothing else, so every scavenge in its window is the nudge's.
  while (seen === 0) await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setTimeout(resolve, 20));
  observer.disconnect();
  t.ok(inLoop.length >= 2, `${String(inLoop.length)} scavenges while 128 MiB of arrays were allocated (a semi-space is at most 32 MiB)`);
});
