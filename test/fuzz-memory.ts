/**
 * The fuzz cases driven through the in-memory tier (test/memory-pair.ts), both ways: a
 * hostile service's bytes against an RpcClient with a call pending, and a hostile
 * client's bytes against an RpcServer. Each run reports how the channel closed, how
 * often, how the pending call settled, and anything foreign handed to the app, for the
 * caller to compare with the prediction. Shared by test/hardening-fuzz-memory.test.ts
 * and `fuzz/run.js --rpc`; no tap here.
 */
import { bulkheadError, isBulkheadError, type BulkheadError } from '../lib/errors.js';
import { RpcClient } from '../lib/connection/rpc-client.js';
import { RpcServer } from '../lib/connection/rpc-server.js';
import type { Envelope } from '../lib/wire/envelope.js';
import { FramedChannel } from '../lib/wire/framed-channel.js';
import { gen, type FuzzCase } from './fuzz-oracle.js';
import { deferred, duplexPair, memoryProtocol, type MemoryEnd } from './memory-pair.js';

/** The protocol the generated cases aim at: it declares the event `fuzz` (any payload). */
const PROTOCOL = memoryProtocol('com.test.hardening-fuzz');

/** Every named attack first, then the seeded mix. */
export function caseAt(seed: number, i: number, options: Record<string, unknown> = {}): FuzzCase {
  const names = gen.ADVERSARIAL_NAMES;
  return i < names.length
    ? gen.generateCase(seed, i, { ...options, family: 'adversarial', name: names[i] })
    : gen.generateCase(seed, i, options);
}

/** Writes `bytes` from `end` in 1–3 pieces (cut where the case's seed says), then ends. */
function writeSplit(end: MemoryEnd, bytes: Buffer, i: number): void {
  const r = gen.rng(i ^ 0x5bd1e995);
  const cuts = [0, ...Array.from({ length: r.int(3) }, () => r.int(bytes.length + 1)).sort((a, b) => a - b), bytes.length];
  for (let k = 1; k < cuts.length; k++) if (cuts[k]! > cuts[k - 1]!) end.write(bytes.subarray(cuts[k - 1], cuts[k]));
  end.end();
}

/**
 * How the client side closes on these bytes: the first envelope it refuses in stream
 * order, else the stream's own verdict. No generated hello matches, so an answer to a
 * call (a reply, an item, a call's error) always comes before a matched hello: refused
 * as ERR_PROTOCOL_MISMATCH (a call may go out before the service's hello; its answer
 * may not come before it).
 */
export function clientPrediction(envelopes: Envelope[], streamCode: string | undefined): string | undefined {
  for (const e of envelopes) {
    if (e.kind === 'call' || e.kind === 'cancel' || e.kind === 'peer') return 'ERR_BAD_FRAME';
    if (e.kind === 'hello') return 'ERR_PROTOCOL_MISMATCH'; // generated hellos never carry our schema hash
    if (e.kind === 'reply' || e.kind === 'item' || (e.kind === 'error' && e.id !== 0)) return 'ERR_PROTOCOL_MISMATCH';
  }
  return streamCode;
}

/** How the server side closes: no hello can match, so the first call or service-only message closes it. */
export function serverPrediction(envelopes: Envelope[], streamCode: string | undefined): string | undefined {
  for (const e of envelopes) {
    if (e.kind === 'hello') return 'ERR_PROTOCOL_MISMATCH';
    if (e.kind === 'call' || e.kind === 'reply' || e.kind === 'event' || e.kind === 'activity') return 'ERR_BAD_FRAME';
  }
  return streamCode;
}

export interface Outcome {
  code: string | undefined;
  closes: number;
  /** What the pending call settled with (a code), or 'hung'. */
  call: string;
  foreign: string | undefined;
  handlerRuns: number;
}

/** A hostile service: the case's bytes arrive at an RpcClient that has one call pending. */
export async function againstClient(i: number, bytes: Buffer): Promise<Outcome> {
  const [clientEnd, hostile] = duplexPair();
  hostile.resume(); // the client's hello, call and error frame: read and dropped
  const channel = new FramedChannel(clientEnd);
  let foreign: string | undefined;
  const client = new RpcClient(channel, PROTOCOL, {
    broadcast: (_name, payload) => (foreign ??= gen.foreign(payload)),
    eventError: (error) => (foreign ??= gen.foreign(error.data)),
  });
  let closes = 0;
  const closed = deferred<BulkheadError | undefined>();
  channel.attach({
    envelope: (e, body) => client.receive(e, body.length),
    closed: (error) => {
      closes++;
      client.interrupt(error ?? client.peerError ?? bulkheadError('ERR_INTERRUPTED', 'The hostile service closed the channel.'));
      closed.resolve(error);
    },
  });
  client.sendHello({});
  const call = client.call('ping', {}).then(() => 'answered', (err: unknown) => (isBulkheadError(err) ? err.code : `uncoded ${String(err)}`));
  writeSplit(hostile, bytes, i);
  const error = await closed.promise;
  // The call must settle by the time the close was handled (interrupt() ran in it).
  const settled = await Promise.race([call, new Promise<string>((resolve) => setImmediate(() => resolve('hung')))]);
  await new Promise<void>((resolve) => setImmediate(resolve)); // a second close report would land by now
  clientEnd.destroy();
  return { code: error?.code, closes, call: settled, foreign, handlerRuns: 0 };
}

/** A hostile client: the case's bytes arrive at an RpcServer. */
export async function againstServer(i: number, bytes: Buffer): Promise<Outcome> {
  const [serverEnd, hostile] = duplexPair();
  hostile.resume();
  let handlerRuns = 0;
  let closes = 0;
  const closed = deferred<BulkheadError | undefined>();
  new RpcServer(new FramedChannel(serverEnd), PROTOCOL, {
    ping: () => {
      handlerRuns++;
      return { pid: 1 };
    },
  }, {
    goodbye: () => undefined,
    closed: (error) => {
      closes++;
      closed.resolve(error);
    },
  });
  writeSplit(hostile, bytes, i);
  const error = await closed.promise;
  await new Promise<void>((resolve) => setImmediate(resolve));
  serverEnd.destroy();
  return { code: error?.code, closes, call: 'n/a', foreign: undefined, handlerRuns };
}
