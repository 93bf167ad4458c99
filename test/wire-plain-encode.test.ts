// The encoder for plain small items (lib/wire/plain-encode.ts) must write exactly the bytes cbor-x
// writes with the codec's options, or leave the value to cbor-x. Compared on generated values: every
// number boundary and random doubles, ASCII and non-ASCII text short and long, arrays and maps at
// every head size, holes, `__proto__` and integer-like keys, and what it must leave alone (byte
// strings, bigints, Maps, class instances, null-prototype objects, deep nesting, items larger than
// its slab). A positive control shows the plain path was taken; bodies handed out earlier are checked
// again at the end (the slab is never written twice).
import t from 'tap';
import { Encoder } from 'cbor-x/index-no-eval';
import { decodeItem, encodeItem } from '../lib/wire/codec.js';
import { decodeEnvelope, encodeEnvelopeChunks, encodePlainEnvelope, type Envelope } from '../lib/wire/envelope.js';
import { PLAIN_ENCODE_MAX_DEPTH, encodePlain, encodePlainFrame } from '../lib/wire/plain-encode.js';
import { FRAME_HEADER_BYTES } from '../lib/wire/frame-decoder.js';
import { prng } from './helpers.js';

const OPTIONS = { useRecords: false, mapsAsObjects: true, tagUint8Array: false, structuredClone: false, pack: false, bundleStrings: false, useTag259ForMaps: false } as const;
const encoder = new Encoder(OPTIONS);

const BOUNDARIES = [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1, 2 ** 53, 2 ** 64, Number.MAX_VALUE, Number.MIN_VALUE, Number.EPSILON];
const NUMBERS = [...BOUNDARIES, ...BOUNDARIES.map((n) => -n), ...BOUNDARIES.map((n) => n + 0.5), ...BOUNDARIES.map((n) => -n - 0.5), -0, NaN, Infinity, -Infinity, 1e300, 3.4028234663852886e38, 1.5, -(2 ** 31) - 1, -(2 ** 32) - 1, 0.1];
const STRINGS = ['', 'a', 'bb', 'tick', 'bulkhead', '__proto__', 'constructor', 'hasOwnProperty', '0', '12', '\u0000', '\u007f', 'x'.repeat(23), 'x'.repeat(24), 'y'.repeat(64), 'y'.repeat(65), 'z'.repeat(255), 'z'.repeat(256), 'w'.repeat(70_000), 'é', 'naïve', '日本', '😀', '\ud800', 'a'.repeat(100) + 'é', 'é' + 'a'.repeat(100), '\u0080'];

const SHORT_STRINGS = STRINGS.filter((s) => s.length < 300);

class Point {
  constructor(readonly x: number) {}
}

function randomValue(random: () => number, depth: number): unknown {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(random() * a.length)]!;
  const r = random();
  if (depth > 4 || r < 0.5 + depth * 0.1) {
    const leaf = random();
    if (leaf < 0.2) return pick(NUMBERS);
    if (leaf < 0.3) return Math.floor((random() - 0.5) * 2 ** (1 + Math.floor(random() * 40)));
    if (leaf < 0.35) return (random() - 0.5) * 10 ** Math.floor(random() * 20);
    if (leaf < 0.6) return random() < 0.002 ? pick(STRINGS) : pick(SHORT_STRINGS);
    if (leaf < 0.75) return pick([false, true, null, undefined]);
    if (leaf < 0.79) return Buffer.from([1, 2, 3]);
    if (leaf < 0.81) return new Uint8Array([4]);
    if (leaf < 0.83) return 5n;
    if (leaf < 0.85) return new Map([['a', 1]]);
    if (leaf < 0.87) return new Point(1);
    if (leaf < 0.89) return Object.assign(Object.create(null) as object, { a: 1 });
    if (leaf < 0.91) return new Date(0);
    return random() < 0.5 ? 'tick' : 42;
  }
  const n = random() < 0.1 ? pick([23, 24, 25]) : Math.floor(random() * 6);
  if (r < 0.72) {
    const array: unknown[] = Array.from({ length: n }, () => randomValue(random, depth + 1));
    if (random() < 0.05) array.length += 2; // holes
    return array;
  }
  const object: Record<string, unknown> = random() < 0.05 ? (JSON.parse('{"__proto__": 1}') as Record<string, unknown>) : {};
  for (let i = 0; i < n; i++) {
    const key = random() < 0.3 ? pick(['a', 'n', '1', '0', 'é', 'tags']) : pick(SHORT_STRINGS);
    // Defined, not assigned: an own `__proto__` key, as JSON.parse or a decoder makes one.
    Object.defineProperty(object, key, { value: randomValue(random, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return object;
}

t.test('random values: the plain encoder writes what cbor-x writes, or leaves the value to it', async (t) => {
  const random = prng(19);
  const held: [Buffer, Buffer][] = [];
  let plain = 0;
  let left = 0;
  let wrong = 0;
  for (let i = 0; i < 30_000; i++) {
    const value = randomValue(random, 0);
    const expected = Buffer.from(encoder.encode(value));
    const got = encodePlain(value);
    if (got === undefined) left++;
    else {
      plain++;
      if (!got.equals(expected) && wrong++ < 5) t.fail(`value ${JSON.stringify(value)}: ${got.toString('hex')} vs cbor-x ${expected.toString('hex')}`);
      if (i % 7 === 0) held.push([got, expected]);
    }
  }
  t.equal(wrong, 0, `no difference in ${plain} values encoded`);
  t.ok(plain > 12_000, `the plain path encoded ${plain} of them (positive control)`);
  t.ok(left > 3000, `and left ${left} to cbor-x`);
  t.ok(held.every(([got, expected]) => got.equals(expected)), `${held.length} bodies handed out earlier are unchanged after all later encodes`);
});

t.test('every number boundary, heads at every size', async (t) => {
  for (const n of NUMBERS) t.same([...encodePlain(n)!], [...encoder.encode(n)], `number ${Object.is(n, -0) ? '-0' : String(n)}`);
  for (const length of [0, 23, 24, 255, 256, 65535, 65536]) {
    // Up to 256 entries always fit; a larger one that does not fit the slab's free part is left to cbor-x.
    for (const value of [new Array<number>(length).fill(1), 'q'.repeat(length)]) {
      const got = encodePlain(value);
      if (length <= 256) t.not(got, undefined, `${typeof value} of ${length}: plain`);
      if (got !== undefined) t.ok(got.equals(encoder.encode(value)), `${typeof value} of ${length}: cbor-x's bytes`);
    }
  }
  const wide: Record<string, number> = {};
  for (let i = 0; i < 300; i++) wide[`k${i}`] = i;
  t.ok(encodePlain(wide)?.equals(encoder.encode(wide)), 'an object of 300 keys (cbor-x always writes a 2-byte map count)');
  const numericKeys = { b: 1, 2: 2, a: 3, 1: 4 };
  t.ok(encodePlain(numericKeys)?.equals(encoder.encode(numericKeys)), 'integer-like keys first, as for...in visits them');
});

t.test('what it leaves to cbor-x', async (t) => {
  const ownHasOwn = { hasOwnProperty: 'x', a: 1 };
  const deep: unknown[] = [];
  let cursor = deep;
  for (let i = 0; i < PLAIN_ENCODE_MAX_DEPTH + 1; i++) {
    const next: unknown[] = [];
    cursor.push(next);
    cursor = next;
  }
  const shallow: unknown[] = [];
  cursor = shallow;
  for (let i = 0; i < PLAIN_ENCODE_MAX_DEPTH - 1; i++) {
    const next: unknown[] = [];
    cursor.push(next);
    cursor = next;
  }
  t.ok(encodePlain(shallow)?.equals(encoder.encode(shallow)), `positive control: ${PLAIN_ENCODE_MAX_DEPTH} levels are plain`);
  const arrayAsObject = Object.assign([1, 2], { constructor: Object });
  for (const [what, value] of [['a byte string', { data: Buffer.from([1]) }], ['a bigint', [1n]], ['a Map', new Map()], ['a class instance', new Point(2)], ['a null-prototype object', Object.create(null) as object], ['non-ASCII text', 'é'], ['a lone surrogate', '\ud800'], ['an own hasOwnProperty', ownHasOwn], ['deeper nesting', deep], ['an array whose constructor is Object', arrayAsObject], ['a 70 000-character text', 'w'.repeat(70_000)], ['a function', () => 1]] as const) {
    t.equal(encodePlain(value), undefined, what);
  }
  t.ok(encodeItem(ownHasOwn).equals(encoder.encode(ownHasOwn)), 'encodeItem still is cbor-x');
});

t.test('envelopes: encodeEnvelopeChunks gives cbor-x bytes that decode back', async (t) => {
  const message = { name: 'bulkhead', n: 42, tags: ['a', 'bb', 'ccc'] };
  const envelopes: Envelope[] = [
    { kind: 'event', callId: 7, name: 'tick', payload: message },
    { kind: 'event', callId: 0, name: 'tick', payload: { text: 'é' } },
    { kind: 'reply', id: 3, result: message },
    { kind: 'reply', id: 4, result: { data: Buffer.from([1, 2]) } },
    { kind: 'call', id: 5, method: 'echo', params: message, meta: null },
  ];
  const wires = [[4, 7, 'tick', message], [4, 0, 'tick', { text: 'é' }], [2, 3, message], [2, 4, { data: Buffer.from([1, 2]) }], [1, 5, 'echo', message, null]];
  // Plain envelopes (0, 2, 4) come as whole frames, their length prefix in place; the rest as cbor-x's body alone.
  const plain = [true, false, true, false, true];
  for (let i = 0; i < envelopes.length; i++) {
    const { chunks, headerless, bodyLength } = encodeEnvelopeChunks(envelopes[i]!, true);
    t.equal(chunks.length, 1);
    t.equal(headerless === true, !plain[i], `${envelopes[i]!.kind} ${i}: ${plain[i] ? 'a whole frame' : 'a body for the writer to prefix'}`);
    const body = headerless === true ? chunks[0]! : chunks[0]!.subarray(FRAME_HEADER_BYTES);
    if (headerless !== true) t.equal(chunks[0]!.readUInt32BE(0), body.length, 'the prefix is the body\'s length');
    t.equal(bodyLength, body.length);
    t.ok(body.equals(encoder.encode(wires[i])), `${envelopes[i]!.kind} ${i}: cbor-x's bytes`);
    t.same(decodeEnvelope(body), decodeEnvelope(encoder.encode(wires[i])), 'and decodes the same');
    t.same(decodeItem(body), decodeItem(encoder.encode(wires[i])));
  }
  t.not(encodePlain(wires[0]), undefined, 'positive control: the bench event is plain');
});

t.test('encodePlainFrame: encodePlain\'s bytes behind their 4-byte length, in place; the slab is never written twice', async (t) => {
  const frames: Array<[Buffer, Buffer]> = [];
  // Enough items to cross several slabs (64 KiB each), of every size from empty to ~3 KB.
  for (let i = 0; i < 400; i++) {
    const value = [i, 'x'.repeat((i * 37) % 3000), { n: i, tags: ['a', 'bb'] }];
    const frame = encodePlainFrame(value)!;
    const body = encoder.encode(value);
    t.equal(frame.readUInt32BE(0), body.length, `item ${i}: prefix`);
    t.ok(frame.subarray(FRAME_HEADER_BYTES).equals(body), `item ${i}: cbor-x's bytes`);
    frames.push([frame, Buffer.from(frame)]);
  }
  t.ok(frames.every(([frame, copy]) => frame.equals(copy)), 'frames handed out earlier are unchanged');
  t.equal(encodePlainFrame([1n]), undefined, 'what encodePlain leaves to cbor-x, so does encodePlainFrame');
  t.equal(encodePlainFrame('w'.repeat(70_000)), undefined, 'an item larger than the slab');
});

t.test('envelope frames (call, reply, event, item): the bytes of their wire array, taken exactly when it is', async (t) => {
  // encodePlainEnvelope writes these four kinds without building the array (round eleven): on random
  // envelopes its frame must be cbor-x's bytes of the array, and it must leave to cbor-x exactly what
  // encodePlainFrame leaves of that array.
  const random = prng(1911);
  const ids = [1, 23, 24, 255, 256, 65535, 65536, 2 ** 20, 2 ** 32 - 1];
  const pick = <T>(a: readonly T[]): T => a[Math.floor(random() * a.length)]!;
  let plain = 0;
  let left = 0;
  const kept: Array<[Buffer, Buffer]> = [];
  for (let i = 0; i < 4000; i++) {
    const id = random() < 0.5 ? pick(ids) : 1 + Math.floor(random() * (2 ** 32 - 1));
    const name = random() < 0.9 ? pick(['echo', 'tick', 'a', 'x'.repeat(30)]) : pick(STRINGS);
    const value = randomValue(random, 1);
    const kind = i % 4;
    const meta = random() < 0.7 ? null : { timeoutMs: 5, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
    const [envelope, wire]: [Envelope, unknown[]] = kind === 0 ? [{ kind: 'call', id, method: name, params: value, meta }, [1, id, name, value, meta]]
      : kind === 1 ? [{ kind: 'reply', id, result: value }, [2, id, value]]
        : kind === 2 ? [{ kind: 'event', callId: random() < 0.3 ? 0 : id, name, payload: value }, [4, 0, name, value]]
          : [{ kind: 'item', id, value }, [9, id, value]];
    if (envelope.kind === 'event') wire[1] = envelope.callId;
    const frame = encodePlainEnvelope(envelope);
    const generic = encodePlainFrame(wire);
    t.equal(frame === undefined, generic === undefined, `envelope ${i} (${envelope.kind}): taken exactly when its array is`);
    if (frame === undefined) {
      left++;
      continue;
    }
    plain++;
    const body = encoder.encode(wire);
    if (frame.readUInt32BE(0) !== body.length || !frame.subarray(FRAME_HEADER_BYTES).equals(body)) t.fail(`envelope ${i} (${envelope.kind}): cbor-x's bytes`);
    if (i % 10 === 0) kept.push([frame, Buffer.from(frame)]);
  }
  t.ok(plain > 1000 && left > 100, `both paths taken (${plain} plain, ${left} left to cbor-x)`);
  t.ok(kept.every(([frame, copy]) => frame.equals(copy)), 'frames handed out earlier are unchanged');
});
