// Stream flow control in memory (issue 16): the credit logic on its own, then a real
// RpcClient and RpcServer over an in-memory duplex pair — the producer is not advanced
// without credit, and a peer that ignores credit is cut off.
import t from 'tap';
import { Duplex } from 'node:stream';
import { CreditGate, ItemInbox, RECEIVER_BYTES_FACTOR, STREAM_WINDOW } from '../lib/connection/stream-flow.js';
import { RpcClient } from '../lib/connection/rpc-client.js';
import { RpcServer, type Handler } from '../lib/connection/rpc-server.js';
import { CompiledProtocol } from '../lib/protocol/compiled-protocol.js';
import { bulkheadError, type BulkheadError } from '../lib/errors.js';
import { FramedChannel } from '../lib/wire/framed-channel.js';

t.test('ItemInbox: opens a window, gives credit back in batches or when it runs dry, refuses items beyond credit', async (t) => {
  const grants: number[] = [];
  const inbox = new ItemInbox((n) => grants.push(n), 8);
  inbox.open();
  t.same(grants, [8], 'the first credit is the window');
  for (let i = 0; i < 8; i++) t.equal(inbox.push(i, 10), undefined, `item ${i} within credit`);
  t.equal(inbox.push(8, 10), 'credit', 'a ninth item without credit is refused');
  for (let i = 0; i < 3; i++) t.same(await inbox.next(), { value: i, done: false });
  t.same(grants, [8], 'no credit back before half a window is consumed');
  await inbox.next();
  t.same(grants, [8, 4], 'half a window consumed: 4 credits back');
  for (let i = 0; i < 4; i++) await inbox.next();
  t.same(grants, [8, 4, 4], 'ran dry: the rest given back at once');
  t.equal(inbox.size, 0);
  t.equal(inbox.bytesHeld, 0, 'every byte credited back');
  const waiting = inbox.next();
  t.equal(inbox.push('late'), undefined, 'an item for a waiting consumer');
  t.same(await waiting, { value: 'late', done: false });
  t.same(grants.slice(3), [1], 'taken at once, so credited at once');
  inbox.push('queued');
  inbox.finish(bulkheadError('ERR_INTERRUPTED', 'gone'));
  t.same(await inbox.next(), { value: 'queued', done: false }, 'queued items come before the error');
  const err = await inbox.next().then(() => undefined, (e: BulkheadError) => e);
  t.equal(err?.code, 'ERR_INTERRUPTED');
  t.same(grants.slice(4), [], 'no credit after the end');
});

t.test('ItemInbox: enforces the byte window itself and credits large items as soon as they are taken', async (t) => {
  const grants: number[] = [];
  const inbox = new ItemInbox((n) => grants.push(n), 8, 100);
  inbox.open();
  // The receiver allows RECEIVER_BYTES_FACTOR × 100 bytes (re-encoding hops may grow items).
  t.equal(inbox.push('a', 60), undefined, '60 bytes');
  t.equal(inbox.push('b', 340), undefined, 'one item may overshoot the limit (the sender checks before it sends)');
  t.equal(inbox.bytesHeld, 400);
  t.equal(inbox.push('c', 1), 'bytes', 'an item sent while 4 × 100 bytes or more were unacknowledged is refused, credit or not');
  t.same(await inbox.next(), { value: 'a', done: false });
  t.same(grants, [8, 1], 'a quarter of the byte window taken: credited at once, though "b" is still queued');
  t.equal(inbox.bytesHeld, 340, 'the credited item no longer counts');
  t.equal(inbox.push('c', 30), undefined, '340 bytes held: the sender may send again');
  t.same(await inbox.next(), { value: 'b', done: false });
  t.same(grants, [8, 1, 1]);
  t.same(await inbox.next(), { value: 'c', done: false });
  t.same(grants, [8, 1, 1, 1], 'ran dry');
  t.equal(inbox.bytesHeld, 0);
  // Small items are still credited in batches while the consumer keeps some queued.
  for (let i = 0; i < 6; i++) inbox.push(i, 2);
  for (let i = 0; i < 3; i++) await inbox.next();
  t.same(grants.slice(4), [], 'three small items taken, three still queued: no credit yet');
});

t.test('CreditGate: credit and the byte cap both hold the producer; acknowledgements free bytes oldest first', async (t) => {
  const gate = new CreditGate(100);
  t.notOk(gate.canSend, 'no credit before the first grant');
  let woke = false;
  const ready = gate.ready().then(() => { woke = true; });
  gate.grant(3);
  await ready;
  t.ok(woke, 'a grant wakes the producer');
  gate.sent(60);
  t.ok(gate.canSend, '60 of 100 bytes, 2 credits left');
  gate.sent(60);
  t.notOk(gate.canSend, 'over the byte cap (one item may overshoot it)');
  gate.grant(1);
  t.ok(gate.canSend, 'the first item acknowledged: 60 bytes outstanding');
  t.equal(gate.unacknowledged, 1);
  gate.sent(10);
  gate.sent(10);
  t.notOk(gate.canSend, 'out of credit');
  gate.close();
  t.ok(gate.canSend, 'closed: the producer is woken to see the end');
});

/** Two in-memory duplex ends, each writing into the other. */
function duplexPair(): [Duplex, Duplex] {
  const make = (peer: () => Duplex) => new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      peer().push(chunk);
      callback();
    },
    final(callback) {
      peer().push(null);
      callback();
    },
  });
  const a: Duplex = make(() => b);
  const b: Duplex = make(() => a);
  return [a, b];
}

const PROTOCOL = CompiledProtocol.from({
  name: 'mem.streams',
  version: '1.0.0',
  methods: {
    numbers: { params: { type: 'object' }, yields: { type: 'integer' }, result: { type: 'integer' } },
    total: { params: { type: 'object' }, accepts: { type: 'integer' }, result: { type: 'integer' } },
    blobs: { params: { type: 'object' }, yields: {}, result: { type: 'integer' } },
    upload: { params: { type: 'object' }, accepts: {}, result: { type: 'integer' } },
  },
}, 'in-memory protocol');

function connectPair(handlers: Record<string, Handler>) {
  const [clientEnd, serviceEnd] = duplexPair();
  let serverClosed!: (error: BulkheadError | undefined) => void;
  const serviceClosed = new Promise<BulkheadError | undefined>((resolve) => (serverClosed = resolve));
  const server = new RpcServer(new FramedChannel(serviceEnd), PROTOCOL, handlers, { goodbye: () => {}, closed: (error) => serverClosed(error) });
  const channel = new FramedChannel(clientEnd);
  const rpc = new RpcClient(channel, PROTOCOL, { broadcast: () => {}, eventError: () => {} });
  channel.attach({ envelope: (e, body) => rpc.receive(e, body.length), closed: (err) => rpc.interrupt(err ?? bulkheadError('ERR_INTERRUPTED', 'closed')) });
  rpc.sendHello({});
  t.teardown(() => { clientEnd.destroy(); serviceEnd.destroy(); });
  return { rpc, server, channel, serviceEnd, serviceClosed };
}

t.test('a generator is not advanced past the window while nobody reads; reading drains it all', async (t) => {
  let pulled = 0;
  const { rpc, server } = connectPair({
    numbers: (async function* () {
      for (let i = 0; i < 2000; i++) {
        pulled++;
        yield i;
      }
      return 2000;
    }) as unknown as Handler,
  });
  await rpc.ready;
  const stream = rpc.stream('numbers', {});
  // Let the two ends exchange everything they can without the consumer.
  for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
  t.ok(pulled <= STREAM_WINDOW.items + 1, `the producer stopped at the window: ${pulled} pulled (window ${STREAM_WINDOW.items})`);
  t.equal(server.openStreams, 1);
  let n = 0;
  for (let r = await stream.next(); r.done !== true; r = await stream.next()) n++;
  t.equal(n, 2000, 'every item once read');
  t.equal(await stream.result, 2000);
  t.equal(server.openStreams, 0, 'the server forgot the stream');
  t.equal(rpc.inFlight, 0, 'the client forgot the call');
});

t.test('caller input is pulled only as the service reads it', async (t) => {
  let pulled = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const { rpc } = connectPair({
    total: (async (_params: unknown, ctx: { input: AsyncIterable<number> }) => {
      await gate;
      let sum = 0;
      for await (const x of ctx.input) sum += x;
      return sum;
    }) as unknown as Handler,
  });
  await rpc.ready;
  function* input() {
    for (let i = 1; i <= 1000; i++) {
      pulled++;
      yield i;
    }
  }
  const stream = rpc.stream('total', {}, { input: input() });
  for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
  t.ok(pulled <= STREAM_WINDOW.items + 1, `input pulled only up to the window while the service does not read: ${pulled}`);
  release();
  t.equal(await stream.result, 500_500);
  t.equal(pulled, 1000);
});

t.test('a service that sends items without credit is cut off with ERR_BAD_FRAME', async (t) => {
  const { rpc, serviceEnd } = connectPair({
    numbers: (async function* () {
      yield 1;
      await new Promise(() => {}); // never finishes by itself
    }) as unknown as Handler,
  });
  await rpc.ready;
  const stream = rpc.stream('numbers', {});
  t.same(await stream.next(), { value: 1, done: false });
  // A hostile service floods items for the call, far beyond the window it was granted.
  const hostile = new FramedChannel(serviceEnd);
  for (let i = 0; i < STREAM_WINDOW.items * 2; i++) hostile.send({ kind: 'item', id: 1, value: i });
  const err = await stream.result.then(() => undefined, (e: BulkheadError) => e);
  t.equal(err?.code, 'ERR_BAD_FRAME', 'the stream fails with the reason the channel closed');
  t.equal(rpc.channel.open, false, 'the channel was closed');
});

t.test('a service that sends more than the byte window, within its item credit, is cut off with ERR_BAD_FRAME', async (t) => {
  const { rpc, serviceEnd } = connectPair({
    blobs: (async function* () {
      yield 1;
      await new Promise(() => {}); // never finishes by itself
    }) as unknown as Handler,
  });
  await rpc.ready;
  const stream = rpc.stream('blobs', {});
  t.same(await stream.next(), { value: 1, done: false });
  // 1 MiB items with 255 credits in hand: a bulkhead sender stops at 4 MiB unacknowledged; this one does not.
  const hostile = new FramedChannel(serviceEnd);
  const chunk = Buffer.alloc(1024 * 1024, 1);
  const limit = RECEIVER_BYTES_FACTOR * STREAM_WINDOW.bytes / chunk.length;
  for (let i = 0; i < limit + 2; i++) hostile.send({ kind: 'item', id: 1, value: chunk });
  const err = await stream.result.then(() => undefined, (e: BulkheadError) => e);
  t.equal(err?.code, 'ERR_BAD_FRAME', 'the stream fails with the reason the channel closed');
  t.match(err?.message, /byte window/, 'the message names the byte window');
  t.equal(rpc.channel.open, false, 'the channel was closed');
  t.ok(stream.buffered <= limit + 1, `at most ${RECEIVER_BYTES_FACTOR} windows plus one item were held: ${stream.buffered} items`);
});

t.test('a caller that sends more than the byte window is cut off by the service', async (t) => {
  let served = 0;
  const { rpc, server, channel, serviceClosed } = connectPair({
    upload: (async (_params: unknown, ctx: { input: AsyncIterable<Uint8Array> }) => {
      await new Promise(() => {}); // never reads: everything sent stays queued
      for await (const _ of ctx.input) served++;
      return served;
    }) as unknown as Handler,
  });
  await rpc.ready;
  // A stream with no input from the RpcClient; the caller's items come from a hostile writer on its channel.
  const stream = rpc.stream('upload', {}, { input: (async function* () { await new Promise(() => {}); })() });
  // Wait for the service's first credit: the window is open.
  while (server.openStreams === 0) await new Promise((resolve) => setImmediate(resolve));
  const chunk = Buffer.alloc(1024 * 1024, 2);
  for (let i = 0; i < RECEIVER_BYTES_FACTOR * STREAM_WINDOW.bytes / chunk.length + 2; i++) channel.send({ kind: 'item', id: 1, value: chunk });
  const err = await stream.result.then(() => undefined, (e: BulkheadError) => e);
  t.equal(err?.code, 'ERR_INTERRUPTED', 'the service hung up on the caller');
  const reason = await serviceClosed;
  t.equal(reason?.code, 'ERR_BAD_FRAME', 'the service closed the channel for a protocol violation');
  t.match(String(reason?.message), /byte window/, 'the byte window, not credit');
});
