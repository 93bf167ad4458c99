/**
 * The payload echo's verdict over process sets (bench/scenarios/payloads-sets.ts): a set's ratio is the median
 * of its rounds' ratios bulkhead / raw socket, the verdict the median over sets with a ~95% interval of order
 * statistics, "not decisive" when the interval holds the target. Pure logic, in memory; the bench runs it for real.
 */
import t from 'tap';
import { PAYLOAD_SIZES } from '../bench/common/payload-echo.js';
import { describePayloadSetVerdict, notDecisive, payloadSetVerdict, setFromRounds, type PayloadSet } from '../bench/scenarios/payloads-sets.js';

const [small] = PAYLOAD_SIZES as [number, ...number[]];

/** A set whose rounds at every size have these ratios (raw socket at 100 MB/s). */
const setOf = (ratios: number[]): PayloadSet =>
  setFromRounds(
    Object.fromEntries(PAYLOAD_SIZES.map((s) => [s, ratios.map((r) => r * 100)])),
    Object.fromEntries(PAYLOAD_SIZES.map((s) => [s, ratios.map(() => 100)])),
  );

t.test('a set: per-round ratios of the same round, and its median rates', (t) => {
  const set = setFromRounds(
    Object.fromEntries(PAYLOAD_SIZES.map((s) => [s, [90, 200, 60]])),
    Object.fromEntries(PAYLOAD_SIZES.map((s) => [s, [100, 100, 120]])),
  );
  t.same(set.roundRatios[small], [0.9, 2, 0.5]);
  t.equal(set.bulkheadRate[small], 90);
  t.equal(set.rawRate[small], 100);
  t.end();
});

t.test('nine sets: median of the sets\' own medians, interval from the 2nd to the 8th', (t) => {
  // Each set's median: 0.70, 0.80, ... 1.50 (in shuffled order), whatever its other rounds read.
  const medians = [1.1, 0.7, 1.5, 0.9, 1.3, 0.8, 1.0, 1.4, 1.2];
  const sets = medians.map((m) => setOf([m - 0.5, m, m + 3]));
  const v = payloadSetVerdict(sets, small);
  t.same(v.ratios.map((x) => Math.round(x * 10) / 10), medians);
  t.equal(Math.round(v.median * 10) / 10, 1.1);
  t.equal(Math.round(v.ciLow * 10) / 10, 0.8, 'the 2nd lowest');
  t.equal(Math.round(v.ciHigh * 10) / 10, 1.4, 'the 2nd highest');
  t.equal(notDecisive(v, 0.9), true, '0.9 inside the interval: not decisive');
  t.match(describePayloadSetVerdict(v, 0.9), /^110% median of 9 process sets \(per set .*; ~95% interval 80–140%, not decisive\)$/);
  t.equal(notDecisive(v, 0.75), false, 'below the interval: decisive');
  t.notMatch(describePayloadSetVerdict(v, 0.75), /not decisive/);
  t.end();
});

t.test('fewer than 6 sets: no interval, never "not decisive"', (t) => {
  const v = payloadSetVerdict([setOf([0.8]), setOf([1.0]), setOf([0.9])], small);
  t.equal(Math.round(v.median * 10) / 10, 0.9);
  t.ok(Number.isNaN(v.ciLow) && Number.isNaN(v.ciHigh));
  t.equal(notDecisive(v, 0.9), false);
  t.match(describePayloadSetVerdict(v, 0.9), /no ~95% interval below 6 sets/);
  t.end();
});
