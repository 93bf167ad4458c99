/**
 * releaseBytes end to end, with a real helper: a client gives back the byte strings of results it is
 * done with, a handler gives back its params' bytes, and whatever either side keeps stays intact
 * however many later messages reuse released memory. Both ends read over fd 3 (a socket), the path
 * whose bodies are pooled (lib/wire/body-pool.ts).
 */
import t from 'tap';
import { Broker, releaseBytes } from 'bulkhead';
import { FIXTURES } from './helpers.js';

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

t.test('results released by the caller are reused; kept ones never change', async (t) => {
  const broker = new Broker({ root: FIXTURES });
  t.teardown(() => broker.close());
  broker.register({ name: 'lent', entry: './lent-service.js', protocol: 'com.test.lent' });
  const lent = broker.connect('lent');
  const kept: Array<{ data: Uint8Array; seed: number }> = [];
  const released: Uint8Array[] = [];
  for (const size of [65_536, 300_000]) {
    for (let seed = 1; seed <= 40; seed++) {
      const r = (await lent.call('fill', { size, seed })) as { data: Uint8Array; seed: number };
      t.equal(r.data.length, size);
      if (seed % 4 === 0) {
        kept.push(r);
        continue;
      }
      if (!releaseBytes(r.data)) t.fail(`the result of fill ${size}/${seed} was not taken back`);
      released.push(r.data);
    }
  }
  let changed = 0;
  for (const r of kept) if (Buffer.compare(Buffer.from(r.data), pattern(r.data.length, r.seed)) !== 0) changed++;
  t.equal(changed, 0, `all ${kept.length} kept results hold their own bytes after every later call`);
  t.equal(released.filter((d) => d.length !== 0).length, 0, 'every released result reads as empty');
  t.equal(releaseBytes(kept[0]!.data), true, 'a kept result can still be released later');
  t.equal(releaseBytes(pattern(100_000, 1)), false, 'a buffer of the caller\'s own is not taken');
});

t.test('a handler releases its params\' bytes; the caller\'s own buffer is untouched', async (t) => {
  const broker = new Broker({ root: FIXTURES });
  t.teardown(() => broker.close());
  broker.register({ name: 'lent', entry: './lent-service.js', protocol: 'com.test.lent' });
  const lent = broker.connect('lent');
  for (let seed = 1; seed <= 20; seed++) {
    const data = pattern(200_000, seed);
    const r = (await lent.call('digest', { data, seed })) as { intact: boolean; released: boolean; emptyAfter: boolean };
    t.same(r, { intact: true, released: true, emptyAfter: true }, `call ${seed}: the helper got the bytes intact and gave them back`);
    t.same(data, pattern(200_000, seed), 'the caller\'s buffer is its own, never released');
  }
  // A small message is not pooled: the helper's release is refused and its bytes stay.
  const small = (await lent.call('digest', { data: pattern(1000, 3), seed: 3 })) as { intact: boolean; released: boolean; emptyAfter: boolean };
  t.same(small, { intact: true, released: false, emptyAfter: false });
});
