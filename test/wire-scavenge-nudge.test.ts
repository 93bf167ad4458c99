/**
 * The young-generation nudge (lib/wire/scavenge-nudge.ts): fresh body memory comes with short-lived JS
 * arrays worth half its size (capped), memory reused from the pool with none. Its effect on V8's
 * collections is measured in bench/README.md ("Round six"), not asserted here: it depends on V8's version.
 */
import t from 'tap';
import { releaseBytes } from '../lib/index.js';
import { POOLED_BODY_MIN_BYTES, takeBody } from '../lib/wire/body-pool.js';
import { lastNudge, nudgeYoungGeneration } from '../lib/wire/scavenge-nudge.js';

t.test('fresh body memory nudges; memory reused from the pool does not', (t) => {
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

t.test('half the body size, in chunks below the large-object size, capped at 1 MiB', (t) => {
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
