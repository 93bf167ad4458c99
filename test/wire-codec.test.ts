/**
 * The safe codec: round trips of plain data, and hostile CBOR built by hand
 * (not by cbor-x): prototype keys, declared lengths far past the frame, deep
 * nesting, too many arrays/maps/byte strings for the body's size, tags,
 * non-text keys, invalid UTF-8, trailing bytes, and a seeded mutation fuzz
 * over valid envelopes.
 */
import t from 'tap';
import { BulkheadError } from '../lib/errors.js';
import { BYTES_PER_OBJECT, FRAME_OBJECT_ALLOWANCE, MAX_BIGNUM_BYTES, MAX_DEPTH, MAX_FRAME_DEPTH, decodeItem, describeNonPlain, encodeItem, maxFrameObjects } from '../lib/wire/codec.js';
import { decodeEnvelope, encodeEnvelope, type Envelope } from '../lib/wire/envelope.js';
import { expectCode, prng } from './helpers.js';


// ---- A tiny hand-written CBOR writer, so hostile items need no encoder. ----

/** An initial byte plus argument, in preferred (shortest) form. */
function head(major: number, n: number): Buffer {
  const m = major << 5;
  if (n < 24) return Buffer.from([m | n]);
  if (n < 0x100) return Buffer.from([m | 24, n]);
  if (n < 0x10000) return Buffer.from([m | 25, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = m | 26;
  b.writeUInt32BE(n, 1);
  return b;
}
const cat = (...parts: Buffer[]): Buffer => Buffer.concat(parts);
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const uint = (n: number): Buffer => head(0, n);
const text = (s: string): Buffer => cat(head(3, Buffer.byteLength(s)), Buffer.from(s, 'utf8'));
const bytes = (b: Buffer): Buffer => cat(head(2, b.length), b);
const arr = (...items: Buffer[]): Buffer => cat(head(4, items.length), ...items);
const map = (...pairs: Array<[Buffer, Buffer]>): Buffer => cat(head(5, pairs.length), ...pairs.flat());
const tag = (n: number, item: Buffer): Buffer => cat(head(6, n), item);
const TRUE = hex('f5');
const NULL = hex('f6');
/** This process's CPU time so far, in ms (user + system): what a bound on work measures; wall-clock time also counts the time the machine ran others. */
const cpuMs = (): number => { const { user, system } = process.cpuUsage(); return (user + system) / 1000; };


/** Own property names of the built-in prototypes, to prove they never change. */
function prototypeSnapshot(): string {
  return [Object.prototype, Array.prototype, Function.prototype, String.prototype]
    .map((p) => Object.getOwnPropertyNames(p).sort().join(','))
    .join('|');
}

t.test('plain data round-trips', async (t) => {
  const values: unknown[] = [
    0, 1, 23, 24, 255, 256, 65535, 65536, 0xffffffff, 2 ** 32, Number.MAX_SAFE_INTEGER, -1, -24, -25, -(2 ** 32), -Number.MAX_SAFE_INTEGER,
    1.5, -0.25, 1e300, Number.MIN_VALUE, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY,
    true, false, null, undefined,
    '', 'hi', 'é€😀', 'x'.repeat(100_000),
    [], {}, [1, 'a', null, undefined, [[]]],
    { a: 1, nested: { b: [true, { c: 'd' }] }, '': 'empty key', 'key with spaces': 0, constructor: 'own', toString: 'own' },
    { buf: Buffer.from([0, 1, 2, 255]), empty: Buffer.alloc(0), big: Buffer.alloc(70_000, 9) },
    5n, -5n, 2n ** 64n - 1n, -(2n ** 64n), 2n ** 70n, -(2n ** 70n), (1n << 512n) - 1n, -(1n << 512n),
  ];
  for (const v of values) {
    t.same(decodeItem(encodeItem(v)), v, `round trip of ${typeof v === 'string' ? `string(${v.length})` : typeof v === 'bigint' ? `${v}n`.slice(0, 24) : JSON.stringify(v)?.slice(0, 60)}`);
  }
  const nan = decodeItem(encodeItem(Number.NaN));
  t.ok(Number.isNaN(nan), 'NaN');
});

t.test('what the decoded JS values are', async (t) => {
  const buf = decodeItem(encodeItem({ b: new Uint8Array([1, 2, 3]) })) as { b: unknown };
  t.ok(Buffer.isBuffer(buf.b), 'a byte string decodes to a Buffer, whatever was sent');
  t.same([...(buf.b as Buffer)], [1, 2, 3]);
  t.ok(Object.is(decodeItem(encodeItem(-0)), 0), '-0 arrives as 0');
  t.equal(decodeItem(hex('1b 0000000000000001')), 1n, 'an 8-byte integer head always gives a bigint');
  t.equal(decodeItem(hex('3b 0000000000000001')), -2n);
  t.equal(decodeItem(hex('1a 00000001')), 1, 'a 4-byte head gives a number');
  t.equal(decodeItem(hex('18 01')), 1, 'non-preferred widths are accepted');
  t.equal(decodeItem(hex('f9 3e00')), 1.5, 'half-precision float');
  t.equal(decodeItem(hex('fa 3fc00000')), 1.5, 'single-precision float');
  t.same(decodeItem(hex('9f 01 02 ff')), [1, 2], 'indefinite-length array');
  t.same(decodeItem(hex('bf 61 61 01 ff')), { a: 1 }, 'indefinite-length map');
  t.same(decodeItem(hex('a2 61 61 01 61 61 02')), { a: 2 }, 'duplicate keys: the last one wins');
  t.same(decodeItem(tag(2, bytes(hex('01 00')))), 256n, 'tag 2 bignum');
  t.same(decodeItem(tag(3, bytes(hex('01 00')))), -257n, 'tag 3 bignum');
  t.equal(decodeItem(encodeItem(2 ** 53)), 2 ** 53);
  t.same(decodeItem(encodeItem({ a: undefined })), { a: undefined }, 'undefined survives as a value');
});

t.test('__proto__, constructor and prototype keys never change a prototype', async (t) => {
  const before = prototypeSnapshot();
  const evil = map([text('polluted'), TRUE]);
  const hostile = [
    map([text('__proto__'), evil]),
    map([text('constructor'), map([text('prototype'), evil])]),
    map([text('prototype'), evil]),
    arr(arr(arr(map([text('a'), map([text('b'), map([text('__proto__'), evil])])])))),
    arr(map([text('__proto__'), arr(evil)])),
    map([text('__proto__'), text('not an object')]),
    cat(hex('bf'), text('__proto__'), evil, hex('ff')),
    map([text('__proto__'), evil], [text('__proto__'), evil]),
    map([text('__proto__'), uint(1)], [text('__proto_'), uint(2)]),
  ];
  for (const [i, body] of hostile.entries()) {
    const value = decodeItem(body);
    // Walk every decoded object: all plain, none with a polluted prototype.
    const stack: unknown[] = [value];
    while (stack.length > 0) {
      const v = stack.pop();
      if (typeof v !== 'object' || v === null) continue;
      if (Array.isArray(v)) {
        t.equal(Object.getPrototypeOf(v), Array.prototype, `case ${i}: array prototype`);
        stack.push(...(v as unknown[]));
      } else {
        t.equal(Object.getPrototypeOf(v), Object.prototype, `case ${i}: object prototype`);
        t.notOk(Object.hasOwn(v, '__proto__'), `case ${i}: no own __proto__ key`);
        stack.push(...Object.values(v));
      }
    }
  }
  t.equal(({} as { polluted?: unknown }).polluted, undefined);
  t.equal(prototypeSnapshot(), before, 'built-in prototypes unchanged');

  // What a __proto__ key becomes: cbor-x renames it to "__proto_".
  t.same(decodeItem(map([text('__proto__'), uint(1)])), { __proto_: 1 });
  const merged = decodeItem(map([text('__proto__'), uint(1)], [text('__proto_'), uint(2)])) as Record<string, unknown>;
  t.same(Object.keys(merged), ['__proto_'], 'a renamed key collides with a real "__proto_" key; the last wins');
  t.equal(merged['__proto_'], 2);
  const ctor = decodeItem(map([text('constructor'), map([text('prototype'), evil])])) as Record<string, unknown>;
  t.same(Object.keys(ctor), ['constructor'], 'constructor is an ordinary own key');

  // The same through the envelope decoder.
  const call = decodeEnvelope(arr(uint(1), uint(1), text('m'), map([text('__proto__'), evil]), NULL));
  t.equal(call.kind, 'call');
  t.equal(Object.getPrototypeOf((call as { params: object }).params), Object.prototype);
  t.equal(prototypeSnapshot(), before);
});

t.test('declared lengths beyond the frame fail fast with ERR_BAD_FRAME', async (t) => {
  const cases: Record<string, Buffer> = {
    'array 2^32-1': hex('9a ffffffff'),
    'array 2^64-1': hex('9b ffffffffffffffff'),
    'array 2^32 (64-bit head)': hex('9b 0000000100000000'),
    'array 2^32-1 (64-bit head)': hex('9b 00000000ffffffff'),
    'map 2^32-1': hex('ba ffffffff'),
    'map 2^64-1': hex('bb ffffffffffffffff'),
    'text 2^32-1': hex('7a ffffffff'),
    'bytes 2^32-1': hex('5a ffffffff'),
    'bytes 2^64-1': hex('5b ffffffffffffffff'),
    'array one too long': hex('83 01 02'),
    'map one entry too long': hex('a2 61 61 01'),
    'nested huge arrays': hex('82 9a 0fffffff 9a 0fffffff'),
    'huge inside indefinite': hex('9f 9a ffffffff ff'),
    'text one byte short': hex('63 6161'),
  };
  const start = cpuMs();
  for (let round = 0; round < 100; round++) {
    for (const [name, body] of Object.entries(cases)) {
      try {
        decodeItem(body);
        t.fail(`${name}: decoded`);
      } catch (err) {
        if (round === 0) t.equal((err as BulkheadError).code, 'ERR_BAD_FRAME', name);
      }
    }
  }
  const ms = cpuMs() - start;
  // Allocating even one of these declared lengths takes far longer than this. CPU time, not wall-clock: a loaded
  // machine stretches the wall-clock time of the same work without bound.
  t.ok(ms < 1000, `1400 hostile decodes took ${ms.toFixed(1)} ms of CPU`);
});

t.test('nesting: MAX_FRAME_DEPTH levels decode, one more is ERR_BAD_FRAME; 100k levels do not crash', async (t) => {
  t.equal(MAX_DEPTH, 64);
  t.equal(MAX_FRAME_DEPTH, 66);
  const nestedArrays = (n: number): Buffer => cat(Buffer.alloc(n, 0x81), uint(0));
  const nestedMaps = (n: number): Buffer => cat(...Array.from({ length: n }, () => hex('a1 61 61')), uint(0));
  const nestedIndefinite = (n: number): Buffer => cat(Buffer.alloc(n, 0x9f), Buffer.alloc(n, 0xff));
  for (const [name, build] of [['arrays', nestedArrays], ['maps', nestedMaps], ['indefinite arrays', nestedIndefinite]] as const) {
    t.doesNotThrow(() => decodeItem(build(MAX_FRAME_DEPTH)), `${MAX_FRAME_DEPTH} nested ${name}`);
    expectCode(t, () => decodeItem(build(MAX_FRAME_DEPTH + 1)), 'ERR_BAD_FRAME', `${MAX_FRAME_DEPTH + 1} nested ${name}`);
    expectCode(t, () => decodeItem(build(100_000)), 'ERR_BAD_FRAME', `100k nested ${name}`);
  }
  t.doesNotThrow(() => decodeItem(cat(Buffer.alloc(MAX_FRAME_DEPTH - 1, 0x81), hex('80'))), 'an empty array at the deepest level');
  expectCode(t, () => decodeItem(cat(Buffer.alloc(MAX_FRAME_DEPTH, 0x81), hex('80'))), 'ERR_BAD_FRAME', 'an empty array one level deeper');
  t.doesNotThrow(() => decodeItem(cat(Buffer.alloc(MAX_FRAME_DEPTH, 0x81), bytes(Buffer.from('leaf')))), 'byte strings and text are leaves');
});

t.test('object limit: a body of L bytes holds at most 1024 + floor(L / 8) arrays, maps and byte strings', async (t) => {
  t.equal(FRAME_OBJECT_ALLOWANCE, 1024);
  t.equal(BYTES_PER_OBJECT, 8);
  t.same([0, 7, 8, 15, 16, 16 * 1024 * 1024].map(maxFrameObjects), [1024, 1024, 1025, 1025, 1026, 1024 + 2 * 1024 * 1024]);
  const limitMessage = /more than \d+ arrays, maps and byte strings \(at byte \d+\); a \d+-byte body may hold 1024 \+ 1 per 8 bytes/;

  // Unpadded: [item × n] is n + 1 objects in 3 + n bytes (head 99 nn nn). The largest n that fits is 1169.
  const flat = (n: number, item: Buffer): Buffer => cat(head(4, n), Buffer.concat(Array.from({ length: n }, () => item)));
  t.equal(1169 + 1, maxFrameObjects(3 + 1169), '1169 one-byte items fill the limit exactly');
  for (const [name, item] of [['empty maps', hex('a0')], ['empty arrays', hex('80')], ['empty byte strings', hex('40')], ['empty indefinite arrays', hex('9f ff')]] as const) {
    const n = item.length === 1 ? 1169 : 1364; // 2-byte items: n + 1 <= 1024 + floor((3 + 2n) / 8) up to n = 1364
    t.doesNotThrow(() => decodeItem(flat(n, item)), `${n} ${name}: accepted`);
    try {
      decodeItem(flat(n + 1, item));
      t.fail(`${n + 1} ${name}: accepted`);
    } catch (err) {
      t.equal((err as BulkheadError).code, 'ERR_BAD_FRAME', `${n + 1} ${name}: ERR_BAD_FRAME`);
      t.match((err as BulkheadError).message, limitMessage, `${n + 1} ${name}: the message names the limit`);
    }
  }
  expectCode(t, () => decodeItem(flat(2000, hex('c2 40'))), 'ERR_BAD_FRAME', 'bignum byte strings count too');
  expectCode(t, () => decodeItem(flat(1_000_000, hex('a0'))), 'ERR_BAD_FRAME', 'a 1 MB frame of empty maps');

  // Padded to exactly the limit: [item × n, bytes(P)] is n + 2 objects in 10 + n + P bytes (5-byte heads).
  const padded = (n: number, short: number, extra = 0): Buffer => {
    const length = BYTES_PER_OBJECT * (n + 2 - FRAME_OBJECT_ALLOWANCE);
    const pad = length - 10 - n - short;
    const arrayHead = Buffer.from([0x9a, 0, 0, 0, 0]);
    arrayHead.writeUInt32BE(n + 1 + extra, 1);
    const padHead = Buffer.from([0x5a, 0, 0, 0, 0]);
    padHead.writeUInt32BE(pad, 1);
    return cat(arrayHead, Buffer.alloc(n + extra, 0xa0), padHead, Buffer.alloc(pad, 0x78));
  };
  const n = 100_000;
  const atLimit = padded(n, 0);
  t.equal(atLimit.length, 8 * (n + 2 - 1024), 'the padded body is exactly as long as its objects need');
  const value = decodeItem(atLimit) as unknown[];
  t.equal(value.length, n + 1, `${n} empty maps padded to ${atLimit.length} bytes: accepted (${n + 2} objects, the limit)`);
  expectCode(t, () => decodeItem(padded(n, 1)), 'ERR_BAD_FRAME', 'one byte less padding: rejected');
  expectCode(t, () => decodeItem(padded(n, 0, 1)), 'ERR_BAD_FRAME', 'one more empty map in the same padding: rejected');

  // Text strings and scalars are not counted: they decode to primitives.
  t.doesNotThrow(() => decodeItem(flat(100_000, hex('60'))), '100k empty text strings');
  t.doesNotThrow(() => decodeItem(flat(100_000, hex('01'))), '100k small integers');
  t.doesNotThrow(() => decodeItem(flat(100_000, hex('f6'))), '100k nulls');
});

t.test('object limit: realistic payloads pass, and what it refuses', async (t) => {
  const rows = Array.from({ length: 100_000 }, (_, i) => ({ id: i, name: 'x' }));
  t.equal((decodeItem(encodeItem(rows)) as unknown[]).length, rows.length, '100k {id, name: "x"} as bulkhead encodes them (b9 map heads)');
  t.equal(describeNonPlain(rows), undefined, 'and the sender check agrees');
  // {"id":1,"name":"x"} in preferred encoding (a2 62 69 64 01 64 6e 61 6d 65 61 78): 12 bytes per map.
  const preferred = cat(head(4, 100_000), Buffer.concat(Array.from({ length: 100_000 }, () => map([text('id'), uint(1)], [text('name'), text('x')]))));
  t.doesNotThrow(() => decodeItem(preferred), '100k {"id":1,"name":"x"} in preferred encoding (12 bytes each)');
  const users = Array.from({ length: 20_000 }, (_, i) => ({ id: 1000 + i, name: `user${i}`, email: `user${i}@example.com`, active: i % 2 === 0, roles: ['reader'], score: i / 3, avatar: Buffer.alloc(16, i) }));
  const call = encodeEnvelope({ kind: 'call', id: 1, method: 'put', params: { users }, meta: { timeoutMs: 5000 } }).subarray(4);
  t.doesNotThrow(() => decodeEnvelope(call), `a call with 20k user records, each with an array and a 16-byte Buffer (${call.length} bytes)`);
  const big = encodeEnvelope({ kind: 'reply', id: 1, result: { file: Buffer.alloc(8 * 1024 * 1024, 1), chunks: Array.from({ length: 1000 }, () => Buffer.alloc(64)) } }).subarray(4);
  t.doesNotThrow(() => decodeEnvelope(big), 'a reply with an 8 MiB byte string and 1000 64-byte ones');
  let nested: unknown = { leaf: true };
  for (let i = 0; i < MAX_DEPTH - 1; i++) nested = [nested];
  t.doesNotThrow(() => decodeEnvelope(encodeEnvelope({ kind: 'event', callId: 0, name: 'e', payload: nested }).subarray(4)), 'small deeply nested messages: inside the allowance');

  // Shapes denser than one object per 8 bytes are refused once past the allowance, by the sender first.
  const pairs = Array.from({ length: 10_000 }, (_, i) => [i % 20, 1]);
  expectCode(t, () => decodeItem(encodeItem(pairs)), 'ERR_BAD_FRAME', '10k pairs of small integers (3 bytes per array)');
  t.equal(encodeItem(pairs).length, 30_003, 'for ASCII data the sender counts the exact encoded size');
  t.match(describeNonPlain(pairs), /^10001 arrays, objects and byte strings in at least 30003 bytes: a frame may hold at most 1024 \+ 1 per 8 bytes/, 'the sender refuses them first, naming the rule');
  t.equal(describeNonPlain(pairs.slice(0, 1000)), undefined, '1000 pairs fit the allowance');
  t.equal(describeNonPlain(pairs.map(([a, b]) => [a! + 0.5, b! + 0.5])), undefined, 'pairs of floats (19 bytes per array) pass');
  t.match(describeNonPlain(Array.from({ length: 5000 }, () => Buffer.alloc(2))), /^5001 arrays, objects and byte strings/, 'tiny byte strings are objects too');
  // [2^64] is an array and a bignum's byte string (82 c2 49 01 00 …): 2 objects in 12 bytes.
  const wrapped = Array.from({ length: 5000 }, () => [2n ** 64n]);
  expectCode(t, () => decodeItem(encodeItem(wrapped)), 'ERR_BAD_FRAME', 'the peer counts a bignum\'s byte string');
  t.match(describeNonPlain(wrapped), /^10001 arrays, objects and byte strings/, 'and so does the sender');
  t.equal(describeNonPlain(Array.from({ length: 5000 }, () => [2n ** 64n - 1n])), undefined, 'a bigint with an 8-byte head is no object');
});

t.test('object limit: a value describeNonPlain accepts never makes a frame the peer rejects', async (t) => {
  const rand = prng(20240612);
  const pick = (n: number): number => Math.floor(rand() * n);
  const items: Array<() => unknown> = [
    () => [], () => ({}), () => [pick(30), 1], () => ({ id: pick(300) }), () => ({ id: pick(70000), name: 'x' }), () => Buffer.alloc(pick(12)),
    () => 'é'.repeat(pick(4)), () => pick(2) === 0 ? 1.5 : -pick(1000), () => null, () => 2n ** 40n, () => [-(2n ** 70n)], () => ({ ['k'.repeat(pick(30))]: [] }), () => 'x'.repeat(pick(40)),
  ];
  let accepted = 0;
  let refused = 0;
  let widest = 0;
  let refusedButAcceptable = 0;
  for (let i = 0; i < 300; i++) {
    const mix = items.slice(0, 1 + pick(items.length));
    const value = Array.from({ length: 500 + pick(6000) }, () => mix[pick(mix.length)]!());
    // The largest envelope around a value: an error with the value in its data.
    const body = encodeEnvelope({ kind: 'error', id: 0, error: { code: 'ERR_X', message: 'm', data: { remoteData: value } } }).subarray(4);
    let peerAccepts = true;
    try {
      decodeEnvelope(body);
    } catch {
      peerAccepts = false;
    }
    if (describeNonPlain(value) === undefined) {
      accepted++;
      if (!peerAccepts) t.fail(`case ${i}: describeNonPlain accepted a value whose frame (${body.length} bytes) the peer rejects`);
    } else {
      refused++;
      if (peerAccepts) {
        // Refused though the peer would take it: only near the limit.
        let objects = 0;
        const count = (v: unknown): void => {
          if (v instanceof Uint8Array) objects++;
          else if (Array.isArray(v)) { objects++; v.forEach(count); } else if (typeof v === 'object' && v !== null) { objects++; Object.values(v).forEach(count); }
        };
        count(value);
        refusedButAcceptable++;
        widest = Math.max(widest, (maxFrameObjects(body.length) - objects - 3) / maxFrameObjects(body.length));
      }
    }
  }
  t.ok(accepted > 30 && refused > 30, `both outcomes occur (${accepted} accepted, ${refused} refused)`);
  t.ok(widest < 0.1, `${refusedButAcceptable} refused values the peer would have taken, all within ${(widest * 100).toFixed(1)}% of the limit (bound 10%)`);
});

t.test('describeNonPlain: what a sender may send', async (t) => {
  let deep: unknown = 1;
  for (let i = 0; i < MAX_DEPTH; i++) deep = [deep];
  t.equal(describeNonPlain(deep), undefined, `${MAX_DEPTH} levels are plain`);
  t.equal(describeNonPlain([deep]), `nesting deeper than ${MAX_DEPTH}`);
  let deepBuf: unknown = Buffer.from('x');
  for (let i = 0; i < MAX_DEPTH; i++) deepBuf = [deepBuf];
  t.equal(describeNonPlain(deepBuf), undefined, 'a Buffer is a leaf, not a level');
  t.equal(describeNonPlain({ a: [1, 'x', null, undefined, true, 2n, Buffer.alloc(1), new Uint8Array(1)] }), undefined);
  t.equal(describeNonPlain(new Date(0)), 'a Date object');
  t.equal(describeNonPlain({ m: new Map() }), 'a Map object');
  t.equal(describeNonPlain([new Set()]), 'a Set object');
  t.equal(describeNonPlain(new Float32Array(1)), 'a Float32Array object');
  t.equal(describeNonPlain(Object.create(null)), 'a non-plain object');
  t.equal(describeNonPlain({ f: () => 1 }), 'a function');
  t.equal(describeNonPlain(Symbol('s')), 'a symbol');
  t.equal(describeNonPlain((1n << 512n) - 1n), undefined);
  t.equal(describeNonPlain(-(1n << 512n)), undefined);
  t.equal(describeNonPlain(1n << 512n), 'a bigint wider than 512 bits');
  t.equal(describeNonPlain(-(1n << 512n) - 1n), 'a bigint wider than 512 bits');
});

t.test('every tag but bignums 2/3 on a short byte string is ERR_BAD_FRAME', async (t) => {
  const cases: Record<string, Buffer> = {
    'tag 0 date string': tag(0, text('2013-03-21T20:04:00Z')),
    'tag 1 epoch date': tag(1, uint(1363896240)),
    'tag 1 inside an array': arr(uint(1), tag(1, uint(0))),
    'tag 4 decimal fraction': tag(4, arr(hex('21'), uint(27315))),
    'tag 5 bigfloat': tag(5, arr(hex('20'), uint(3))),
    'tag 6 packed reference': tag(6, uint(1)),
    'tag 14': tag(14, uint(1)),
    'tag 15': tag(15, uint(1)),
    'tag 27 Error': tag(27, arr(text('Error'), text('boom'))),
    'tag 27 RegExp': tag(27, arr(text('RegExp'), text('a+'), text('g'))),
    'tag 27 constructor (cbor-x returns a plain object)': tag(27, arr(text('constructor'), map([text('a'), uint(1)]))),
    'tag 27 toString (cbor-x returns a string)': tag(27, arr(text('toString'))),
    'tag 27 __proto__': tag(27, arr(text('__proto__'))),
    'tag 28/29 value sharing': arr(tag(28, arr(uint(1))), tag(29, uint(0))),
    'tag 28 cycle': tag(28, arr(tag(29, uint(0)))),
    'tag 51 packed table': tag(51, arr(arr(text('abc')), arr(), arr(), hex('e0'))),
    'tag 64 Uint8Array': tag(64, bytes(hex('010203'))),
    'tag 72 Int8Array': tag(72, bytes(hex('010203'))),
    'tag 85 Float32Array': tag(85, bytes(hex('0000803f'))),
    'tag 105 legacy record': tag(105, arr(uint(0xe000), arr(text('a')), uint(1))),
    'tag 258 Set': tag(258, arr(uint(1), uint(2))),
    'tag 259 Map': tag(259, map([uint(1), uint(2)])),
    'tag 259 on an int': tag(259, uint(1)),
    'tag 9999 unknown': tag(9999, uint(1)),
    'tag 55799 self-described CBOR': tag(55799, arr()),
    'tag 0xdff9 bundled strings': tag(0xdff9, uint(1)),
    'tag 0xdffe record definitions': tag(0xdffe, arr(uint(0xe000), arr(text('a')), tag(0xe000, arr(uint(5))))),
    'tag 0xdfff inline record': tag(0xdfff, arr(uint(0xe000), arr(text('a')), uint(1))),
    'tag 0xe000 record use': tag(0xe000, arr(uint(5))),
    'tag 2^32-1': cat(hex('da ffffffff'), uint(1)),
    'tag 2 with a 64-bit head on a text string': cat(hex('db 0000000000000002'), text('1')),
    'tag 2 on an int': tag(2, uint(1)),
    'tag 2 on a text string': tag(2, text('1')),
    'tag 2 on a tag': tag(2, tag(2, bytes(hex('01')))),
    'tag 2 at the end': tag(2, Buffer.alloc(0)),
    'tag 2 before a break': cat(hex('9f'), tag(2, hex('ff'))),
    [`tag 2 on ${MAX_BIGNUM_BYTES + 1} bytes`]: tag(2, bytes(Buffer.alloc(MAX_BIGNUM_BYTES + 1, 0xff))),
    [`tag 3 on ${MAX_BIGNUM_BYTES + 1} bytes`]: tag(3, bytes(Buffer.alloc(MAX_BIGNUM_BYTES + 1, 0xff))),
    'tag 2 on a huge byte string': tag(2, bytes(Buffer.alloc(100_000, 0xff))),
    'tag 2 as a map key': map([tag(2, bytes(hex('01'))), uint(1)]),
  };
  for (const [name, body] of Object.entries(cases)) expectCode(t, () => decodeItem(body), 'ERR_BAD_FRAME', name);
  t.equal(decodeItem(tag(2, bytes(Buffer.alloc(MAX_BIGNUM_BYTES, 0xff)))), (1n << BigInt(MAX_BIGNUM_BYTES * 8)) - 1n, `tag 2 on ${MAX_BIGNUM_BYTES} bytes`);
  t.equal(decodeItem(cat(hex('d8 02'), bytes(hex('01')))), 1n, 'tag 2 with a 1-byte head');
  t.equal(decodeItem(tag(2, bytes(Buffer.alloc(0)))), 0n, 'tag 2 on an empty byte string');
});

t.test('value sharing cannot blow up: a 60-level shared DAG is rejected at once', async (t) => {
  // Level k = tag28([level k-1, tag29(id of level k-1)]): 2^60 paths in ~400 bytes.
  const levels = 60;
  const build = (k: number): Buffer => (k === 0 ? tag(28, arr(uint(1))) : tag(28, arr(build(k - 1), tag(29, uint(levels - k + 1)))));
  const body = build(levels);
  const start = cpuMs();
  expectCode(t, () => decodeItem(body), 'ERR_BAD_FRAME');
  // Walking 2^60 paths would never end, so any bound proves it. CPU time, not wall-clock: a loaded CI machine once
  // took > 100 ms of wall-clock time for the rejection itself (Node 24, load 13), time it spent not running.
  const ms = cpuMs() - start;
  t.ok(ms < 2000, `rejected without walking the tree (${ms.toFixed(1)} ms of CPU)`);
});

t.test('map keys must be text strings', async (t) => {
  const keys: Record<string, Buffer> = {
    'unsigned int': uint(1), 'negative int': hex('20'), float: hex('f9 3e00'), null: NULL, true: TRUE, undefined: hex('f7'),
    'byte string': bytes(hex('61')), array: arr(), map: map(), bignum: tag(2, bytes(hex('01'))),
  };
  for (const [name, key] of Object.entries(keys)) {
    expectCode(t, () => decodeItem(map([key, uint(1)])), 'ERR_BAD_FRAME', `${name} key`);
    expectCode(t, () => decodeItem(cat(hex('bf'), key, uint(1), hex('ff'))), 'ERR_BAD_FRAME', `${name} key in an indefinite map`);
  }
  t.same(decodeItem(map([text(''), uint(1)])), { '': 1 }, 'the empty string is a valid key');
});

t.test('other malformed or unsupported items are ERR_BAD_FRAME', async (t) => {
  const cases: Record<string, Buffer> = {
    'empty body': Buffer.alloc(0),
    'trailing byte': hex('01 02'),
    'trailing item after a map': cat(map([text('a'), uint(1)]), uint(0)),
    'two items': cat(arr(), arr()),
    'truncated array': hex('82 01'),
    'truncated 2-byte head': hex('19 01'),
    'truncated float64': hex('fb 3ff0'),
    'simple value 0': hex('e0'),
    'simple value 19': hex('f3'),
    'simple value 32 (1-byte form)': hex('f8 20'),
    'reserved info 28': hex('1c'),
    'reserved info 29 (array)': hex('9d'),
    'reserved info 30 (major 7)': hex('fe'),
    'break at top level': hex('ff'),
    'break in a definite array': hex('82 01 ff'),
    'indefinite map with a dangling key': hex('bf 61 61 ff'),
    'unterminated indefinite array': hex('9f 01 02'),
    'indefinite text string': hex('7f 61 61 ff'),
    'indefinite byte string': hex('5f 41 61 ff'),
    'indefinite uint': hex('1f'),
    'indefinite tag': hex('df 01'),
  };
  for (const [name, body] of Object.entries(cases)) expectCode(t, () => decodeItem(body), 'ERR_BAD_FRAME', name);
});

t.test('invalid UTF-8 is not rejected: each bad sequence becomes U+FFFD', async (t) => {
  const asText = (b: Buffer): string => decodeItem(cat(head(3, b.length), b)) as string;
  t.equal(asText(hex('c3 28')), '\uFFFD(', 'truncated 2-byte sequence');
  t.equal(asText(hex('80')), '\uFFFD', 'lone continuation byte');
  t.equal(asText(hex('c0 80')), '\uFFFD\uFFFD', 'overlong NUL');
  t.equal(asText(hex('ed a0 80')), '\uFFFD\uFFFD\uFFFD', 'UTF-16 surrogate');
  t.equal(asText(hex('f4 90 80 80')), '\uFFFD\uFFFD\uFFFD\uFFFD', 'above U+10FFFF');
  t.equal(asText(cat(Buffer.alloc(100, 0x61), hex('e2 82'))), `${'a'.repeat(100)}\uFFFD`, 'in a long string');
  t.equal(asText(hex('e2 82 ac f0 9f 98 80')), '€😀', 'valid multi-byte text is intact');
  // A JS sender's lone surrogate goes out as its 3-byte WTF-8 form and comes back as three U+FFFD.
  t.same([...encodeItem('\uD800')], [0x63, 0xed, 0xa0, 0x80]);
  t.equal(decodeItem(encodeItem('\uD800')), '\uFFFD\uFFFD\uFFFD');
  const keyed = decodeItem(map([cat(head(3, 1), hex('ff')), uint(1)]));
  t.same(keyed, { '\uFFFD': 1 }, 'map keys too');
});

t.test('fuzz: mutated envelopes either decode or throw ERR_BAD_FRAME', async (t) => {
  const seeds: Envelope[] = [
    { kind: 'hello', role: 'client', protocol: 'echo', version: '1.0.0', schemaHash: 'a'.repeat(64), info: { pid: 42, tags: ['x'] } },
    { kind: 'call', id: 1, method: 'echo', params: { text: 'hi', n: [1, 2.5, -3], b: Buffer.from('zz'), u: undefined, big: 2n ** 70n }, meta: { timeoutMs: 5000 } },
    { kind: 'reply', id: 0xffffffff, result: { nested: { deep: [[[{ a: null }]]] } } },
    { kind: 'error', id: 0, error: { code: 'ERR_PROTOCOL_MISMATCH', message: 'no', data: { expected: 'a' } } },
    { kind: 'event', callId: 7, name: 'tick', payload: [true, false, null] },
    { kind: 'cancel', id: 3, reason: 'deadline' },
    { kind: 'goodbye', reason: 'idle' },
  ];
  const bodies = seeds.map((e) => encodeEnvelope(e).subarray(4));
  const special = [0x00, 0x17, 0x18, 0x1b, 0x1f, 0x3b, 0x5a, 0x5f, 0x7a, 0x7f, 0x9a, 0x9b, 0x9f, 0xba, 0xbf, 0xc1, 0xd8, 0xd9, 0xdf, 0xf7, 0xf8, 0xfb, 0xff];
  const rand = prng(20240611);
  const pick = (n: number): number => Math.floor(rand() * n);
  const before = prototypeSnapshot();
  const outcomes = { decoded: 0, rejected: 0 };
  const cases = 20_000;
  const start = performance.now();
  for (let i = 0; i < cases; i++) {
    const base = bodies[pick(bodies.length)]!;
    const b = Buffer.from(base);
    let m = b;
    for (let k = 1 + pick(3); k > 0; k--) {
      switch (pick(6)) {
        case 0: if (m.length > 0) m[pick(m.length)] = pick(256); break;
        case 1: if (m.length > 0) m[pick(m.length)] = special[pick(special.length)]!; break;
        case 2: if (m.length > 0) m[pick(m.length)]! ^= 1 << pick(8); break;
        case 3: m = m.subarray(0, pick(m.length + 1)); break;
        case 4: { const at = pick(m.length + 1); m = Buffer.concat([m.subarray(0, at), Buffer.from([special[pick(special.length)]!]), m.subarray(at)]); break; }
        default: { const other = bodies[pick(bodies.length)]!; const at = pick(m.length + 1); m = Buffer.concat([m.subarray(0, at), other.subarray(pick(other.length))]); }
      }
    }
    try {
      decodeEnvelope(m);
      outcomes.decoded++;
    } catch (err) {
      if (!(err instanceof BulkheadError) || err.code !== 'ERR_BAD_FRAME') {
        t.fail(`case ${i} (${m.toString('hex')}) threw ${err instanceof BulkheadError ? err.code : String(err)}`);
        return;
      }
      outcomes.rejected++;
    }
  }
  const ms = performance.now() - start;
  t.equal(outcomes.decoded + outcomes.rejected, cases);
  t.ok(outcomes.decoded > 100 && outcomes.rejected > 100, `both outcomes occur (${outcomes.decoded} decoded, ${outcomes.rejected} rejected, ${ms.toFixed(0)} ms)`);
  t.equal(prototypeSnapshot(), before, 'built-in prototypes unchanged');
});

t.test('fuzz: random bytes through decodeItem throw nothing but ERR_BAD_FRAME', async (t) => {
  const rand = prng(7);
  let odd = 0;
  for (let i = 0; i < 20_000; i++) {
    const b = Buffer.alloc(1 + Math.floor(rand() * 24));
    for (let k = 0; k < b.length; k++) b[k] = Math.floor(rand() * 256);
    try {
      decodeItem(b);
    } catch (err) {
      if (!(err instanceof BulkheadError) || err.code !== 'ERR_BAD_FRAME') odd++;
    }
  }
  t.equal(odd, 0);
});
