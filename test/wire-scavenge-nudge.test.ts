/**
 * The young-generation nudge (lib/wire/scavenge-nudge.ts): fresh body memory comes with short-lived JS
 * arrays worth half its size (capped), memory reused from the pool with none; only on the V8 versions
 * where it pays (nudgePaysOn: off on V8 12, Node 22), where it is off it allocates nothing. Its effect on
 * V8's collections is measured in bench/README.md ("Round six"), not asserted here: it depends on V8's version.
 */
import t from 'tap';
import { releaseBytes } from '../lib/index.js';
import { POOLED_BODY_MIN_BYTES, takeBody } from '../lib/wire/body-pool.js';
import { keptBody, sharedRead } from '../lib/wire/shared-read-buffers.js';
import { NUDGE_ENABLED, lastNudge, nudgePaysOn, nudgeYoungGeneration } from '../lib/wire/scavenge-nudge.js';

const v8Major = Number.parseInt(process.versions.v8, 10);

t.test('the nudge is on exactly where it pays: V8 11, 13, 14 and newer, not V8 12', (t) => {
  t.same([11, 12, 13, 14, 15].map(nudgePaysOn), [true, false, true, true, true]);
  t.equal(NUDGE_ENABLED, nudgePaysOn(v8Major), `this process (V8 ${String(v8Major)}): ${NUDGE_ENABLED ? 'on' : 'off'}`);
  t.end();
});

t.test('where it is off, fresh body memory allocates nothing', { skip: NUDGE_ENABLED ? `on for V8 ${String(v8Major)}` : false }, (t) => {
  const before = lastNudge();
  const body = takeBody(POOLED_BODY_MIN_BYTES + 1234);
  nudgeYoungGeneration(64 * 1024);
  nudgeYoungGeneration(16 * 1024 * 1024);
  t.equal(lastNudge(), before, 'no array allocated');
  t.equal(releaseBytes(body), true);
  t.end();
});

const whereOn = { skip: NUDGE_ENABLED ? false : `off for V8 ${String(v8Major)}` };

t.test('fresh body memory nudges; memory reused from the pool does not', whereOn, (t) => {
  const size = POOLED_BODY_MIN_BYTES + 4321;
  const before = lastNudge();
  const body = takeBody(size);
  const afterFresh = lastNudge();
  t.not(afterFresh, before, 'a fresh body allocated JS arrays');
  t.equal(releaseBytes(body), true);
  const again = takeBody(size);
  t.equal(again.length, size);
  t.equal(lastNudge(), afterFresh, 'a body from the pool allocated none');
  t.end();
});

t.test('a kept copy of 16 KiB or more out of the shared read buffer nudges too; a smaller one does not', whereOn, (t) => {
  const shared = sharedRead();
  const before = lastNudge();
  const small = keptBody(shared.subarray(0, POOLED_BODY_MIN_BYTES - 1));
  t.equal(lastNudge(), before, 'below 16 KiB: none');
  const large = keptBody(shared.subarray(0, POOLED_BODY_MIN_BYTES + 100));
  t.not(lastNudge(), before, '16 KiB or more: JS arrays allocated');
  t.not(large.buffer, shared.buffer, 'and the copy is its own memory');
  t.equal(small.length + 1, POOLED_BODY_MIN_BYTES);
  t.end();
});

t.test('half the body size, in chunks below the large-object size, capped at 1 MiB', whereOn, (t) => {
  nudgeYoungGeneration(64 * 1024);
  t.equal((lastNudge() as unknown[]).length, 4096, '64 KiB → one 32 KiB array of 4096 slots');
  nudgeYoungGeneration(100_000);
  t.equal((lastNudge() as unknown[]).length, 6250, '100,000 → 50,000 bytes, one array');
  nudgeYoungGeneration(16 * 1024 * 1024);
  t.equal((lastNudge() as unknown[]).length, 8192, '16 MiB → capped, the last of 16 chunks of 8192 slots');
  const before = lastNudge();
  nudgeYoungGeneration(0);
  t.equal(lastNudge(), before, 'nothing for an empty body');
  t.end();
});
