/**
 * The attackers of the daemon-abuse scenario, in a process of their own:
 * on `{ start: socketPath }` it opens {@link SILENT} sockets that never send a
 * byte, and runs {@link WRITERS} writers that each connect, send a frame
 * header far over the handshake limit and keep writing 64 KiB chunks as fast
 * as the socket takes them, reconnecting as soon as the daemon closes them.
 * On `{ stop: true }` it closes everything and reports what it did.
 * @module
 */
import { createConnection, type Socket } from 'node:net';

const SILENT = 500;
const WRITERS = 4;
const JUNK = Buffer.alloc(64 * 1024, 0xa5);
const BAD_HEADER = Buffer.from([0x7f, 0xff, 0xff, 0xff]);

let running = false;
const sockets = new Set<Socket>();
const stats = { silentOpened: 0, silentClosedByDaemon: 0, writerConnections: 0, bytesWritten: 0 };

function track(socket: Socket): Socket {
  sockets.add(socket);
  socket.on('error', () => {});
  socket.once('close', () => sockets.delete(socket));
  return socket;
}

function silent(path: string): void {
  const socket = track(createConnection(path));
  stats.silentOpened++;
  socket.on('data', () => {}); // read what the daemon says (challenge, refusal), send nothing
  socket.once('close', () => {
    if (running) stats.silentClosedByDaemon++;
  });
}

function writer(path: string): void {
  if (!running) return;
  const socket = track(createConnection(path));
  stats.writerConnections++;
  const pump = () => {
    while (running && !socket.destroyed && socket.write(JUNK)) stats.bytesWritten += JUNK.length;
  };
  socket.once('connect', () => {
    socket.write(BAD_HEADER);
    pump();
  });
  socket.on('drain', pump);
  socket.once('close', () => setImmediate(() => writer(path)));
}

process.on('message', (m: { start?: string; stop?: boolean }) => {
  if (m.start !== undefined) {
    running = true;
    for (const k of Object.keys(stats) as Array<keyof typeof stats>) stats[k] = 0;
    for (let i = 0; i < SILENT; i++) silent(m.start);
    for (let i = 0; i < WRITERS; i++) writer(m.start);
    // Started once the silent sockets are all connected (or refused).
    setTimeout(() => process.send!({ started: true }), 200);
  }
  if (m.stop === true) {
    running = false;
    for (const s of sockets) s.destroy();
    process.send!({ stopped: { ...stats } });
  }
});
process.on('disconnect', () => process.exit(0));
