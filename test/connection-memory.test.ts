/**
 * Connection logic in memory (the fast tier; see test/memory-pair.ts): an RpcClient and
 * an RpcServer over FramedChannels on an in-memory duplex pair, no process. Call ids,
 * deadlines, AbortSignal cancellation in both directions, backpressure (bounded in-flight
 * and a peer that stops reading), interruption, and the frame limits. What needs a real
 * process (exit codes, relaunch, sandboxes) stays in the process tier.
 */
import t from 'tap';
import type { HandlerContext } from '../lib/connection/rpc-server.js';
import { bulkheadError, type BulkheadError } from '../lib/errors.js';
import { RpcServer } from '../lib/connection/rpc-server.js';
import { FramedChannel } from '../lib/wire/framed-channel.js';
import { ID_RANGE_SIZE, encodeEnvelope, type CallEnvelope } from '../lib/wire/envelope.js';
import { encodeFrame } from '../lib/wire/frame-decoder.js';
import { encodeItem } from '../lib/wire/codec.js';
import { deferred, duplexPair, envelopesWritten, memoryProtocol, rpcPair, type RpcPairOptions } from './memory-pair.js';
import { recordUncaught, rejection } from './helpers.js';

const uncaught = recordUncaught();
const started = performance.now();

/** A handler call the test holds: it answers when released, or rejects when its signal aborts. */
interface Held {
  tag: number | undefined;
  ctx: HandlerContext;
  release(): void;
  /** Makes the handler reject with `error`. */
  fail(error: Error): void;
  aborted: Promise<unknown>;
}

/** The test service: handlers plus what they saw. */
function service() {
  const held: Held[] = [];
  const heldWaiters: Array<() => void> = [];
  let running = 0;
  let peakRunning = 0;
  const handlers = {
    echo: (p: { text: string }) => ({ text: p.text }),
    wait: (p: { tag?: number }, ctx: HandlerContext) => {
      running++;
      peakRunning = Math.max(peakRunning, running);
      const abortSeen = deferred<unknown>();
      return new Promise((resolve, reject) => {
        const onAbort = () => {
          abortSeen.resolve(ctx.signal.reason);
          reject(ctx.signal.reason as Error);
        };
        // Reading ctx.signal creates it; a call aborted earlier sees it aborted already.
        if (ctx.signal.aborted) onAbort();
        else ctx.signal.addEventListener('abort', onAbort, { once: true });
        held.push({ tag: p.tag, ctx, release: () => resolve({ tag: p.tag }), fail: reject, aborted: abortSeen.promise });
        heldWaiters.splice(0).forEach((wake) => wake());
      }).finally(() => running--);
    },
    count: (p: { n: number; bad?: boolean }, ctx: HandlerContext) => {
      for (let i = 0; i < p.n; i++) ctx.emit('tick', p.bad === true ? { i: 'not a number' } : { i });
      return { sent: p.n };
    },
    blob: (p: { size: number }) => ({ bytes: Buffer.alloc(p.size, 7) }),
    sink: () => null,
    wrongResult: () => ({ count: 'many' }),
  };
  /** Resolves once `n` wait() calls are being held. */
  const holding = async (n: number): Promise<Held[]> => {
    while (held.length < n) await new Promise<void>((wake) => heldWaiters.push(wake));
    return held;
  };
  return { handlers, held, holding, peak: () => peakRunning };
}

function pair(extra: Partial<RpcPairOptions> = {}) {
  const s = service();
  const p = rpcPair({ handlers: s.handlers, ...extra });
  t.teardown(() => {
    p.clientEnd.destroy();
    p.serverEnd.destroy();
  });
  return Object.assign(p, { service: s }); // the same object: rpcPair counts goodbyes on it
}

const calls = (envelopes: ReturnType<typeof envelopesWritten>) => envelopes.filter((e): e is CallEnvelope => e.kind === 'call');

t.test('hello, then calls: ids count up from 1, answers find their call even out of order', async (t) => {
  const p = pair();
  const hello = await p.client.ready;
  t.match(hello, { role: 'service', protocol: 'com.test.memory' });
  t.same(await p.client.call('echo', { text: 'hi' }), { text: 'hi' });
  const waits = [1, 2, 3].map((tag) => p.client.call('wait', { tag }));
  const held = await p.service.holding(3);
  // Answer in reverse: each reply carries its call's id, and only that call settles.
  for (const h of [...held].reverse()) h.release();
  t.same(await Promise.all(waits), [{ tag: 1 }, { tag: 2 }, { tag: 3 }]);
  t.same(calls(envelopesWritten(p.clientEnd)).map((c) => c.id), [1, 2, 3, 4], 'ids 1, 2, 3, 4 on the wire');
  t.equal(p.client.inFlight, 0);
});

t.test('an id range: a routed client numbers its calls inside its own range', async (t) => {
  const p = pair({ client: { idRange: 3 } });
  await p.client.call('echo', { text: 'a' });
  await p.client.call('echo', { text: 'b' });
  t.same(calls(envelopesWritten(p.clientEnd)).map((c) => c.id), [3 * ID_RANGE_SIZE, 3 * ID_RANGE_SIZE + 1]);
});

t.test('a result or event that breaks the protocol is refused by the client (the receiver validates)', async (t) => {
  const p = pair();
  t.equal((await rejection(p.client.call('wrongResult', {}))).code, 'ERR_INVALID_RESULT');
  // Params are checked by the server before any handler runs.
  const bad = await rejection(p.client.call('echo', { text: 42 }));
  t.equal(bad.code, 'ERR_INVALID_PARAMS');
  t.equal((await rejection(p.client.call('unhandled', {}))).code, 'ERR_UNKNOWN_METHOD', 'declared but no handler');
  t.equal((await rejection(p.client.call('nope', {}))).code, 'ERR_UNKNOWN_METHOD', 'not declared');
  // Per-call events reach the call's owner; invalid ones arrive as errors.
  const events: unknown[] = [];
  const errors: string[] = [];
  const owner = { deliverEvent: (name: string, payload: unknown) => events.push([name, payload]), deliverError: (e: BulkheadError) => errors.push(e.code) };
  t.same(await p.client.call('count', { n: 3 }, { owner }), { sent: 3 });
  t.same(events, [['tick', { i: 0 }], ['tick', { i: 1 }], ['tick', { i: 2 }]], 'events before the reply, in order');
  await p.client.call('count', { n: 1, bad: true }, { owner });
  t.same(errors, ['ERR_INVALID_RESULT']);
  p.server.broadcast('news', { value: 7 });
  p.server.broadcast('undeclared', {});
  await p.client.call('echo', { text: 'sync' });
  t.same(p.broadcasts, [['news', { value: 7 }]]);
  t.same(p.eventErrors.map((e) => e.code), ['ERR_INVALID_RESULT']);
  t.equal(p.client.usable, true, 'none of this closed the connection');
});

t.test('deadlines: the call fails with ERR_DEADLINE, the handler sees its signal abort, a late answer is dropped', async (t) => {
  const p = pair();
  const call = p.client.call('wait', { tag: 1 }, { timeoutMs: 20 });
  const [held] = await p.service.holding(1);
  const err = await rejection(call);
  t.equal(err.code, 'ERR_DEADLINE');
  t.match(err.data, { method: 'wait', timeoutMs: 20 });
  t.equal(((await held!.aborted) as BulkheadError).code, 'ERR_DEADLINE', 'the cancel crossed with reason "deadline"');
  t.match(envelopesWritten(p.clientEnd).find((e) => e.kind === 'cancel'), { kind: 'cancel', id: 1, reason: 'deadline' });
  held!.release(); // too late: the server sends nothing for an aborted call, the client ignores strays
  t.same(await p.client.call('echo', { text: 'after' }), { text: 'after' });
  t.equal(envelopesWritten(p.serverEnd).filter((e) => e.kind === 'reply' && e.id === 1).length, 0, 'no answer to the abandoned call');
});

t.test('AbortSignal, caller → handler: the call rejects at once and the handler\'s ctx.signal aborts', async (t) => {
  const p = pair();
  const controller = new AbortController();
  const call = p.client.call('wait', { tag: 1 }, { signal: controller.signal });
  const [held] = await p.service.holding(1);
  controller.abort();
  t.equal((await rejection(call)).code, 'ERR_CANCELLED');
  t.equal(((await held!.aborted) as BulkheadError).code, 'ERR_CANCELLED');
  t.match(envelopesWritten(p.clientEnd).find((e) => e.kind === 'cancel'), { id: 1, reason: 'cancelled' });
  // A signal aborted before the call: nothing is sent.
  const before = calls(envelopesWritten(p.clientEnd)).length;
  t.equal((await rejection(p.client.call('echo', { text: 'x' }, { signal: AbortSignal.abort() }))).code, 'ERR_CANCELLED');
  // A BulkheadError reason is the error the caller gets.
  const own = new AbortController();
  const reasoned = p.client.call('wait', {}, { signal: own.signal });
  await p.service.holding(2);
  own.abort(bulkheadError('ERR_CLOSED', 'closing'));
  t.equal((await rejection(reasoned)).code, 'ERR_CLOSED');
  t.equal(calls(envelopesWritten(p.clientEnd)).length, before + 1, 'only the reasoned call went out');
});

t.test('AbortSignal, handler side → caller: when the channel goes, running handlers abort and callers are interrupted', async (t) => {
  const p = pair();
  const call = p.client.call('wait', { tag: 1 });
  const [held] = await p.service.holding(1);
  p.serverEnd.destroy(); // the service side dies mid-call
  const err = await rejection(call);
  t.equal(err.code, 'ERR_INTERRUPTED');
  t.equal(((await held!.aborted) as BulkheadError).code, 'ERR_INTERRUPTED', 'the handler\'s signal aborted too');
  // A handler that gives up by itself (rejects with its own code) reaches the caller coded.
  const q = pair();
  const giveUp = q.client.call('wait', {});
  const [h] = await q.service.holding(1);
  h!.fail(Object.assign(new Error('gave up'), { code: 'ERR_GAVE_UP' }));
  const coded = await rejection(giveUp);
  t.equal(coded.code, 'ERR_SERVICE_ERROR', 'a service cannot claim a framework code');
  t.equal(coded.data['remoteCode'], 'ERR_GAVE_UP', 'its own code travels as remoteCode');
  t.equal(q.client.usable, true);
});

t.test('backpressure, bounded in flight: calls past maxInFlight queue, past maxQueued fail with ERR_BACKPRESSURE', async (t) => {
  const p = pair({ client: { maxInFlight: 2, maxQueued: 1 } });
  await p.client.ready;
  const a = p.client.call('wait', { tag: 1 });
  const b = p.client.call('wait', { tag: 2 });
  const c = p.client.call('wait', { tag: 3 }); // queued
  const refused = await rejection(p.client.call('wait', { tag: 4 }));
  t.equal(refused.code, 'ERR_BACKPRESSURE');
  t.match(refused.data, { maxInFlight: 2, maxQueued: 1 });
  t.equal(p.client.inFlight, 3);
  const held = await p.service.holding(2);
  t.equal(calls(envelopesWritten(p.clientEnd)).length, 2, 'the third call waits in the client, not on the wire');
  held[0]!.release();
  await a;
  const [, , third] = await p.service.holding(3);
  t.equal(third!.tag, 3, 'the queued call went out when a slot freed');
  held[1]!.release();
  third!.release();
  t.same(await Promise.all([b, c]), [{ tag: 2 }, { tag: 3 }]);
  t.equal(p.service.peak(), 2, 'never more than maxInFlight handlers at once');
});

t.test('backpressure, a peer that stops reading: the writer is held back, then cut off with ERR_BACKPRESSURE', async (t) => {
  const limit = 64 * 1024;
  // As a daemon cuts off a client that stops reading: the client trusts the daemon's codes.
  const p = pair({ serverChannel: { maxBufferedBytes: limit }, client: { trustPeerCodes: true }, highWaterMark: 4 * 1024 });
  await p.client.call('echo', { text: 'ready' });
  p.clientEnd.pause(); // the client stops reading
  let sent = 0;
  let refusedAt: number | undefined;
  while (sent < 10_000) {
    const ok = p.serverChannel.send({ kind: 'event', callId: 0, name: 'news', payload: { value: sent } });
    sent++;
    if (!ok) {
      refusedAt ??= sent;
      if (!p.serverChannel.open) break;
    }
  }
  t.ok(refusedAt !== undefined && refusedAt < sent, `send() returned false (first at ${refusedAt ?? '-'}) before the channel gave up`);
  const closed = await p.serverClosed;
  t.equal(closed?.code, 'ERR_BACKPRESSURE');
  t.ok((closed?.data as { buffered: number }).buffered > limit, 'past the limit, not before');
  p.clientEnd.resume();
  const why = await p.clientClosed;
  t.ok(why === undefined || why.code === 'ERR_BACKPRESSURE', `the client saw the close (${why?.code ?? 'clean end'})`);
  t.equal(p.client.peerError?.code, 'ERR_BACKPRESSURE', 'and was told why');
  t.equal((await rejection(p.client.call('echo', { text: 'x' }))).code, 'ERR_BACKPRESSURE', 'later calls fail with the cause');
});

t.test('backpressure, a slow reader: a burst larger than every buffer arrives whole and in order', async (t) => {
  const p = pair({ highWaterMark: 1024 });
  const events: unknown[] = [];
  const owner = { deliverEvent: (_: string, payload: unknown) => events.push((payload as { i: number }).i), deliverError: () => events.push('error') };
  t.same(await p.client.call('count', { n: 5000 }, { owner }), { sent: 5000 });
  t.equal(events.length, 5000);
  t.ok(events.every((i, k) => i === k), 'every tick, in order');
});

t.test('interruption: every pending and queued call rejects with a typed error, none hangs, later calls too', async (t) => {
  const p = pair({ client: { maxInFlight: 2 } });
  const pending = [1, 2, 3, 4].map((tag) => p.client.call('wait', { tag }));
  await p.service.holding(2);
  p.serverEnd.destroy();
  const errors = await Promise.all(pending.map((c) => rejection(c)));
  t.same(errors.map((e) => e.code), ['ERR_INTERRUPTED', 'ERR_INTERRUPTED', 'ERR_INTERRUPTED', 'ERR_INTERRUPTED'], 'in flight and queued alike');
  t.equal(p.client.inFlight, 0);
  t.equal((await rejection(p.client.call('echo', { text: 'x' }))).code, 'ERR_INTERRUPTED');
  t.equal(p.client.usable, false);
});

t.test('goodbye: the server finishes its calls; interrupt() is idempotent (the first error wins)', async (t) => {
  const p = pair();
  const call = p.client.call('wait', { tag: 9 });
  const [held] = await p.service.holding(1);
  p.clientChannel.sayGoodbye('test');
  await p.client.call('echo', { text: 'x' }).then(() => t.fail('a call after goodbye is refused'), (err: BulkheadError) => t.equal(err.data['remoteCode'], 'ERR_CLOSED', 'new calls: shutting down'));
  t.equal(p.goodbyes, 1);
  const drained = p.server.drained();
  held!.release();
  t.same(await call, { tag: 9 }, 'the call in flight still got its answer');
  await drained;
  p.client.interrupt(bulkheadError('ERR_CLOSED', 'first'));
  p.client.interrupt(bulkheadError('ERR_INTERRUPTED', 'second'));
  t.equal((await rejection(p.client.call('echo', { text: 'x' }))).code, 'ERR_CLOSED');
});

t.test('frame limits: an oversize call or answer fails that call only; the connection lives on', async (t) => {
  const maxFrameBytes = 4096;
  const p = pair({ clientChannel: { maxFrameBytes }, serverChannel: { maxFrameBytes } });
  const big = await rejection(p.client.call('sink', { blob: 'x'.repeat(maxFrameBytes) }));
  t.equal(big.code, 'ERR_FRAME_TOO_LARGE');
  t.match(big.data, { limit: maxFrameBytes });
  const answer = await rejection(p.client.call('blob', { size: maxFrameBytes }));
  t.equal(answer.code, 'ERR_FRAME_TOO_LARGE', 'the server could not send its result and said so');
  t.same(await p.client.call('blob', { size: 16 }), { bytes: Buffer.alloc(16, 7) }, 'the connection still works');
  t.equal(p.client.usable, true);
});

t.test('frame limits: a header over the limit, or garbage, closes the connection with that code; calls fail with it', async (t) => {
  const maxFrameBytes = 4096;
  for (const [what, bytes, code] of [
    ['a header declaring maxFrameBytes + 1', (() => { const b = Buffer.alloc(4); b.writeUInt32BE(maxFrameBytes + 1); return b; })(), 'ERR_FRAME_TOO_LARGE'],
    ['a frame that is not CBOR', encodeFrame(Buffer.from([0xff, 0xff, 0xff])), 'ERR_BAD_FRAME'],
    ['a call from the service side', encodeEnvelope({ kind: 'call', id: 1, method: 'echo', params: {}, meta: null }), 'ERR_BAD_FRAME'],
    ['an unknown envelope kind', encodeFrame(encodeItem([99, 1])), 'ERR_BAD_FRAME'],
  ] as const) {
    const p = pair({ clientChannel: { maxFrameBytes }, serverChannel: { maxFrameBytes } });
    await p.client.ready;
    const call = p.client.call('wait', {});
    await p.service.holding(1);
    p.serverEnd.write(bytes); // the hostile service writes raw bytes
    const closed = await p.clientClosed;
    t.equal(closed?.code, code, `${what}: the channel closed with ${code}`);
    t.equal((await rejection(call)).code, code, `${what}: the pending call failed with it`);
  }
});

t.test('hello: a mismatched protocol fails ready and every call with ERR_PROTOCOL_MISMATCH', async (t) => {
  const p = pair({ serverProtocol: memoryProtocol('com.test.echo') });
  const err = await rejection(p.client.ready);
  t.equal(err.code, 'ERR_PROTOCOL_MISMATCH');
  t.equal((await rejection(p.client.call('echo', { text: 'x' }))).code, 'ERR_PROTOCOL_MISMATCH');
});

t.test('a call before hello is a protocol violation: the server closes with ERR_BAD_FRAME, no handler runs', async (t) => {
  const [clientEnd, serverEnd] = duplexPair();
  t.teardown(() => clientEnd.destroy());
  const s = service();
  const closed = deferred<BulkheadError | undefined>();
  new RpcServer(new FramedChannel(serverEnd), memoryProtocol(), s.handlers, { goodbye: () => undefined, closed: closed.resolve });
  clientEnd.resume(); // read (and drop) the server's hello and its error frame
  clientEnd.write(encodeEnvelope({ kind: 'call', id: 5, method: 'wait', params: {}, meta: null }));
  t.equal((await closed.promise)?.code, 'ERR_BAD_FRAME');
  t.equal(s.held.length, 0, 'no handler ran');
  t.match(envelopesWritten(serverEnd).at(-1), { kind: 'error', id: 0, error: { code: 'ERR_BAD_FRAME' } }, 'the client was told why');
});

t.test('no uncaught exception or unhandled rejection', async (t) => {
  t.same(uncaught, []);
  const ms = performance.now() - started; // a figure to read, not a claim: speed lives in bench/
  t.comment(`in-memory tier ran in ${ms.toFixed(0)} ms`);
});

