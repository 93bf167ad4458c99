// The decoder for plain small items (lib/wire/plain-decode.ts) must return exactly what cbor-x returns
// for the same bytes, or leave the item to cbor-x. Compared on generated items: canonical and
// non-canonical heads, every number boundary, ASCII and non-ASCII text, `__proto__` and duplicate
// keys, nesting, and 5000 distinct short strings (the string cache's collisions). A positive control
// shows the plain path was taken where it should be.
import t from 'tap';
import { Decoder, Encoder } from 'cbor-x/index-no-eval';
import { checkItem, decodeItem } from '../lib/wire/codec.js';
import { NOT_PLAIN, PLAIN_MAX_BYTES, closePlain, decodePlain, nextPlainElement, openPlainArray } from '../lib/wire/plain-decode.js';
import { prng } from './helpers.js';

const OPTIONS = { useRecords: false, mapsAsObjects: true, tagUint8Array: false, structuredClone: false, pack: false, bundleStrings: false, useTag259ForMaps: false } as const;
const cborx = new Decoder(OPTIONS);
const encoder = new Encoder(OPTIONS);

/** Deep equality that tells -0 from 0, NaN from itself, key order, prototypes and array holes. */
function same(a: unknown, b: unknown): boolean {
  if (typeof a !== typeof b) return false;
  if (typeof a === 'number') return Object.is(a, b);
  if (typeof a !== 'object' || a === null || b === null) return a === b;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const ka = Reflect.ownKeys(a);
  const kb = Reflect.ownKeys(b as object);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    if (ka[i] !== kb[i]) return false;
    if (!same((a as Record<string | symbol, unknown>)[ka[i]!], (b as Record<string | symbol, unknown>)[kb[i]!])) return false;
  }
  return true;
}

/** A CBOR head of major type `major` for `arg`, in the shortest form or (nonCanonical) one size longer. */
function head(major: number, arg: number, nonCanonical = false): number[] {
  const m = major << 5;
  const size = arg < 24 && !nonCanonical ? 0 : arg < 0x100 && !(nonCanonical && arg >= 24) ? 1 : arg < 0x10000 ? 2 : arg < 2 ** 32 ? 4 : 8;
  if (size === 0) return [m | arg];
  const out = [m | (24 + Math.log2(size))];
  for (let i = size - 1; i >= 0; i--) out.push(Math.floor(arg / 2 ** (8 * i)) % 256);
  return out;
}

const NUMBERS = [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53, -1, -24, -25, -256, -257, -65536, -65537, -(2 ** 32), -(2 ** 32) - 1, 0.5, -0, NaN, Infinity, -Infinity, 1e300, 3.4028234663852886e38, 1.5];
const STRINGS = ['', 'a', 'bb', 'tick', 'bulkhead', '__proto__', 'constructor', 'toString', '0', '12', 'x'.repeat(24), 'y'.repeat(25), 'z'.repeat(300), 'é', 'naïve', '日本', '😀', '\u0000', '\u007f'];

/** Raw bytes of a random item, built by hand so that non-canonical heads, float16/32, duplicate keys and indefinite lengths occur. */
function randomItem(random: () => number, depth: number): number[] {
  const r = random();
  const pick = <T>(a: readonly T[]): T => a[Math.floor(random() * a.length)]!;
  if (depth > 3 || r < 0.45) {
    const leaf = random();
    if (leaf < 0.25) return [...encoder.encode(pick(NUMBERS))];
    if (leaf < 0.35) {
      const n = Math.floor(random() * 70000);
      return head(random() < 0.5 ? 0 : 1, n, random() < 0.3);
    }
    if (leaf < 0.6) {
      const s = pick(STRINGS);
      const bytes = [...Buffer.from(s, 'utf8')];
      return [...head(3, bytes.length, random() < 0.2), ...bytes];
    }
    if (leaf < 0.7) return [pick([0xf4, 0xf5, 0xf6, 0xf7])];
    if (leaf < 0.75) return [0xf9, 0x3c, 0x00]; // float16 1.0
    if (leaf < 0.8) return [0xfa, 0x3f, 0xc0, 0x00, 0x00]; // float32 1.5
    if (leaf < 0.85) return [0x1b, 0, 0, 0, 0, 0, 0, 0, 5]; // an 8-byte head: a bigint in cbor-x
    if (leaf < 0.9) return [0xc2, 0x41, 0x07]; // a bignum
    return [0x43, 1, 2, 3]; // a byte string
  }
  const n = Math.floor(random() * 5);
  if (r < 0.7) {
    const indefinite = random() < 0.1;
    const items = Array.from({ length: n }, () => randomItem(random, depth + 1)).flat();
    return indefinite ? [0x9f, ...items, 0xff] : [...head(4, n, random() < 0.2), ...items];
  }
  const entries: number[] = [];
  for (let i = 0; i < n; i++) {
    const key = random() < 0.3 ? pick(['a', 'a', '__proto__', 'n', 'é', '1']) : pick(STRINGS);
    const bytes = [...Buffer.from(key, 'utf8')];
    entries.push(...head(3, bytes.length, random() < 0.2), ...bytes, ...randomItem(random, depth + 1));
  }
  return [...head(5, n, random() < 0.2), ...entries];
}

t.test('random items: the plain decoder returns what cbor-x returns, or leaves the item to it', async (t) => {
  const random = prng(42);
  let plain = 0;
  let left = 0;
  let checked = 0;
  let wrong = 0;
  for (let i = 0; i < 20_000; i++) {
    const body = Buffer.from(randomItem(random, 0));
    if (checkItem(body) !== undefined) continue; // scanItem refuses it: never decoded
    checked++;
    const expected = cborx.decode(body);
    const got = decodePlain(body);
    if (got === NOT_PLAIN) left++;
    else {
      plain++;
      if (!same(got, expected) && wrong++ < 5) t.fail(`item ${body.toString('hex')}: ${String(got)} vs cbor-x ${String(expected)}`);
    }
    if (!same(decodeItem(body), expected) && wrong++ < 5) t.fail(`decodeItem differs for ${body.toString('hex')}`);
  }
  t.equal(wrong, 0, `no difference in ${checked} accepted items`);
  t.ok(plain > 5000, `the plain path decoded ${plain} of them (positive control)`);
  t.ok(left > 1000, `and left ${left} to cbor-x`);
});

t.test('the bench frames and typical envelopes take the plain path', async (t) => {
  const message = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };
  for (const value of [[1, 7, 'echo', message, null], [2, 7, message], [4, 0, 'tick', message], [3, 9, { code: 'ERR_X', message: 'no', data: { a: 1.5 } }]]) {
    const body = encoder.encode(value);
    const got = decodePlain(body);
    t.not(got, NOT_PLAIN, `plain path for ${JSON.stringify(value)}`);
    t.ok(same(got, cborx.decode(body)), 'same as cbor-x');
  }
  t.equal(decodePlain(encoder.encode({ a: 'é' })), NOT_PLAIN, 'non-ASCII text goes to cbor-x');
  t.equal(decodePlain(encoder.encode({ a: 2n ** 64n })), NOT_PLAIN, 'bignums go to cbor-x');
  t.equal(decodePlain(encoder.encode([1, Buffer.from([1])])), NOT_PLAIN, 'byte strings go to cbor-x');
  const proto = decodeItem(Buffer.from([0xa1, 0x69, ...Buffer.from('__proto__'), 0xa1, 0x61, 0x78, 0x01])) as Record<string, unknown>;
  t.equal(Object.getPrototypeOf(proto), Object.prototype, 'a __proto__ key sets no prototype');
  t.same(Object.keys(proto), ['__proto_'], 'it is renamed as cbor-x renames it');
});

t.test('5000 distinct short strings as keys and values, twice: the cache never returns another string', async (t) => {
  const words = Array.from({ length: 5000 }, (_, i) => `k${(i * 7919).toString(36)}${'x'.repeat(i % 20)}`);
  let wrong = 0;
  for (let pass = 0; pass < 2; pass++) {
    for (let i = 0; i < words.length; i += 50) {
      const value: Record<string, string> = {};
      for (const w of words.slice(i, i + 50)) value[w] = words[(words.indexOf(w) + 1) % words.length]!;
      const body = encoder.encode(value);
      const got = decodePlain(body);
      if (!same(got, cborx.decode(body))) wrong++;
    }
  }
  t.equal(wrong, 0);
});

t.test('arrays taken element by element (openPlainArray): decodePlain\'s elements, or not plain exactly when it is not', async (t) => {
  const random = prng(7);
  let taken = 0;
  let wrong = 0;
  for (let i = 0; i < 20_000; i++) {
    // Random elements (and cut or extended bodies) inside an array head of 0 to 9 elements.
    const count = i % 10;
    const parts = Array.from({ length: count }, () => Buffer.from(randomItem(random, 1)));
    let body = Buffer.concat([Buffer.from([0x80 | count]), ...parts]);
    if (i % 7 === 3) body = body.subarray(0, Math.max(1, body.length - 1));
    if (i % 11 === 5) body = Buffer.concat([body, Buffer.from([0])]);
    const whole = decodePlain(body);
    const n = openPlainArray(body);
    const elements = Array.from({ length: Math.max(n, 0) }, () => nextPlainElement());
    const plain = n >= 0 && closePlain();
    if (whole === NOT_PLAIN) {
      if (plain) wrong++;
      continue;
    }
    taken++;
    if (!plain || n !== (whole as unknown[]).length || !same(elements, whole)) wrong++;
  }
  t.equal(wrong, 0, 'no difference');
  t.ok(taken > 3000, `${taken} bodies decoded element by element (positive control)`);
  t.equal(openPlainArray(Buffer.from([0x98, 24, ...Array<number>(24).fill(0)])), -1, 'an array head with a count byte is left to decodePlain');
});

t.test('strings of one length at one offset, differing in any byte: the offset\'s guess never returns the last one', async (t) => {
  // The decoder first tries the cache slot that the same offset and length took last time (plain-decode.ts, placeSlots):
  // every body here puts a key and a value of the same lengths at the same offsets, so that guess is tried each time.
  const random = prng(13);
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const word = (n: number) => Array.from({ length: n }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
  let wrong = 0;
  let checked = 0;
  for (let length = 1; length <= 24; length++) {
    const base = word(length);
    for (let i = 0; i < 200; i++) {
      // Half the time the same string again (a hit), else one byte changed, or all of them.
      const key = i % 2 === 0 ? base : i % 4 === 1 ? base.slice(0, i % length) + (base[i % length] === 'z' ? 'y' : 'z') + base.slice((i % length) + 1) : word(length);
      const value = word(length);
      const body = encoder.encode([2, 7, { [key]: value }]);
      const got = decodePlain(body);
      checked++;
      const map = got === NOT_PLAIN ? undefined : (got as [number, number, Record<string, string>])[2];
      if (map === undefined || Object.keys(map)[0] !== key || map[key] !== value) wrong++;
    }
  }
  t.equal(wrong, 0, `every key and value as sent (${checked} bodies)`);
});

t.test('only a whole body up to PLAIN_MAX_BYTES is plain: trailing bytes and large bodies go to cbor-x', async (t) => {
  const small = encoder.encode({ a: 1, b: 'two' });
  t.not(decodePlain(small), NOT_PLAIN, 'positive control: the item alone is plain');
  t.equal(decodePlain(Buffer.concat([small, Buffer.from([0x01])])), NOT_PLAIN, 'a byte past the item: not plain');
  t.equal(decodePlain(small.subarray(0, 0)), NOT_PLAIN, 'an empty body: not plain');
  const rows = (n: number) => [4, 7, 'rows', Array.from({ length: n }, (_, i) => ({ id: i, name: `row-${String(i)}` }))];
  let n = 1;
  while (encoder.encode(rows(n + 1)).length <= PLAIN_MAX_BYTES) n++;
  const atCap = encoder.encode(rows(n));
  const overCap = encoder.encode(rows(n + 1));
  t.ok(same(decodePlain(atCap), cborx.decode(atCap)), `${String(atCap.length)} B (≤ the cap): plain, same as cbor-x`);
  t.equal(decodePlain(overCap), NOT_PLAIN, `${String(overCap.length)} B (over the cap): left to cbor-x`);
  t.ok(same(decodeItem(overCap), cborx.decode(overCap)), 'and decodeItem still returns what cbor-x does');
});

// The plain decoder runs without the scan first (codec.ts): it must accept nothing the scan refuses, and read no byte past the body.
t.test('standing in for the scan: whatever the plain decoder accepts, the scan accepts, with cbor-x\'s value', async (t) => {
  const random = prng(1919);
  let accepted = 0;
  let refusedByScan = 0;
  let wrong = 0;
  const check = (body: Buffer, what: string): void => {
    const got = decodePlain(body);
    if (checkItem(body) !== undefined) {
      refusedByScan++;
      if (got !== NOT_PLAIN && wrong++ < 5) t.fail(`${what}: plain accepted ${body.toString('hex')}, which the scan refuses (${checkItem(body)!})`);
      return;
    }
    if (got === NOT_PLAIN) return;
    accepted++;
    if (!same(got, cborx.decode(body)) && wrong++ < 5) t.fail(`${what}: ${body.toString('hex')} differs from cbor-x`);
  };
  for (let i = 0; i < 4000; i++) {
    const item = Buffer.from(randomItem(random, 0));
    check(item, 'item');
    // Every truncation, a byte flipped, and bytes added after it.
    for (let cut = 0; cut < item.length; cut++) check(item.subarray(0, cut), 'truncated');
    const flipped = Buffer.from(item);
    flipped[Math.floor(random() * item.length)] = Math.floor(random() * 256);
    check(flipped, 'flipped');
    check(Buffer.concat([item, Buffer.from([Math.floor(random() * 256)])]), 'trailing');
  }
  // Random bytes: almost all refused somewhere.
  for (let i = 0; i < 20_000; i++) check(Buffer.from(Array.from({ length: 1 + Math.floor(random() * 24) }, () => Math.floor(random() * 256))), 'random bytes');
  t.equal(wrong, 0, `no plain acceptance of what the scan refuses (${refusedByScan} refused bodies), no value that differs`);
  t.ok(accepted > 2000, `positive control: ${accepted} bodies took the plain path`);
  t.ok(refusedByScan > 10_000, `and ${refusedByScan} bodies the scan refuses were tried`);
});

t.test('hostile bodies the scan refuses are refused by the plain decoder too, with the scan\'s error from decodeItem', async (t) => {
  const code = (body: Buffer): string | undefined => {
    try {
      decodeItem(body);
      return undefined;
    } catch (err) {
      return (err as { code?: string }).code;
    }
  };
  const deep = (levels: number) => Buffer.from([...Array<number>(levels).fill(0x81), 0x01]);
  // MAX_FRAME_DEPTH (66) open arrays are allowed, one more is not.
  t.not(decodePlain(deep(66)), NOT_PLAIN, 'positive control: 66 levels are plain');
  t.equal(decodePlain(deep(67)), NOT_PLAIN, '67 levels: not plain');
  t.equal(code(deep(67)), 'ERR_BAD_FRAME', 'and decodeItem refuses them');
  // The frame object limit: 1024 + 1 per 8 bytes. 2000 empty arrays in a 2003-byte body is over it (1024 + 250).
  const many = Buffer.from([0x99, 0x07, 0xd0, ...Array<number>(2000).fill(0x80)]);
  t.equal(decodePlain(many), NOT_PLAIN, '2001 arrays in 2003 bytes: over the object limit, not plain');
  t.equal(code(many), 'ERR_BAD_FRAME', 'and decodeItem refuses it');
  const fewer = Buffer.from([0x99, 0x04, 0x4c, ...Array<number>(1100).fill(0x80)]);
  t.not(decodePlain(fewer), NOT_PLAIN, 'positive control: 1101 arrays in 1103 bytes are within it (1024 + 137): plain');
  t.equal(checkItem(fewer), undefined, 'and the scan agrees');
  // A long array or map declared in a few bytes: refused before anything is allocated or read past the end.
  for (const [what, bytes] of [['an array of 2^32-1 items in 5 bytes', [0x9a, 0xff, 0xff, 0xff, 0xff]], ['a map of 1000 entries in 3 bytes', [0xb9, 0x03, 0xe8]], ['text of 200 bytes in 2', [0x78, 0xc8]], ['a float64 cut short', [0xfb, 0x3f, 0xf0]], ['a 4-byte head cut short', [0x1a, 0x01]], ['an integer map key', [0xa1, 0x01, 0x02]], ['a byte-string map key', [0xa1, 0x41, 0x61, 0x02]], ['a key cut short', [0xa1, 0x78]], ['a map with a key and no value', [0xa1, 0x61, 0x61]]] as const) {
    const body = Buffer.from(bytes);
    t.equal(decodePlain(body), NOT_PLAIN, `${what}: not plain`);
    t.equal(code(body), 'ERR_BAD_FRAME', `${what}: decodeItem refuses it`);
  }
  // Stale bytes after the body's end are never read: the body is a view that stops short of them.
  const backing = Buffer.from([0x82, 0x01, 0x02, 0x03]);
  t.equal(decodePlain(backing.subarray(0, 2)), NOT_PLAIN, 'an array of 2 whose second item lies past the view: not plain');
});
