/**
 * The entry of a prewarmed spare helper: node has started, the sandbox is in
 * place and bulkhead's runtime is loaded; it waits on fd 3 for the broker's
 * "go", then imports the service's own entry module (BULKHEAD_ENTRY), whose
 * serve() takes over the same socket. A relaunch then costs only the service
 * module's own start-up.
 * @module
 */
import { Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { handOverBrokerSocket } from './service.js';
import { decodeItem } from './wire/codec.js';
import { FrameDecoder } from './wire/frame-decoder.js';

const entry = process.env['BULKHEAD_ENTRY'];
if (entry === undefined || entry === '') {
  process.stderr.write('bulkhead prewarm: BULKHEAD_ENTRY is not set; this module is started by a broker only.\n');
  process.exit(70);
}

const socket = new Socket({ fd: 3, readable: true, writable: true });
const decoder = new FrameDecoder(1024);
// The broker closing fd 3 before "go" means the spare is not needed.
socket.once('close', () => process.exit(0));
socket.on('data', function onData(chunk: Buffer) {
  let frames: Buffer[];
  try {
    frames = decoder.push(chunk);
  } catch {
    process.exit(70);
  }
  if (frames.length === 0) return;
  // The broker sends "go" and then nothing until this helper says hello.
  const message = decodeItem(frames[0]!) as { t?: unknown };
  if (message.t !== 'go' || frames.length > 1 || decoder.pendingBytes > 0) process.exit(70);
  socket.off('data', onData);
  socket.removeAllListeners('close');
  socket.pause();
  handOverBrokerSocket(socket);
  import(pathToFileURL(entry).href).catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
});
