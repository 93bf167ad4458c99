/**
 * One caller of the payloads scenario, in a process of its own: builds the
 * transport named by argv[2], then answers the bench process's requests over
 * the fork() IPC channel (warm-up and byte-for-byte check; one timed run of N
 * echoes of one size). When the bench process disconnects (its end, its
 * failure or its death) this one closes its transport and exits. Only this
 * process's own transport allocates in it, as in a user's process. The IPC
 * channel is idle while a run is timed.
 * @module
 */
import { randomFillSync } from 'node:crypto';
import { cpuMicrosOf, ownCpuMicros } from '../common/proc.js';
import type { Transport } from '../common/transports.js';
import { PAYLOAD_SIZES, PAYLOAD_TRANSPORTS, echoRate, echoesOf, isPayloadTransportKind, type CallerReply, type CallerRequest } from '../common/payload-echo.js';

/** Resolves once the reply is handed to the channel (so that an exit right after does not lose it). */
const send = (reply: CallerReply): Promise<void> =>
  new Promise((resolve) => {
    if (process.send === undefined || !process.connected) resolve();
    else process.send(reply, undefined, {}, () => resolve());
  });

const kind = process.argv[2] ?? '';
if (process.send === undefined) throw new Error('payloads-process runs under fork() from the payloads scenario');
if (!isPayloadTransportKind(kind)) throw new Error(`unknown payload transport "${kind}"`);

let transport: Transport | undefined;
let closing = false;

async function finish(code: number): Promise<never> {
  if (!closing) {
    closing = true;
    await transport?.close().catch(() => undefined);
  }
  process.exit(code);
}

// The bench process is gone (or done with us): never outlive it.
process.on('disconnect', () => void finish(0));

try {
  transport = await PAYLOAD_TRANSPORTS[kind]();
} catch (err) {
  await send({ type: 'error', message: (err as Error).stack ?? String(err) });
  await finish(1);
}
const t = transport!;
// A fresh, unpooled, random buffer per size: no transport may clone more than the payload.
const payloads = new Map(PAYLOAD_SIZES.map((size) => [size, randomFillSync(Buffer.alloc(size))]));

async function handle(req: CallerRequest): Promise<CallerReply> {
  switch (req.op) {
    case 'warmup':
      // One check that the transport echoes the bytes themselves, and a few echoes of each size; then the
      // warm-up proper in echoes of the smallest size (req.echoes, the same for every transport), so that
      // the transport's JavaScript is optimized before anything is timed (warmupEchoes, payload-echo.ts).
      for (const data of payloads.values()) {
        const back = (await t.call('bytes', { data })) as { data: Uint8Array };
        if (Buffer.compare(Buffer.from(back.data.buffer, back.data.byteOffset, back.data.byteLength), data) !== 0) throw new Error(`${t.name} corrupted a ${data.length}-byte payload`);
        t.done?.(back);
        await echoRate(t, data, Math.min(echoesOf(data.length), 16));
      }
      await echoRate(t, payloads.get(PAYLOAD_SIZES[0]!)!, req.echoes);
      return { type: 'done' };
    case 'rate': {
      const data = payloads.get(req.size);
      if (data === undefined) throw new Error(`no payload of ${req.size} bytes`);
      // CPU per echo of both ends: unlike the rate, robust to the machine's load (10 ms ticks for the peer).
      const peer = t.peerPid;
      const self0 = ownCpuMicros();
      const peer0 = peer === undefined ? 0 : cpuMicrosOf(peer);
      const rate = await echoRate(t, data, req.echoes);
      const callerCpu = (ownCpuMicros() - self0) / req.echoes;
      const peerCpu = peer === undefined ? 0 : (cpuMicrosOf(peer) - peer0) / req.echoes;
      return { type: 'rate', rate, callerCpu, peerCpu };
    }
  }
}

// One request at a time: the bench process waits for each reply before the next.
process.on('message', (req: CallerRequest) => {
  handle(req).then(
    (reply) => send(reply),
    async (err: unknown) => {
      await send({ type: 'error', message: (err as Error).stack ?? String(err) });
      await finish(1);
    },
  );
});
await send({ type: 'ready', name: t.name });
