/**
 * The one frame a prewarmed spare sends before it becomes a service: "warm"
 * (node, its sandbox and bulkhead's runtime are loaded; lib/prewarm.ts writes
 * it). It is not an envelope, so it is read straight off the socket before the
 * FramedChannel takes over. Split from helper-process.ts: a small parser of
 * its own, with its own limits.
 * @module
 */
import type { Duplex } from 'node:stream';
import { decodeItem } from '../wire/codec.js';
import { FRAME_HEADER_BYTES } from '../wire/frame-decoder.js';
import { claimMmHolder } from './mm-holder-reaper.js';

/**
 * What a prewarmed spare writes on fd 3 once node, its sandbox and its service module are loaded (lib/prewarm.ts);
 * an unsandboxed spare the broker asked for an mm holder adds `holder: <pid>` (mm-holder-reaper.ts checks it).
 */
const WARM_MESSAGE = { t: 'warm' } as const;

/** Largest body a warm frame may have. */
const MAX_WARM_FRAME_BYTES = 64;

/**
 * Reads a spare's "warm" frame straight off its socket, then pauses it for the
 * FramedChannel. Bytes that arrived with it (the service's hello follows at
 * once when the spare was activated before it was warm) are put back on the
 * socket for the channel: a chunk may hold any number of frames.
 */
function awaitWarmFrame(socket: Duplex): Promise<void> {
  let buffered: Buffer = Buffer.alloc(0);
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('close', onClose);
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error('the spare closed fd 3 before it was warm'));
    };
    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      if (buffered.length < FRAME_HEADER_BYTES) return;
      const length = buffered.readUInt32BE(0);
      if (length > MAX_WARM_FRAME_BYTES) {
        cleanup();
        reject(new Error('the spare sent something other than its warm frame'));
        return;
      }
      const end = FRAME_HEADER_BYTES + length;
      if (buffered.length < end) return;
      cleanup();
      socket.pause();
      let message: { t?: unknown; holder?: unknown } | null = null;
      try {
        message = decodeItem(buffered.subarray(FRAME_HEADER_BYTES, end)) as { t?: unknown; holder?: unknown } | null;
      } catch {
        // not CBOR: refused below
      }
      if (message?.t !== WARM_MESSAGE.t) {
        reject(new Error('the spare sent something other than its warm frame'));
        return;
      }
      const refused = message.holder === undefined ? undefined : claimMmHolder(socket, message.holder);
      if (refused !== undefined) {
        reject(new Error(refused));
        return;
      }
      if (buffered.length > end) socket.unshift(buffered.subarray(end));
      resolve();
    };
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}

/**
 * A spare's start as the broker sees it: its warm frame, read off the raw
 * socket, then, on the channel `attach` starts, its hello, which `ready`
 * checks as a fresh helper's is: a spare is warm only with a matching hello.
 */
export async function awaitWarmSpare(socket: Duplex, attach: () => void, ready: Promise<unknown>): Promise<void> {
  await awaitWarmFrame(socket);
  attach();
  await ready;
}
