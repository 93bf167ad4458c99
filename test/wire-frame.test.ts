/**
 * FrameDecoder and encodeFrame: splitting at every byte boundary, the size
 * limit checked from the header alone, views vs copies, bounded memory.
 */
import t from 'tap';
import type { BulkheadError } from '../lib/errors.js';
import { DEFAULT_MAX_FRAME_BYTES, FRAME_HEADER_BYTES, FrameDecoder, encodeFrame } from '../lib/wire/frame-decoder.js';
import { expectCode, prng } from './helpers.js';



/** Counts Buffer.allocUnsafe/alloc calls of at least `minBytes` while `fn` runs. */
function countAllocations<T>(minBytes: number, fn: () => T): { sizes: number[]; result: T } {
  const { allocUnsafe, allocUnsafeSlow, alloc } = Buffer;
  const sizes: number[] = [];
  Buffer.allocUnsafe = (size: number) => {
    if (size >= minBytes) sizes.push(size);
    return allocUnsafe(size);
  };
  // Bodies of 16 KiB or more are allocated by body-pool.ts, as buffers of their own.
  Buffer.allocUnsafeSlow = (size: number) => {
    if (size >= minBytes) sizes.push(size);
    return allocUnsafeSlow(size);
  };
  Buffer.alloc = ((size: number, fill?: string | Uint8Array | number, encoding?: BufferEncoding) => {
    if (size >= minBytes) sizes.push(size);
    return alloc(size, fill, encoding);
  }) as typeof Buffer.alloc;
  try {
    return { sizes, result: fn() };
  } finally {
    Buffer.allocUnsafe = allocUnsafe;
    Buffer.allocUnsafeSlow = allocUnsafeSlow;
    Buffer.alloc = alloc;
  }
}

/**
 * True when `view` lies inside `chunk`'s memory. (Comparing `.buffer` alone is
 * not enough: small Buffers share Node's 8 KiB pool.)
 */
function isViewOf(view: Buffer, chunk: Buffer): boolean {
  return view.buffer === chunk.buffer && view.byteOffset >= chunk.byteOffset && view.byteOffset + view.length <= chunk.byteOffset + chunk.length;
}

/** True when the two buffers' bytes overlap in memory. */
function overlaps(a: Buffer, b: Buffer): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.length && b.byteOffset < a.byteOffset + a.length;
}

function header(length: number): Buffer {
  const h = Buffer.alloc(FRAME_HEADER_BYTES);
  h.writeUInt32BE(length, 0);
  return h;
}

const bodies = [Buffer.from('hello'), Buffer.alloc(0), Buffer.from([0, 1, 2, 255]), Buffer.alloc(300, 7), Buffer.from('x')];
const stream = Buffer.concat(bodies.map((b) => encodeFrame(b)));

t.test('constants', async (t) => {
  t.equal(FRAME_HEADER_BYTES, 4);
  t.equal(DEFAULT_MAX_FRAME_BYTES, 16 * 1024 * 1024);
  t.equal(new FrameDecoder().maxFrameBytes, DEFAULT_MAX_FRAME_BYTES);
});

t.test('encodeFrame writes a 4-byte big-endian length then the body', async (t) => {
  t.same([...encodeFrame(Buffer.from('abc'))], [0, 0, 0, 3, 0x61, 0x62, 0x63]);
  t.same([...encodeFrame(new Uint8Array(0))], [0, 0, 0, 0]);
  const big = encodeFrame(Buffer.alloc(0x010203));
  t.same([...big.subarray(0, 4)], [0x00, 0x01, 0x02, 0x03]);
  t.equal(big.length, 4 + 0x010203);
});

t.test('a stream split into two chunks at every byte boundary yields the same frames', async (t) => {
  for (let cut = 0; cut <= stream.length; cut++) {
    const d = new FrameDecoder();
    const out = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
    if (out.length !== bodies.length || out.some((b, i) => !b.equals(bodies[i]!))) {
      t.fail(`split at byte ${cut} gave different frames`);
      return;
    }
    if (d.pendingBytes !== 0) t.fail(`split at byte ${cut} left ${d.pendingBytes} bytes pending`);
  }
  t.pass(`all ${stream.length + 1} split points give the ${bodies.length} frames`);
});

t.test('a stream fed one byte at a time yields the same frames', async (t) => {
  const d = new FrameDecoder();
  const out: Buffer[] = [];
  for (let i = 0; i < stream.length; i++) out.push(...d.push(stream.subarray(i, i + 1)));
  t.same(out.map((b) => b.toString('hex')), bodies.map((b) => b.toString('hex')));
  t.equal(d.pendingBytes, 0);
});

t.test('random chunkings of random frames (seeded) yield the same frames', async (t) => {
  const rand = prng(0xb01d);
  for (let round = 0; round < 200; round++) {
    const frames = Array.from({ length: 1 + Math.floor(rand() * 20) }, () => {
      const b = Buffer.alloc(Math.floor(rand() * (rand() < 0.1 ? 5000 : 40)));
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(rand() * 256);
      return b;
    });
    const all = Buffer.concat(frames.map((f) => encodeFrame(f)));
    const d = new FrameDecoder(5000);
    const out: Buffer[] = [];
    for (let pos = 0; pos < all.length; ) {
      const n = Math.min(all.length - pos, Math.floor(rand() * 64));
      out.push(...d.push(all.subarray(pos, pos + n)));
      pos += n;
    }
    if (out.length !== frames.length || out.some((b, i) => !b.equals(frames[i]!))) {
      t.fail(`round ${round} differs`);
      return;
    }
  }
  t.pass('200 rounds agree');
});

t.test('many frames in one chunk come out in order, each a view of the chunk', async (t) => {
  const many = Array.from({ length: 1000 }, (_, i) => Buffer.from(String(i)));
  const chunk = Buffer.concat(many.map((b) => encodeFrame(b)));
  const out = new FrameDecoder().push(chunk);
  t.equal(out.length, 1000);
  t.same(out.map((b) => b.toString()), many.map((b) => b.toString()));
  t.ok(out.every((b) => isViewOf(b, chunk)), 'no frame was copied');
});

t.test('push(chunk, end) reads only the first end bytes of a reused read buffer', async (t) => {
  // What socket-reads.ts does: one buffer read into again and again, the count passed instead of a view per read.
  const frames = Array.from({ length: 50 }, (_, i) => Buffer.from('frame ' + 'y'.repeat(i * 7)));
  const wire = Buffer.concat(frames.map((b) => encodeFrame(b)));
  const read = Buffer.alloc(64, 0xaa); // stale bytes after `end` would decode as a huge header
  const d = new FrameDecoder(1024);
  const out: string[] = [];
  const random = prng(7);
  for (let at = 0; at < wire.length;) {
    const n = Math.min(1 + Math.floor(random() * 64), wire.length - at);
    wire.copy(read, 0, at, at + n);
    for (const body of d.push(read, n)) out.push(body.toString());
    at += n;
    read.fill(0xaa, n);
  }
  t.same(out, frames.map((b) => b.toString()), 'every frame, in order, nothing read past end');
  t.equal(d.error, undefined, 'the stale bytes after end never counted as a header');
  t.same(new FrameDecoder().push(encodeFrame(Buffer.from('ab')), 0), [], 'end 0: nothing');
  t.throws(() => new FrameDecoder().push(Buffer.alloc(4), 5), RangeError, 'an end past the chunk is refused');
  t.throws(() => new FrameDecoder().push(Buffer.alloc(4), -1), RangeError, 'a negative end is refused');
});

t.test('zero-length bodies', async (t) => {
  const d = new FrameDecoder();
  const out = d.push(Buffer.concat([header(0), header(0), encodeFrame(Buffer.from('a')), header(0)]));
  t.same(out.map((b) => b.length), [0, 0, 1, 0]);
  t.equal(d.pendingBytes, 0);
  t.same(new FrameDecoder().push(header(0)).map((b) => b.length), [0], 'a header alone completes a zero-length frame');
  t.same(new FrameDecoder().push(Buffer.alloc(0)), [], 'an empty chunk yields nothing');
});

t.test('a header split across chunks', async (t) => {
  const d = new FrameDecoder();
  const frame = encodeFrame(Buffer.from('body!'));
  t.same(d.push(frame.subarray(0, 1)), []);
  t.equal(d.pendingBytes, 1);
  t.same(d.push(frame.subarray(1, 3)), []);
  t.equal(d.pendingBytes, 3);
  t.same(d.push(frame.subarray(3, 4)), []);
  t.equal(d.pendingBytes, 0, 'a complete header is consumed');
  t.same(d.push(frame.subarray(4, 6)), []);
  t.equal(d.pendingBytes, 2);
  const out = d.push(frame.subarray(6));
  t.same(out.map((b) => b.toString()), ['body!']);
  t.equal(d.pendingBytes, 0);
});

t.test('a body of exactly maxFrameBytes is accepted', async (t) => {
  const d = new FrameDecoder(10);
  const out = d.push(encodeFrame(Buffer.from('0123456789')));
  t.same(out.map((b) => b.toString()), ['0123456789']);
});

t.test('limit+1 is rejected from the header alone, before any body byte', async (t) => {
  const d = new FrameDecoder(10);
  const err = expectCode(t, () => d.push(header(11)), 'ERR_FRAME_TOO_LARGE');
  t.same(err?.data, { declared: 11, limit: 10 });
});

t.test('limit+1 is rejected when the header arrives byte by byte', async (t) => {
  const d = new FrameDecoder(10);
  const h = header(11);
  t.same(d.push(h.subarray(0, 1)), []);
  t.same(d.push(h.subarray(1, 2)), []);
  t.same(d.push(h.subarray(2, 3)), []);
  expectCode(t, () => d.push(h.subarray(3, 4)), 'ERR_FRAME_TOO_LARGE');
});

t.test('frames before an oversize header in the same chunk are returned; the error follows', async (t) => {
  const d = new FrameDecoder(10);
  t.equal(d.error, undefined);
  const out = d.push(Buffer.concat([encodeFrame(Buffer.from('ok')), encodeFrame(Buffer.from('fine')), header(1000), Buffer.from('junk')]));
  t.same(out.map((b) => b.toString()), ['ok', 'fine'], 'the complete frames, in order');
  t.equal(d.error?.code, 'ERR_FRAME_TOO_LARGE', 'the error is left on the decoder');
  t.same(d.error?.data, { declared: 1000, limit: 10 });
  const again = expectCode(t, () => d.push(Buffer.alloc(0)), 'ERR_FRAME_TOO_LARGE');
  t.equal(again, d.error, 'the next push throws it, even with no bytes');
  expectCode(t, () => d.push(encodeFrame(Buffer.from('later'))), 'ERR_FRAME_TOO_LARGE');

  // The same bytes split differently give the same frames and the same error.
  const bytes = Buffer.concat([encodeFrame(Buffer.from('ok')), encodeFrame(Buffer.from('fine')), header(1000)]);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const split = new FrameDecoder(10);
    const frames: string[] = [];
    let code: string | undefined;
    for (const part of [bytes.subarray(0, cut), bytes.subarray(cut)]) {
      try {
        frames.push(...split.push(part).map((b) => b.toString()));
      } catch (err) {
        code = (err as BulkheadError).code;
        break;
      }
    }
    code ??= split.error?.code;
    if (frames.join() !== 'ok,fine' || code !== 'ERR_FRAME_TOO_LARGE') {
      t.fail(`split at ${cut}: [${frames.join()}] then ${String(code)}`);
      return;
    }
  }
  t.pass('every split point: both frames, then ERR_FRAME_TOO_LARGE');
});

t.test('a declared length of 0xFFFFFFFF is rejected without allocating', async (t) => {
  const { sizes } = countAllocations(1024, () => {
    expectCode(t, () => new FrameDecoder().push(header(0xffffffff)), 'ERR_FRAME_TOO_LARGE');
    const d = new FrameDecoder();
    d.push(header(0xffffffff).subarray(0, 2));
    expectCode(t, () => d.push(header(0xffffffff).subarray(2)), 'ERR_FRAME_TOO_LARGE');
  });
  t.same(sizes, [], 'no buffer of 1 KiB or more was allocated');
});

t.test('a bare header allocates nothing; a split body is collected in a stage, then in one buffer of the declared size', async (t) => {
  const d = new FrameDecoder();
  const size = 1 << 20;
  const first = countAllocations(1024, () => d.push(header(size)));
  t.same(first.sizes, [], 'header only: no allocation');
  const second = countAllocations(1024, () => d.push(Buffer.alloc(1, 1)));
  t.same(second.sizes, [size / 16], 'first body byte: a stage of a 16th of the body (64 KiB), not the declared size');
  // The rest in 1-byte chunks: the body's own buffer once the stage is full (a 16th arrived), nothing else; the frame is intact.
  const body = Buffer.alloc(size - 1);
  for (let i = 0; i < body.length; i++) body[i] = i & 0xff;
  const rest = countAllocations(1024, () => {
    const out: Buffer[] = [];
    for (let i = 0; i < body.length; i++) out.push(...d.push(body.subarray(i, i + 1)));
    return out;
  });
  t.same(rest.sizes, [size], 'one buffer of exactly the declared size, when the stage was full');
  t.equal(rest.result.length, 1);
  t.equal(rest.result[0]!.length, size);
  t.equal(rest.result[0]![0], 1);
  t.ok(rest.result[0]!.subarray(1).equals(body), 'body bytes in order');
  t.equal(d.pendingBytes, 0);
});

t.test('invalid maxFrameBytes is ERR_INVALID_OPTION', async (t) => {
  for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 32, '10' as unknown as number]) {
    expectCode(t, () => new FrameDecoder(bad), 'ERR_INVALID_OPTION');
  }
  t.equal(new FrameDecoder(1).maxFrameBytes, 1);
  t.equal(new FrameDecoder(0xffffffff).maxFrameBytes, 0xffffffff);
});

t.test('views vs copies', async (t) => {
  const chunk = Buffer.concat([encodeFrame(Buffer.from('abc')), encodeFrame(Buffer.from('defg')).subarray(0, 6)]);
  const d = new FrameDecoder();
  const [inside] = d.push(chunk);
  t.equal(inside!.toString(), 'abc');
  t.ok(isViewOf(inside!, chunk), 'a body inside one chunk is a view');
  t.equal(inside!.byteOffset, chunk.byteOffset + 4);
  const tail = Buffer.from('fg');
  const [spread] = d.push(tail);
  t.equal(spread!.toString(), 'defg');
  t.notOk(overlaps(spread!, chunk), 'a body spread over chunks is a copy');
  t.notOk(overlaps(spread!, tail));
  chunk.fill(0);
  tail.fill(0);
  t.equal(spread!.toString(), 'defg', 'the copy does not change when the chunks are reused');
  t.equal(inside!.toString(), '\0\0\0', 'the view does');

  // Header split from a body that then arrives whole in one chunk: still a view.
  const d2 = new FrameDecoder();
  d2.push(header(3));
  const whole = Buffer.from('xyz');
  const [view] = d2.push(whole);
  t.ok(isViewOf(view!, whole));
});
