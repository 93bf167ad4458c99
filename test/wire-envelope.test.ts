/**
 * Envelopes: every kind round-trips through a real frame; every malformed
 * shape is ERR_BAD_FRAME; the frames shown in docs/wire.md are the bytes the
 * encoder really writes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ERROR_CODES } from '../lib/errors.js';
import { canonicalJson, schemaHash } from '../lib/protocol/hash.js';
import { MAX_DEPTH, describeNonPlain, encodeItem } from '../lib/wire/codec.js';
import { KIND, MAX_CALL_ID, decodeEnvelope, encodeEnvelope, type Envelope } from '../lib/wire/envelope.js';
import { FrameDecoder } from '../lib/wire/frame-decoder.js';
import { REPO_ROOT, expectCode } from './helpers.js';


/** Encodes an arbitrary wire array (not necessarily a valid envelope) as a frame body. */
const body = (wire: unknown[]): Buffer => encodeItem(wire);

/** Encodes, frames, splits, decodes: the full trip a peer's bytes take. */
function trip(e: Envelope): Envelope {
  const frame = encodeEnvelope(e);
  const d = new FrameDecoder();
  const bodies = [...d.push(frame.subarray(0, 3)), ...d.push(frame.subarray(3))];
  if (bodies.length !== 1) throw new Error(`expected one frame, got ${bodies.length}`);
  return decodeEnvelope(bodies[0]!);
}

const HASH = '3871dd89276cabe6ed806aad5b1c9963c33bc7b4171a8d90a2356190cac1c934';

t.test('kind numbers and the id bound are fixed', async (t) => {
  t.same(KIND, { hello: 0, call: 1, reply: 2, error: 3, event: 4, cancel: 5, goodbye: 6, activity: 7, peer: 8, item: 9, credit: 10, end: 11 });
  t.equal(MAX_CALL_ID, 0xffffffff);
});

t.test('every kind round-trips', async (t) => {
  const envelopes: Envelope[] = [
    { kind: 'activity', transactions: 2 },
    { kind: 'peer', range: 3, peer: { name: 'cli', uid: 1000, pid: 42 } },
    { kind: 'peer', range: 4095, peer: null },
    { kind: 'hello', role: 'client', protocol: 'echo', version: '1.0.0', schemaHash: HASH, info: {} },
    { kind: 'hello', role: 'service', protocol: 'echo', version: '1.0.0', schemaHash: HASH, info: { pid: 4242, nested: { list: [1, 'a'] } } },
    { kind: 'call', id: 1, method: 'echo', params: { text: 'hi' }, meta: null },
    { kind: 'call', id: MAX_CALL_ID, method: 'echo', params: [1, Buffer.from('raw'), null], meta: { timeoutMs: 5000 } },
    { kind: 'call', id: 9, method: 'x', params: undefined, meta: { timeoutMs: 0.5 } },
    { kind: 'call', id: 10, method: 'x', params: 'scalar', meta: {} },
    { kind: 'call', id: 11, method: 'x', params: null, meta: {} },
    { kind: 'call', id: 12, method: 'x', params: null, meta: { timeoutMs: 10, service: 'clock' } },
    { kind: 'reply', id: 1, result: { text: 'hi' } },
    { kind: 'reply', id: 2, result: null },
    { kind: 'reply', id: 3, result: undefined },
    { kind: 'reply', id: 4, result: 2n ** 80n },
    { kind: 'error', id: 2, error: { code: 'ERR_DEADLINE', message: 'late' } },
    { kind: 'error', id: 0, error: { code: 'ERR_PROTOCOL_MISMATCH', message: 'bye', data: { expected: 'echo', actual: 'other' } } },
    { kind: 'error', id: 5, error: { code: 'MY_APP_CODE', message: '', data: {} } },
    { kind: 'event', callId: 0, name: 'tick', payload: { n: 1 } },
    { kind: 'event', callId: MAX_CALL_ID, name: 'progress', payload: 0.5 },
    { kind: 'cancel', id: 2, reason: 'deadline' },
    { kind: 'cancel', id: 3, reason: 'cancelled' },
    { kind: 'goodbye', reason: 'idle' },
    { kind: 'item', id: 7, value: { i: 1 } },
    { kind: 'item', id: MAX_CALL_ID, value: Buffer.from('chunk') },
    { kind: 'credit', id: 7, items: 256 },
    { kind: 'credit', id: 7, items: 65536 },
    { kind: 'end', id: 7 },
    { kind: 'goodbye', reason: '' },
  ];
  for (const e of envelopes) t.same(trip(e), e, `${e.kind} ${JSON.stringify(e, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}`);
});

t.test('decoded shapes are normalised', async (t) => {
  t.same(decodeEnvelope(body([1, 1, 'm', 1, undefined])), { kind: 'call', id: 1, method: 'm', params: 1, meta: null }, 'meta undefined becomes null');
  t.same(decodeEnvelope(body([3, 1, { code: 'C', message: 'm', data: null }])), { kind: 'error', id: 1, error: { code: 'C', message: 'm' } }, 'error data null is dropped');
  t.same(decodeEnvelope(body([3, 1, { code: 'C', message: 'm', extra: 1 }])), { kind: 'error', id: 1, error: { code: 'C', message: 'm' } }, 'unknown error body keys are dropped');
  t.same(decodeEnvelope(body([1, 1, 'm', 1, { timeoutMs: 1, other: 'x', peer: { name: 'n', uid: 'x', pid: null, extra: 1 } }])),
    { kind: 'call', id: 1, method: 'm', params: 1, meta: { timeoutMs: 1 } }, 'unknown meta keys are dropped, including a claimed peer (peers come only from the broker\'s peer binding)');
  t.same(decodeEnvelope(body([8, 2, { name: 'n', uid: 'x', pid: null, extra: 1 }])),
    { kind: 'peer', range: 2, peer: { name: 'n' } }, 'non-number uid/pid and unknown peer keys are dropped');
  t.same(decodeEnvelope(Buffer.from('8501f93c00616d01f6', 'hex')), { kind: 'call', id: 1, method: 'm', params: 1, meta: null }, 'an id sent as float 1.0 is accepted');
});

t.test('ids: 1..2^32-1 for calls, 0 allowed only where the spec says', async (t) => {
  for (const kind of [KIND.call, KIND.reply, KIND.cancel]) {
    const tail = kind === KIND.call ? ['m', null, null] : kind === KIND.reply ? [null] : ['cancelled'];
    t.doesNotThrow(() => decodeEnvelope(body([kind, 1, ...tail])), `kind ${kind} id 1`);
    t.doesNotThrow(() => decodeEnvelope(body([kind, MAX_CALL_ID, ...tail])), `kind ${kind} id 2^32-1`);
    for (const id of [0, -1, MAX_CALL_ID + 1, 2 ** 53, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '1', null, true, [1], { id: 1 }, 1n]) {
      expectCode(t, () => decodeEnvelope(body([kind, id, ...tail])), 'ERR_BAD_FRAME', `kind ${kind} id ${String(id)}`);
    }
  }
  // An 8-byte integer head decodes to a bigint, which is not an id even when small.
  expectCode(t, () => decodeEnvelope(Buffer.from('83021b000000000000000101', 'hex')), 'ERR_BAD_FRAME', 'reply id as a 64-bit head');
  t.same(decodeEnvelope(body([3, 0, { code: 'C', message: 'm' }])), { kind: 'error', id: 0, error: { code: 'C', message: 'm' } });
  for (const id of [-1, MAX_CALL_ID + 1, 0.5, '0', null]) expectCode(t, () => decodeEnvelope(body([3, id, { code: 'C', message: 'm' }])), 'ERR_BAD_FRAME', `error id ${String(id)}`);
  for (const id of [-1, MAX_CALL_ID + 1, 0.5, '0', null]) expectCode(t, () => decodeEnvelope(body([4, id, 'e', null])), 'ERR_BAD_FRAME', `event callId ${String(id)}`);
});

t.test('malformed shapes are ERR_BAD_FRAME', async (t) => {
  const hello = [0, 'client', 'p', '1.0.0', HASH, {}];
  const cases: Record<string, unknown> = {
    'not an array: map': { kind: 1 },
    'not an array: int': 1,
    'not an array: string': 'call',
    'not an array: null': null,
    'not an array: bytes': Buffer.from([1]),
    'empty array': [],
    'unknown kind 12': [12],
    'item without a value': [9, 1],
    'item with id 0': [9, 0, 1],
    'credit of 0 items': [10, 1, 0],
    'credit over the maximum': [10, 1, 65537],
    'credit of a fraction': [10, 1, 1.5],
    'end with a value': [11, 1, null],
    'peer range 0 (the broker\'s own)': [8, 0, null],
    'peer with a non-map peer': [8, 1, 'cli'],
    'activity without a count': [7],
    'activity with a negative count': [7, -1],
    'unknown kind -1': [-1, 1],
    'unknown kind 1.5': [1.5, 1, 'm', null, null],
    'kind as a string': ['call', 1, 'm', null, null],
    'kind null': [null],
    'kind as an array': [[1], 1],
    'kind as a map with a toString key': [{ toString: 1 }],
    'kind as a map with toString and valueOf keys': [{ toString: 1, valueOf: 2 }],
    'kind as a bigint': [1n],
    'kind as bytes': [Buffer.from([1])],
    'hello short': hello.slice(0, 5),
    'hello long': [...hello, 1],
    'hello role admin': [0, 'admin', 'p', '1.0.0', HASH, {}],
    'hello role missing': [0, null, 'p', '1.0.0', HASH, {}],
    'hello protocol not a string': [0, 'client', 1, '1.0.0', HASH, {}],
    'hello version not a string': [0, 'client', 'p', 1, HASH, {}],
    'hello hash not a string': [0, 'client', 'p', '1.0.0', Buffer.alloc(32), {}],
    'hello info null': [0, 'client', 'p', '1.0.0', HASH, null],
    'hello info array': [0, 'client', 'p', '1.0.0', HASH, []],
    'hello info bytes': [0, 'client', 'p', '1.0.0', HASH, Buffer.alloc(1)],
    'call short': [1, 1, 'm', null],
    'call long': [1, 1, 'm', null, null, null],
    'call method not a string': [1, 1, 5, null, null],
    'call meta array': [1, 1, 'm', null, []],
    'call meta string': [1, 1, 'm', null, 'x'],
    'call meta false': [1, 1, 'm', null, false],
    'call meta timeoutMs negative': [1, 1, 'm', null, { timeoutMs: -1 }],
    'call meta timeoutMs NaN': [1, 1, 'm', null, { timeoutMs: Number.NaN }],
    'call meta timeoutMs string': [1, 1, 'm', null, { timeoutMs: '5' }],
    'call meta timeoutMs null': [1, 1, 'm', null, { timeoutMs: null }],
    'call meta service not a string': [1, 1, 'm', null, { service: 1 }],
    'peer binding without name': [8, 1, { uid: 0 }],
    'peer binding name not a string': [8, 1, { name: 1 }],
    'peer range past 4095': [8, 4096, null],
    'reply short': [2, 1],
    'reply long': [2, 1, null, null],
    'error short': [3, 1],
    'error long': [3, 1, { code: 'C', message: 'm' }, null],
    'error body not a map': [3, 1, 'ERR_X'],
    'error body array': [3, 1, ['C', 'm']],
    'error code missing': [3, 1, { message: 'm' }],
    'error code not a string': [3, 1, { code: 1, message: 'm' }],
    'error message missing': [3, 1, { code: 'C' }],
    'error message not a string': [3, 1, { code: 'C', message: null }],
    'error data array': [3, 1, { code: 'C', message: 'm', data: [] }],
    'error data string': [3, 1, { code: 'C', message: 'm', data: 'x' }],
    'event short': [4, 0, 'e'],
    'event long': [4, 0, 'e', null, null],
    'event name not a string': [4, 0, 1, null],
    'cancel short': [5, 1],
    'cancel long': [5, 1, 'cancelled', null],
    'cancel reason timeout': [5, 1, 'timeout'],
    'cancel reason missing': [5, 1, null],
    'goodbye short': [6],
    'goodbye long': [6, 'a', 'b'],
    'goodbye reason not a string': [6, 1],
  };
  for (const [name, wire] of Object.entries(cases)) expectCode(t, () => decodeEnvelope(encodeItem(wire)), 'ERR_BAD_FRAME', name);
});

t.test('a value describeNonPlain accepts also decodes in every envelope slot', async (t) => {
  let deep: unknown = { leaf: Buffer.from('x') };
  for (let i = 1; i < MAX_DEPTH; i++) deep = [deep];
  t.equal(describeNonPlain(deep), undefined, `${MAX_DEPTH} levels`);
  const envelopes: Envelope[] = [
    { kind: 'hello', role: 'service', protocol: 'p', version: '1.0.0', schemaHash: HASH, info: { deep: (deep as unknown[])[0] } },
    { kind: 'call', id: 1, method: 'm', params: deep, meta: null },
    { kind: 'reply', id: 1, result: deep },
    { kind: 'error', id: 1, error: { code: 'C', message: 'm', data: { deep: (deep as unknown[])[0] } } },
    { kind: 'event', callId: 0, name: 'e', payload: deep },
  ];
  for (const e of envelopes) t.same(trip(e), e, e.kind);
});

// ---- docs/wire.md must show the bytes the encoder really writes ----

/** The docs' dump format: offset, then 16 bytes per line as lowercase hex pairs. */
function hexDump(frame: Buffer): string {
  const lines: string[] = [];
  for (let i = 0; i < frame.length; i += 16) {
    lines.push(`${i.toString(16).padStart(4, '0')}  ${[...frame.subarray(i, i + 16)].map((b) => b.toString(16).padStart(2, '0')).join(' ')}`);
  }
  return lines.join('\n');
}

t.test('docs/wire.md: example frames match the encoder, and every error code is listed', async (t) => {
  const doc = readFileSync(join(REPO_ROOT, 'docs/wire.md'), 'utf8');
  const examples: Envelope[] = [
    { kind: 'hello', role: 'client', protocol: 'echo', version: '1.0.0', schemaHash: HASH, info: {} },
    { kind: 'hello', role: 'service', protocol: 'echo', version: '1.0.0', schemaHash: HASH, info: { pid: 4242 } },
    { kind: 'call', id: 1, method: 'echo', params: { text: 'hi' }, meta: null },
    { kind: 'call', id: 2, method: 'echo', params: { text: 'hi' }, meta: { timeoutMs: 5000 } },
    { kind: 'reply', id: 1, result: { text: 'hi' } },
    { kind: 'error', id: 2, error: { code: 'ERR_DEADLINE', message: 'late' } },
    { kind: 'event', callId: 0, name: 'tick', payload: { n: 1 } },
    { kind: 'cancel', id: 2, reason: 'deadline' },
    { kind: 'goodbye', reason: 'idle' },
    { kind: 'activity', transactions: 1 },
    { kind: 'peer', range: 1, peer: { name: 'cli', uid: 1000 } },
    { kind: 'item', id: 3, value: { i: 0 } },
    { kind: 'credit', id: 3, items: 256 },
    { kind: 'end', id: 3 },
  ];
  for (const e of examples) {
    const frame = encodeEnvelope(e);
    t.ok(doc.includes(hexDump(frame)), `docs/wire.md shows the ${frame.length}-byte ${e.kind} frame`);
    t.same(decodeEnvelope(frame.subarray(4)), e);
  }
  for (const code of Object.keys(ERROR_CODES)) t.ok(doc.includes(`\`${code}\``), `docs/wire.md lists ${code}`);
});

t.test('docs/wire.md: the schema-hash example is what lib/protocol/hash.ts computes', async (t) => {
  const doc = readFileSync(join(REPO_ROOT, 'docs/wire.md'), 'utf8');
  const text = { type: 'object', required: ['text'], properties: { text: { type: 'string' } } };
  const echo = { name: 'echo', version: '1.0.0', methods: { echo: { params: text, result: text } } };
  const canonical = canonicalJson(echo);
  t.equal(canonical, '{"methods":{"echo":{"params":{"properties":{"text":{"type":"string"}},"required":["text"],"type":"object"},"result":{"properties":{"text":{"type":"string"}},"required":["text"],"type":"object"}}},"name":"echo","version":"1.0.0"}');
  t.ok(doc.includes(canonical), 'the canonical JSON is shown');
  t.equal(schemaHash(echo), HASH);
  t.ok(doc.includes(HASH), 'the hash is shown');
});

t.test('schemaHash (JavaScript SHA-256, kept off node:crypto for helper start-up) equals node:crypto\'s SHA-256', async (t) => {
  const { createHash } = await import('node:crypto');
  const docs: unknown[] = [{}, [], 'x', { b: 1, a: [true, null, 'é€😀'] }, { long: 'a'.repeat(100_000) }];
  // Lengths around SHA-256's 64-byte blocks and its 55/56-byte padding boundary.
  for (let n = 0; n < 200; n++) docs.push({ s: 'q'.repeat(n) });
  for (const doc of docs) {
    const expected = createHash('sha256').update(canonicalJson(doc)).digest('hex');
    if (schemaHash(doc) !== expected) t.fail(`differs for ${canonicalJson(doc).slice(0, 40)}`);
  }
  t.pass(`${docs.length} documents hash alike`);
});
