// The earliest sign that a helper's channel is gone (lib/broker/read-side-gone.ts), on a real socketpair to a
// real child process: told once, before the socket's own `close` event, and never before a byte the child sent.
// The crash path (a SIGKILL with bytes the child never read: ECONNRESET) and the clean end (EOF) are both tried;
// the relaunch that uses it is in spare-takeover.test.ts and takeover-calls-at-close.test.ts.
import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import t from 'tap';
import { onReadSideGone, once } from '../lib/broker/read-side-gone.js';

/** A node child with a socketpair on fd 3, running `script`; resolves once it wrote its first byte on stdout. */
async function child(script: string): Promise<{ socket: Socket; kill: () => void; exited: Promise<void> }> {
  const proc = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit', 'pipe'] });
  const socket = proc.stdio[3] as Socket;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  await new Promise((resolve) => proc.stdout?.once('data', resolve));
  return { socket, kill: () => proc.kill('SIGKILL'), exited };
}

/** Records the order of `gone` and the socket's own events until `close`. */
function watch(socket: Socket): { order: string[]; closed: Promise<void> } {
  const order: string[] = [];
  onReadSideGone(socket, () => order.push('gone'));
  socket.on('data', (chunk: Buffer) => order.push(`data ${chunk.toString()}`));
  socket.on('end', () => order.push('end'));
  socket.on('error', (err: NodeJS.ErrnoException) => order.push(`error ${err.code ?? '?'}`));
  const closed = new Promise<void>((resolve) => socket.once('close', () => { order.push('close'); resolve(); }));
  return { order, closed };
}

t.test('a child killed with bytes it never read: told in the read that failed, before error and close', async (t) => {
  // fd 3 is never read by the child: what the parent writes stays in its queue, so its death resets the pair.
  const { socket, kill, exited } = await child(`require('fs').writeSync(3, 'last words'); process.stdout.write('x'); setInterval(() => {}, 1000);`);
  const { order, closed } = watch(socket);
  // The child's bytes arrive first (a read before the failing one).
  await new Promise((resolve) => socket.once('data', resolve));
  await new Promise<void>((resolve, reject) => socket.write('never read', (err) => (err ? reject(err) : resolve())));
  kill();
  await closed;
  await exited;
  t.same(order, ['data last words', 'gone', 'error ECONNRESET', 'close'], 'the bytes, then gone, then the socket\'s error and close');
});

t.test('a child that ends its side cleanly: told at the end, after its last bytes, before close', async (t) => {
  const { socket, exited } = await child(`const s = new (require('net').Socket)({ fd: 3, readable: true, writable: true }); process.stdout.write('x'); s.end('bye', () => process.exit(0));`);
  const { order, closed } = watch(socket);
  await closed;
  await exited;
  t.equal(order.filter((e) => e === 'gone').length, 1, 'told once');
  t.ok(order.indexOf('gone') > order.indexOf('data bye') && order.indexOf('data bye') >= 0, `after the last bytes: ${order.join(', ')}`);
  t.ok(order.indexOf('gone') < order.indexOf('close'), `before close: ${order.join(', ')}`);
});

t.test('a socket that stays open is never told (positive control for the two above)', async (t) => {
  const { socket, kill, exited } = await child(`require('fs').writeSync(3, 'alive'); process.stdout.write('x'); setInterval(() => {}, 1000);`);
  const { order, closed } = watch(socket);
  await new Promise((resolve) => socket.once('data', resolve));
  // A round trip through the event loop with the child alive: nothing but its bytes.
  await new Promise((resolve) => setImmediate(resolve));
  t.same(order, ['data alive'], 'not told while the child lives');
  kill();
  await closed;
  await exited;
  t.ok(order.includes('gone'), 'and told once it died');
});

t.test('once: runs the first time only, with that call\'s arguments', async (t) => {
  const seen: string[] = [];
  const fn = once((what: string) => seen.push(what));
  fn('first');
  fn('second');
  t.same(seen, ['first']);
});
