// Large byte strings leave without being copied, yet the bytes on the wire are
// exactly those of ordinary encoding.
import t from 'tap';
import { decodeEnvelope, encodeEnvelope, encodeEnvelopeChunks, type Envelope } from '../lib/wire/envelope.js';
import { encodeFrame } from '../lib/wire/frame-decoder.js';
import { LARGE_BYTES_THRESHOLD, type FrameChunks } from '../lib/wire/large-bytes.js';
import { describeNonPlain, newPlainTally } from '../lib/wire/codec.js';

const big = (n: number, fill: number) => Buffer.alloc(n, fill);
/** The frame's bytes: chunks without large byte strings are the body alone (`headerless`), the channel adds the prefix. */
const frameOf = (c: FrameChunks): Buffer => (c.headerless === true ? encodeFrame(Buffer.concat(c.chunks)) : Buffer.concat(c.chunks));

t.test('chunked encoding equals ordinary encoding, byte for byte', async (t) => {
  const n = LARGE_BYTES_THRESHOLD;
  const cases: Envelope[] = [
    { kind: 'reply', id: 7, result: big(n, 1) },
    { kind: 'reply', id: 8, result: { a: big(n + 1, 2), b: 'text', c: [big(10, 3), big(n * 3, 4)], d: { deep: [{ x: big(70_000, 5) }] } } },
    { kind: 'call', id: 9, method: 'put', params: { key: 'k', value: new Uint8Array(big(n * 2, 6)) }, meta: { timeoutMs: 5 } },
    { kind: 'event', callId: 0, name: 'chunk', payload: [big(n, 7), big(n, 8), big(n, 9)] },
  ];
  for (const envelope of cases) {
    const { chunks, bodyLength } = encodeEnvelopeChunks(envelope);
    const joined = Buffer.concat(chunks);
    const expected = encodeEnvelope(envelope);
    t.equal(joined.length, expected.length, `${envelope.kind}: same length`);
    t.ok(joined.equals(expected), `${envelope.kind}: same bytes`);
    t.equal(bodyLength, expected.length - 4);
    t.ok(chunks.length > 1, 'sent as several chunks');
    t.same(decodeEnvelope(joined.subarray(4)), decodeEnvelope(expected.subarray(4)));
  }
});

t.test('the large Buffer itself is a chunk (no copy) and the caller\'s value is not changed', async (t) => {
  const payload = big(LARGE_BYTES_THRESHOLD * 4, 42);
  const result = { data: payload, name: 'x' };
  const { chunks } = encodeEnvelopeChunks({ kind: 'reply', id: 1, result });
  t.ok(chunks.some((c) => c === payload), 'the very same Buffer object is written');
  t.equal(result.data, payload, 'the caller\'s object still holds its Buffer');
});

t.test('small messages take the single-buffer path', async (t) => {
  const { chunks } = encodeEnvelopeChunks({ kind: 'reply', id: 1, result: { data: big(LARGE_BYTES_THRESHOLD - 1, 1) } });
  t.equal(chunks.length, 1);
});

t.test('one send-side walk: describeNonPlain counts the large byte strings, and a sender told "none" skips the search', async (t) => {
  const n = LARGE_BYTES_THRESHOLD;
  const count = (value: unknown) => {
    const tally = newPlainTally();
    t.equal(describeNonPlain(value, tally), undefined);
    return tally.large;
  };
  t.equal(count({ a: big(n - 1, 1), b: [big(10, 2)], s: 'x'.repeat(n) }), 0, 'short byte strings and long text are not large');
  t.equal(count({ a: big(n, 1), b: [big(n * 2, 2), { c: new Uint8Array(n) }] }), 3, 'each byte string of the threshold or more, at any depth');
  const small: Envelope = { kind: 'reply', id: 3, result: { data: big(n - 1, 1), name: 'x' } };
  const skipped = encodeEnvelopeChunks(small, true);
  t.equal(skipped.chunks.length, 1);
  t.equal(skipped.headerless, true, 'the body alone: the channel writes the length prefix');
  t.ok(frameOf(skipped).equals(encodeEnvelope(small)), 'same bytes as ordinary encoding');
  // A wrong hint costs a copy, never the bytes on the wire: the large Buffer is encoded inline.
  const large: Envelope = { kind: 'reply', id: 4, result: { data: big(n * 2, 9) } };
  const wrong = encodeEnvelopeChunks(large, true);
  t.equal(wrong.chunks.length, 1, 'copied into one buffer');
  t.ok(frameOf(wrong).equals(frameOf(encodeEnvelopeChunks(large))), 'same bytes as the no-copy path');
});
