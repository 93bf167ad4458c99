// The calls-in-flight table (lib/util/call-table.ts) against a Map as the oracle: rising ids as a
// caller makes them, ids of daemon ranges that collide in every slot, ids a hostile peer picks
// (0, 2^32 - 1, non-integers), growth to its cap and the side Map past it.
import t from 'tap';
import { CALL_TABLE_MAX_SLOTS, CallTable } from '../lib/util/call-table.js';
import { ID_RANGE_SIZE, MAX_CALL_ID } from '../lib/wire/envelope.js';
import { prng } from './helpers.js';

/** Checks every id the oracle holds, a few it does not, and the size and order. */
function agree(t: { fail(message: string): boolean }, table: CallTable<string>, oracle: Map<number, string>, probes: number[], what: string): boolean {
  if (table.size !== oracle.size) return t.fail(`${what}: size ${table.size}, oracle ${oracle.size}`);
  for (const [id, value] of oracle) if (table.get(id) !== value || !table.has(id)) return t.fail(`${what}: id ${id} lost`);
  for (const id of probes) {
    if (table.get(id) !== oracle.get(id) || table.has(id) !== oracle.has(id)) return t.fail(`${what}: probe ${id} differs`);
  }
  const keys = [...oracle.keys()].sort((a, b) => a - b);
  if (JSON.stringify(table.keys()) !== JSON.stringify(keys)) return t.fail(`${what}: keys differ`);
  if (JSON.stringify(table.valuesInOrder()) !== JSON.stringify(keys.map((k) => oracle.get(k)))) return t.fail(`${what}: values differ`);
  return true;
}

t.test('a caller: rising ids, 256 in flight, answered out of order; a long call stays while ids move on', async (t) => {
  const table = new CallTable<string>();
  const oracle = new Map<number, string>();
  const random = prng(1);
  const inFlight: number[] = [];
  // Call 1 stays in flight for the whole run: every 4096th id after it collides with its slot.
  table.set(1, 'long');
  oracle.set(1, 'long');
  let ok = true;
  for (let id = 2; id < 60_000 && ok; id++) {
    table.set(id, `v${id}`);
    oracle.set(id, `v${id}`);
    inFlight.push(id);
    if (inFlight.length >= 256) {
      const [gone] = inFlight.splice(Math.floor(random() * inFlight.length), 1);
      if (table.delete(gone!) !== true || !oracle.delete(gone!)) ok = t.fail(`delete ${gone} failed`);
    }
    if (id % 997 === 0) ok = agree(t, table, oracle, [0, id + 1, id - 300, MAX_CALL_ID], `at id ${id}`);
  }
  t.ok(ok, 'agrees with the Map throughout');
  t.equal(table.get(1), 'long', 'the long call is still found after its slot was reused 14 times');
  t.equal(table.delete(1), true);
  t.equal(table.get(1), undefined);
});

t.test('daemon ranges: the same offset in 64 ranges lands in one slot at every size', async (t) => {
  const table = new CallTable<string>();
  const oracle = new Map<number, string>();
  const ids: number[] = [];
  for (let range = 1; range <= 64; range++) for (let n = 1; n <= 40; n++) ids.push(range * ID_RANGE_SIZE + n);
  for (const id of ids) {
    table.set(id, `v${id}`);
    oracle.set(id, `v${id}`);
  }
  t.ok(agree(t, table, oracle, [ID_RANGE_SIZE, 65 * ID_RANGE_SIZE + 1], 'all added'), 'all 2560 found');
  for (const id of ids.filter((_, i) => i % 3 === 0)) {
    t.equal(table.delete(id), true);
    oracle.delete(id);
  }
  t.ok(agree(t, table, oracle, ids.slice(0, 50), 'a third removed'), 'agrees after removals');
  t.equal(table.delete(ids[0]!), false, 'a second delete finds nothing');
});

t.test('ids a hostile peer may pick: 0, the largest, beyond 32 bits, not integers', async (t) => {
  const table = new CallTable<string>();
  const odd = [0, MAX_CALL_ID, MAX_CALL_ID + 1, 2 ** 32 + 16, 1.5, -1, 16];
  for (const id of odd) table.set(id, `v${id}`);
  t.equal(table.size, odd.length, 'each one is its own entry');
  for (const id of odd) t.equal(table.get(id), `v${id}`, `id ${id} found`);
  t.equal(table.get(2), undefined, 'no id aliases another (2^32 + 16 and 16 share a slot)');
  table.set(16, 'again');
  t.equal(table.size, odd.length, 'set on a present id replaces it');
  t.equal(table.get(16), 'again');
  for (const id of odd) t.equal(table.delete(id), true, `id ${id} deleted`);
  t.equal(table.size, 0);
  t.same(table.keys(), []);
});

t.test('growth stops at the cap; past it colliding ids go to the side and stay correct', async (t) => {
  const table = new CallTable<number>();
  const n = CALL_TABLE_MAX_SLOTS * 3;
  // Every id collides with another at the cap: ids 1..n with n = 3 × slots.
  for (let id = 1; id <= n; id++) table.set(id, id * 2);
  t.equal(table.size, n);
  let wrong = 0;
  for (let id = 1; id <= n; id++) if (table.get(id) !== id * 2) wrong++;
  t.equal(wrong, 0, 'every id found');
  for (let id = 1; id <= n; id += 2) table.delete(id);
  t.equal(table.size, n / 2);
  t.equal(table.get(1), undefined);
  t.equal(table.get(2), 4);
  t.equal(table.keys().length, n / 2);
  table.clear();
  t.equal(table.size, 0);
  t.equal(table.get(2), undefined, 'clear empties the side too');
  table.set(2, 7);
  t.equal(table.get(2), 7, 'usable after clear');
});

t.test('random operations against the Map, ids from a small space (collisions and reuse everywhere)', async (t) => {
  const random = prng(7);
  const table = new CallTable<string>();
  const oracle = new Map<number, string>();
  let ok = true;
  for (let i = 0; i < 50_000 && ok; i++) {
    const id = 1 + Math.floor(random() * 20_000) * (random() < 0.5 ? 1 : 4096);
    const op = random();
    if (op < 0.5) {
      table.set(id, `v${i}`);
      oracle.set(id, `v${i}`);
    } else if (op < 0.8) {
      if (table.delete(id) !== oracle.delete(id)) ok = t.fail(`delete ${id} disagrees`);
    } else if (table.get(id) !== oracle.get(id)) ok = t.fail(`get ${id} disagrees`);
    if (i % 5000 === 0) ok = ok && agree(t, table, oracle, [id, id + 1], `step ${i}`);
  }
  t.ok(ok && agree(t, table, oracle, [], 'end'), 'agrees with the Map');
});

t.test('a grown table goes back to its initial slots once found empty, never while a call is in it', async (t) => {
  const table = new CallTable<string>(10);
  const initial = table.capacity;
  for (let id = 1; id <= 3000; id++) table.set(id, `v${id}`);
  const grown = table.capacity;
  t.ok(grown > initial, `grown from ${initial} to ${grown} slots`);
  for (let id = 1; id < 3000; id++) table.delete(id);
  t.notOk(table.shrinkIfEmpty(), 'one call left: not shrunk');
  t.equal(table.capacity, grown, 'its slots stay');
  t.equal(table.get(3000), 'v3000', 'and the call is still there');
  table.delete(3000);
  // The table's own timer (10 ms here) finds it empty: polled, bounded, since no event says so.
  const deadline = performance.now() + 5000;
  while (table.capacity !== initial && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.equal(table.capacity, initial, 'its timer shrank it back once empty');
  // Still a working table, against a Map, through another growth.
  const oracle = new Map<number, string>();
  for (let id = 5000; id < 5600; id++) {
    table.set(id, `w${id}`);
    oracle.set(id, `w${id}`);
  }
  t.ok(agree(t, table, oracle, [1, 3000, 4999, 5600], 'after shrinking'), 'agrees with the oracle after shrinking and growing again');
  t.ok(table.capacity > initial, 'and grew again');
});
