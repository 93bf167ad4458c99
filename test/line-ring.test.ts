// LineRing (lib/util/line-ring.ts), in memory: the lines of a byte stream whatever the read boundaries (multi-byte
// characters and long lines straddling reads), long lines cut at a character boundary and marked, the tail's bound
// and order, and reads into a buffer that is overwritten as soon as push() returns (as the broker's shared buffer is).
import t from 'tap';
import { LineRing } from '../lib/util/line-ring.js';

/** What the lines of `bytes` must be: split at "\n", a last unterminated line too, each cut to `max` bytes without splitting a character. */
function expectedLines(bytes: Buffer, max: number): string[] {
  const out: string[] = [];
  let from = 0;
  for (;;) {
    const nl = bytes.indexOf(10, from);
    const to = nl === -1 ? bytes.length : nl;
    if (nl !== -1 || to > from) {
      if (to - from <= max) out.push(bytes.toString('utf8', from, to));
      else {
        let cut = from + max;
        while (cut > from && (bytes[cut]! & 0xc0) === 0x80) cut--;
        out.push(`${bytes.toString('utf8', from, cut)}…`);
      }
    }
    if (nl === -1) return out;
    from = nl + 1;
  }
}

/** Feeds `bytes` in reads of the given sizes, each copied into one scratch buffer that is scribbled over after push(). */
function feed(ring: LineRing, bytes: Buffer, sizes: () => number): void {
  const scratch = Buffer.alloc(64 * 1024);
  for (let at = 0; at < bytes.length;) {
    const n = Math.min(sizes(), bytes.length - at, scratch.length);
    bytes.copy(scratch, 0, at, at + n);
    ring.push(scratch.subarray(0, n));
    scratch.fill(0x0a); // the next read overwrites it: nothing may still point into it
    at += n;
  }
  ring.end();
}

/** A small deterministic PRNG (mulberry32), so a failure names its seed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

t.test('every read boundary inside multi-byte characters and lines gives the same lines', async (t) => {
  const text = 'é✓😀 a\nsecond line é✓😀é✓😀\n\nlast without newline 😀';
  const bytes = Buffer.from(text);
  const want = expectedLines(bytes, 4096);
  t.same(want, ['é✓😀 a', 'second line é✓😀é✓😀', '', 'last without newline 😀'], 'the reference splits as expected');
  for (let size = 1; size <= bytes.length; size++) {
    const seen: string[] = [];
    feed(new LineRing(50, 4096, (line) => seen.push(line)), bytes, () => size);
    if (JSON.stringify(seen) !== JSON.stringify(want)) t.fail(`reads of ${String(size)} bytes: ${JSON.stringify(seen)}`);
  }
  t.pass(`reads of 1 to ${String(bytes.length)} bytes all gave the ${String(want.length)} lines`);
});

t.test('long lines are cut at the bound, never inside a character, and marked; the rest up to the newline is dropped', async (t) => {
  const max = 10;
  const cases: Array<[string, string]> = [
    ['0123456789', '0123456789'], // exactly the bound: kept whole
    ['0123456789A', '0123456789…'],
    ['01234567é', '01234567é'], // é is 2 bytes: 10 in all, kept whole
    ['012345678é', '012345678…'], // 11 bytes: cut before é, not inside it
    ['012345678éxyz', '012345678…'],
    ['01234567😀zz', '01234567…'],
    ['😀😀😀😀', '😀😀…'],
  ];
  for (const [line, want] of cases) {
    for (const size of [1, 3, 7, 64]) {
      const seen: string[] = [];
      const bytes = Buffer.from(`${line}\nnext\n`);
      feed(new LineRing(5, max, (l) => seen.push(l)), bytes, () => size);
      t.same(seen, [want, 'next'], `${JSON.stringify(line)} in reads of ${String(size)}`);
    }
  }
  const seen: string[] = [];
  feed(new LineRing(5, 4096, (l) => seen.push(l)), Buffer.from(`${'H'.repeat(8 * 1024 * 1024)}\nafter\n`), () => 65536);
  t.same(seen.map((l) => l.length), [4097, 5], 'an 8 MiB line arrives as its first 4096 bytes and "…"; the next line is whole');
});

t.test('random streams in random reads match the reference', async (t) => {
  const pieces = ['a', 'xyz', 'é', '✓', '😀', '\n', '\n', ' ', '\udc00'];
  for (let seed = 1; seed <= 200; seed++) {
    const rnd = random(seed);
    const max = 1 + Math.floor(rnd() * 40);
    let text = '';
    const length = Math.floor(rnd() * 400);
    for (let i = 0; i < length; i++) text += pieces[Math.floor(rnd() * pieces.length)]!;
    const bytes = Buffer.from(text);
    const seen: string[] = [];
    const ring = new LineRing(7, max, (l) => seen.push(l));
    feed(ring, bytes, () => 1 + Math.floor(rnd() * 50));
    const want = expectedLines(bytes, max);
    if (JSON.stringify(seen) !== JSON.stringify(want)) {
      t.fail(`seed ${String(seed)} (max ${String(max)}): ${JSON.stringify(seen)} ≠ ${JSON.stringify(want)}`);
      return;
    }
    if (JSON.stringify(ring.tail()) !== JSON.stringify(want.slice(-7))) {
      t.fail(`seed ${String(seed)}: tail ${JSON.stringify(ring.tail())} ≠ the last 7 lines`);
      return;
    }
  }
  t.pass('200 seeds: every line and the tail as the reference says');
});

t.test('the tail keeps the last lines, oldest first, and at most maxLines', async (t) => {
  const ring = new LineRing(3, 100);
  t.same(ring.tail(), [], 'empty at first');
  ring.push(Buffer.from('one\ntwo\n'));
  t.same(ring.tail(), ['one', 'two']);
  ring.push(Buffer.from('three\nfour\nfive'));
  t.same(ring.tail(), ['two', 'three', 'four'], 'the unterminated line is not kept before end()');
  t.same(ring.tail(2), ['three', 'four'], 'tail(count) gives the last count');
  ring.end();
  t.same(ring.tail(), ['three', 'four', 'five'], 'end() flushes it');
  ring.end();
  t.same(ring.tail(), ['three', 'four', 'five'], 'a second end() adds nothing');
});
