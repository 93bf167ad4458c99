// The hand-off primitive on its own: a descriptor sent with sendmsg(SCM_RIGHTS)
// arrives with exactly the bytes it was sent with, is a working socket, and a
// client that holds libuv's reads takes it from the daemon's answer while the
// bytes after that answer stay for libuv.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadFdPassing, requireFdPassing, socketDescriptor, ERRNO } from '../lib/broker/fd-passing.js';
import { holdReads, receiveHandoffAnswer, resumeReads, canReceiveHandoff } from '../lib/daemon/handoff-receive.js';
import { encodeItem } from '../lib/wire/codec.js';
import { encodeFrame } from '../lib/wire/frame-decoder.js';

const fds = requireFdPassing();

/** Resolves with the first chunk `socket` reads. */
function firstData(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once('data', (chunk: Buffer) => resolve(chunk.toString()));
    socket.once('error', reject);
  });
}

t.test('a passed descriptor arrives with its bytes and carries a working connection', async (t) => {
  t.notOk('problem' in loadFdPassing(), 'koffi and libc load');
  const [a, b] = fds.socketPair();
  const [mine, theirs] = fds.socketPair();
  t.equal(fds.send(a, Buffer.from('take this'), theirs), 9, 'one sendmsg, all bytes');
  fds.close(theirs);
  const into = Buffer.alloc(64);
  const got = fds.receive(b, into);
  t.equal(got.bytes, 9);
  t.equal(into.subarray(0, 9).toString(), 'take this');
  t.type(got.fd, 'number', 'a descriptor came with the bytes');
  t.notOk(got.truncated);
  t.equal(fds.receive(b, into).bytes, -ERRNO.EAGAIN, 'nothing more: EAGAIN, not a block');
  const received = new Socket({ fd: got.fd!, readable: true, writable: true });
  const peer = new Socket({ fd: mine, readable: true, writable: true });
  t.teardown(() => {
    received.destroy();
    peer.destroy();
    fds.close(a);
    fds.close(b);
  });
  const heard = firstData(peer);
  received.write('hello through the passed end');
  t.equal(await heard, 'hello through the passed end');
});

t.test('shutdown of one copy ends the connection for every holder', async (t) => {
  const [left, right] = fds.socketPair();
  const [carrier, catcher] = fds.socketPair();
  // Give `right` away (a second holder), keep our copy, then shut our copy down.
  fds.send(carrier, Buffer.from('x'), right);
  const got = fds.receive(catcher, Buffer.alloc(1));
  const holder = new Socket({ fd: got.fd!, readable: true, writable: true });
  const other = new Socket({ fd: left, readable: true, writable: true });
  t.teardown(() => {
    holder.destroy();
    other.destroy();
    fds.close(carrier);
    fds.close(catcher);
    fds.close(right);
  });
  const ended = new Promise<void>((resolve) => other.once('end', resolve));
  const holderEnded = new Promise<void>((resolve) => holder.once('end', resolve));
  holder.resume();
  other.resume();
  fds.shutdown(right);
  await Promise.all([ended, holderEnded]);
  t.pass('both ends saw the end although another process-level copy is still open');
});

t.test('a held client takes the descriptor from the answer; later bytes stay for libuv', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-handoff-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 's.sock');
  const [kept, given] = fds.socketPair();
  const server = createServer((conn) => {
    conn.once('data', () => {
      // The answer with the descriptor, then a lifeline message right behind it.
      const ok = encodeFrame(encodeItem({ t: 'ok', direct: true }));
      fds.send(socketDescriptor(conn)!, ok, given);
      conn.write(encodeFrame(encodeItem({ t: 'end' })));
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.teardown(() => server.close());
  const client = createConnection(path);
  await new Promise((resolve) => client.once('connect', resolve));
  t.ok(canReceiveHandoff(client));
  client.write('auth');
  holdReads(client);
  const answer = await receiveHandoffAnswer(client, 5000);
  t.same(answer.message, { t: 'ok', direct: true });
  t.type(answer.fd, 'number');
  resumeReads(client);
  const rest = await new Promise<Buffer>((resolve) => client.once('data', resolve));
  t.same(rest, encodeFrame(encodeItem({ t: 'end' })), 'the frame after the answer reached libuv untouched');
  const channel = new Socket({ fd: answer.fd!, readable: true, writable: true });
  const other = new Socket({ fd: kept, readable: true, writable: true });
  t.teardown(() => {
    channel.destroy();
    other.destroy();
    client.destroy();
    fds.close(given);
  });
  const heard = firstData(other);
  channel.write('direct');
  t.equal(await heard, 'direct');
});

t.test('a daemon that never answers: the wait ends at its bound, the loop never blocks', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-handoff-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 's.sock');
  const server = createServer(() => undefined);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.teardown(() => server.close());
  const client = createConnection(path);
  t.teardown(() => client.destroy());
  await new Promise((resolve) => client.once('connect', resolve));
  holdReads(client);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const err = await receiveHandoffAnswer(client, 150).then(() => undefined, (e: unknown) => e as { code?: string; data?: { reason?: string } });
  clearInterval(timer);
  t.equal(err?.code, 'ERR_AUTH_FAILED');
  t.equal(err?.data?.reason, 'timeout');
  t.ok(ticks > 3, `timers ran while waiting (${ticks} ticks)`);
});
