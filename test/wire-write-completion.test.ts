// A channel's writes carry a completion callback only while somebody waits for its backlog to
// fall (FramedChannel.onBacklogAtMost): Node makes an object and schedules a tick for every
// write with a callback, one per message on a round trip. A waiter that comes while writes made
// without one are in flight must still be told when they complete. In memory, then over a real
// socketpair to a child process that reads only when told.
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { FramedChannel } from '../lib/wire/framed-channel.js';
import { MemoryEnd } from './memory-pair.js';

const payload = 'x'.repeat(1000);
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A channel over an in-memory pair whose writes are recorded: did each carry a callback? */
function recorded() {
  // The writer's stream takes 4 MiB before it needs a drain (so the backlog sits in the stream, not
  // in the channel's outbox); the reader buffers 4 KiB.
  const writerEnd = new MemoryEnd({ readableHighWaterMark: 4 * 1024, writableHighWaterMark: 4 * 1024 * 1024 });
  const readerEnd = new MemoryEnd({ readableHighWaterMark: 4 * 1024, writableHighWaterMark: 4 * 1024 });
  writerEnd.peer = readerEnd;
  readerEnd.peer = writerEnd;
  const callbacks: boolean[] = [];
  const write = writerEnd.write.bind(writerEnd) as (chunk: unknown, cb?: unknown) => boolean;
  writerEnd.write = ((chunk: unknown, cb?: unknown) => {
    callbacks.push(typeof cb === 'function');
    return write(chunk, cb);
  }) as typeof writerEnd.write;
  const channel = new FramedChannel(writerEnd);
  channel.attach({ envelope: () => {}, closed: () => {} });
  const send = (n: number) => {
    for (let i = 0; i < n; i++) channel.send({ kind: 'event', callId: 0, name: 'tick', payload });
  };
  return { channel, writerEnd, readerEnd, callbacks, send };
}

t.test('nobody waits: writes carry no callback; somebody waits: the flush\'s last write does', async (t) => {
  const { channel, readerEnd, callbacks, send } = recorded();
  readerEnd.on('data', () => {});
  send(3);
  await tick();
  t.same(callbacks, [false], 'one write for the three frames, without a callback');
  let told = 0;
  channel.onBacklogAtMost(0, () => told++);
  t.same(callbacks, [false], 'nothing in flight, nothing in the outbox: no extra write');
  send(2);
  await tick();
  t.same(callbacks, [false, true], 'with a waiter the flush asks to be told');
  t.equal(told, 1, 'and the waiter was told at that write\'s completion');
  send(2);
  await tick();
  t.same(callbacks, [false, true, false], 'nobody waits again: no callback');
});

t.test('a waiter that comes while writes without a callback are in flight is told when they complete', async (t) => {
  const { channel, writerEnd, readerEnd, callbacks, send } = recorded();
  readerEnd.pause();
  send(100);
  await tick();
  t.ok(callbacks.length > 0 && callbacks.every((cb) => !cb), 'the backlog was written without callbacks');
  const inStream = writerEnd.writableLength;
  t.ok(inStream > 10 * 1024, `${inStream} bytes are in flight in the stream`);
  t.equal(channel.writableLength, inStream, 'and nothing waits in the outbox (no flush to come)');
  const seenAt: number[] = [];
  channel.onBacklogAtMost(10 * 1024, () => seenAt.push(channel.writableLength));
  channel.onBacklogAtMost(0, () => seenAt.push(channel.writableLength));
  t.same(callbacks.slice(-1), [true], 'one empty write carries the callback behind them');
  t.equal(callbacks.filter((cb) => cb).length, 1, 'the second waiter asked for no other');
  let read = 0;
  readerEnd.on('data', (chunk: Buffer) => (read += chunk.length));
  readerEnd.resume();
  while (read < inStream) await tick();
  await tick();
  t.equal(seenAt.length, 2, 'both waiters were told once the peer took the backlog');
  t.ok(seenAt.every((at) => at === 0), `told with ${seenAt.join(', ')} bytes waiting`);
  t.equal(read, inStream, 'the empty write put no byte on the wire');
});

t.test('over a real socketpair: a waiter that comes while the kernel holds writes back is told when the child reads', async (t) => {
  // The child reads fd 3 only once it gets a line on stdin, and counts what it read.
  const child = spawn(process.execPath, ['-e', `
    const net = require('node:net');
    process.stdin.once('data', () => {
      let n = 0;
      const s = new net.Socket({ fd: 3, readable: true, writable: false });
      s.on('data', (c) => { n += c.length; });
      s.on('end', () => process.stdout.write(String(n), () => process.exit(0)));
    });
  `], { stdio: ['pipe', 'pipe', 'inherit', 'pipe'] });
  t.teardown(() => { child.kill(); });
  const socket = child.stdio[3] as Socket;
  const channel = new FramedChannel(socket);
  let closedError: unknown;
  channel.attach({ envelope: () => {}, closed: (error) => (closedError = error) });
  const write = socket.write.bind(socket) as (chunk: unknown, cb?: unknown) => boolean;
  let withCallback = 0;
  socket.write = ((chunk: unknown, cb?: unknown) => {
    if (typeof cb === 'function') withCallback++;
    return write(chunk, cb);
  }) as typeof socket.write;
  // Well past what a socketpair's buffers hold (a few hundred KiB): libuv keeps the rest. Fewer frames
  // than make an eager flush, so they leave in one write at the end of the tick and the outbox is empty.
  let sent = 0;
  for (let i = 0; i < 40; i++) sent += channel.sendSized({ kind: 'event', callId: 0, name: 'tick', payload: 'y'.repeat(60_000) }) + 4;
  await tick();
  t.equal(withCallback, 0, 'written without a callback');
  t.ok(socket.writableLength > 0, `${socket.writableLength} bytes wait in the stream, the kernel full`);
  t.equal(channel.writableLength, socket.writableLength, 'nothing in the outbox');
  let told = -1;
  const toldNow = new Promise<void>((resolve) => channel.onBacklogAtMost(0, () => {
    told = channel.writableLength;
    resolve();
  }));
  t.equal(withCallback, 1, 'one empty write asks to be told');
  child.stdin!.write('read\n');
  await toldNow;
  t.equal(told, 0, 'told once the child took the whole backlog');
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += String(chunk)));
  const exited = once(child, 'exit');
  channel.end('done');
  await exited;
  t.ok(Number(out) >= sent, `the child read ${out} bytes, everything sent (${sent}) and the goodbye`);
  t.equal(closedError, undefined, 'the channel closed cleanly');
});

// The end-of-burst flush is a microtask queued behind the continuations already queued: frames
// sent by continuations that one read resolved together (replies to pipelined calls, each
// awaited through a couple of async layers) still leave in one write.
t.test('frames sent by a burst of continuations leave in one write', async (t) => {
  const { channel, readerEnd, callbacks } = recorded();
  readerEnd.on('data', () => {});
  const resolvers: Array<() => void> = [];
  const lanes = Array.from({ length: 20 }, async (_, i) => {
    await new Promise<void>((resolve) => resolvers.push(resolve));
    await Promise.resolve(); // another async layer, as a caller's wrapper adds
    channel.send({ kind: 'event', callId: 0, name: 'tick', payload: `lane ${i}` });
  });
  for (const resolve of resolvers) resolve(); // one "read" settles them all
  await Promise.all(lanes);
  await tick();
  t.equal(callbacks.length, 1, `20 frames in ${callbacks.length} write(s)`);
  t.equal(channel.writableLength, 0, 'all of it taken');
});

// The peer ended its side: the channel ends its own (stream.end()) while writes may still be in
// flight. A waiter that comes then must not write after the end (a stream error); it is told at
// the close, and the channel closes cleanly.
t.test('a waiter that comes after the peer ended: no write after the end, told at the close', async (t) => {
  const { channel, writerEnd, readerEnd, callbacks, send } = recorded();
  let closedWith: unknown = 'not closed';
  readerEnd.pause();
  send(100);
  await tick();
  t.ok(writerEnd.writableLength > 0, 'writes in flight');
  const ended = new Promise<void>((resolve) => writerEnd.once('end', resolve));
  readerEnd.end(); // the peer is done sending
  await ended;
  t.equal(writerEnd.writableEnded, true, 'the channel ended its side in turn');
  let told = 0;
  channel.onBacklogAtMost(0, () => told++);
  t.equal(callbacks.filter((cb) => cb).length, 0, 'no empty write after the end');
  writerEnd.once('error', (err) => (closedWith = err));
  readerEnd.resume();
  readerEnd.on('data', () => {});
  await new Promise<void>((resolve) => writerEnd.once('close', resolve));
  t.equal(told, 1, 'told at the close');
  t.equal(closedWith, 'not closed', 'no stream error');
});
