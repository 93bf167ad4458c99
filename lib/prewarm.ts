/**
 * The entry of a prewarmed spare helper: node starts inside the sandbox, loads
 * bulkhead's runtime and imports the service's own entry module
 * (BULKHEAD_ENTRY), whose serve() loads the protocol and validators but does
 * not answer yet. The spare then tells the broker it is warm and waits on fd 3
 * for "go", on which serve() takes over the socket. A launch from a spare then
 * costs a hello, not a start-up. The module's top level runs when the spare
 * starts, before it is needed (docs/launch-policies.md says so).
 * @module
 */
import { Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
// Through the package's own export, so this is the very module instance the service's entry imports.
import { deferServeUntilHandover, handOverBrokerSocket, HELPER_ENV, spareWire } from 'bulkhead/service';

const { decodeItem, encodeItem, encodeFrame, FrameDecoder } = spareWire;

const entry = process.env[HELPER_ENV.entry];
if (entry === undefined || entry === '') {
  process.stderr.write(`bulkhead prewarm: ${HELPER_ENV.entry} is not set; this module is started by a broker only.\n`);
  process.exit(70);
}

const socket = new Socket({ fd: 3, readable: true, writable: true });
// The broker closing fd 3 before "go" means the spare is not needed.
socket.once('close', () => process.exit(0));
socket.pause();

// The service module loads now; its serve() prepares the protocol and waits for the socket.
deferServeUntilHandover();
try {
  await import(pathToFileURL(entry).href);
} catch (err) {
  // Not a usable spare: the broker sees it die and launches plainly, which reports this properly.
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(70);
}
// Tell the broker this spare is warm: node, its sandbox and the service module are loaded. Decoding
// the message once first compiles the decoder the activation's first frames go through.
const warm = encodeItem({ t: 'warm' });
decodeItem(warm);
socket.write(encodeFrame(warm));

const decoder = new FrameDecoder(1024);
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
});
socket.resume();
