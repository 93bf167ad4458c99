/**
 * The fuzz cases of test/hardening-fuzz.test.ts, driven through the in-memory tier
 * (test/memory-pair.ts) at the connection layer, both ways:
 *
 * - a hostile service: its bytes reach an RpcClient with a call pending. The channel must
 *   close exactly once with the code the stream-order reading predicts (a call, cancel or
 *   peer message from a service, or a hello that does not match, is the client's own
 *   ERR_BAD_FRAME / ERR_PROTOCOL_MISMATCH), the pending call must reject with a coded
 *   error (none hangs), and no event handed to the app may carry a foreign value.
 * - a hostile client: its bytes reach an RpcServer. Same exactly-once close with the
 *   predicted code, and no handler ever runs (nothing reaches it without a matching hello).
 *
 * No process and no socket, so this runs tens of thousands of cases in seconds.
 * BULKHEAD_FUZZ_SEED and BULKHEAD_FUZZ_MEMORY_CASES change the run.
 */
import t from 'tap';
import { bulkheadError, isBulkheadError, type BulkheadError } from '../lib/errors.js';
import { RpcClient } from '../lib/connection/rpc-client.js';
import { RpcServer } from '../lib/connection/rpc-server.js';
import type { Envelope } from '../lib/wire/envelope.js';
import { FramedChannel } from '../lib/wire/framed-channel.js';
import { gen, polluted, streamOracle, type FuzzCase } from './fuzz-oracle.js';
import { deferred, duplexPair, memoryProtocol, type MemoryEnd } from './memory-pair.js';
import { recordUncaught } from './helpers.js';

const uncaught = recordUncaught();
const SEED = Number(process.env['BULKHEAD_FUZZ_SEED'] ?? 20240607);
const CASES = Number(process.env['BULKHEAD_FUZZ_MEMORY_CASES'] ?? 20_000);
const GEN_OPTIONS = { maxBulkBytes: 16 * 1024 };
/** The protocol the generated cases aim at: it declares the event `fuzz` (any payload). */
const PROTOCOL = memoryProtocol('com.test.hardening-fuzz');

/** Every named attack first, then the seeded mix. */
function caseAt(i: number): FuzzCase {
  const names = gen.ADVERSARIAL_NAMES;
  return i < names.length
    ? gen.generateCase(SEED, i, { ...GEN_OPTIONS, family: 'adversarial', name: names[i] })
    : gen.generateCase(SEED, i, GEN_OPTIONS);
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
 * order, else the stream's own verdict.
 */
function clientPrediction(envelopes: Envelope[], streamCode: string | undefined): string | undefined {
  for (const e of envelopes) {
    if (e.kind === 'call' || e.kind === 'cancel' || e.kind === 'peer') return 'ERR_BAD_FRAME';
    if (e.kind === 'hello') return 'ERR_PROTOCOL_MISMATCH'; // generated hellos never carry our schema hash
  }
  return streamCode;
}

/** How the server side closes: no hello can match, so the first call or service-only message closes it. */
function serverPrediction(envelopes: Envelope[], streamCode: string | undefined): string | undefined {
  for (const e of envelopes) {
    if (e.kind === 'hello') return 'ERR_PROTOCOL_MISMATCH';
    if (e.kind === 'call' || e.kind === 'reply' || e.kind === 'event' || e.kind === 'activity') return 'ERR_BAD_FRAME';
  }
  return streamCode;
}

interface Outcome {
  code: string | undefined;
  closes: number;
  /** What the pending call settled with (a code), or 'hung'. */
  call: string;
  foreign: string | undefined;
  handlerRuns: number;
}

/** A hostile service: the case's bytes arrive at an RpcClient that has one call pending. */
async function againstClient(i: number, bytes: Buffer): Promise<Outcome> {
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
    envelope: (e) => client.receive(e),
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
async function againstServer(i: number, bytes: Buffer): Promise<Outcome> {
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

for (const [side, run, predict] of [
  ['a hostile service against an RpcClient', againstClient, clientPrediction],
  ['a hostile client against an RpcServer', againstServer, serverPrediction],
] as const) {
  t.test(`${side}: ${CASES} seeded cases in memory`, async (t) => {
    const started = performance.now();
    const failures: string[] = [];
    const tally = new Map<string, number>();
    for (let i = 0; i < CASES && failures.length < 20; i++) {
      const c = caseAt(i);
      const stream = streamOracle(c.bytes);
      const expected = predict(stream.envelopes, stream.code);
      const out = await run(i, c.bytes);
      const label = `case ${i} (${c.family}: ${c.name})`;
      if (out.closes !== 1) failures.push(`${label}: closed ${out.closes} times`);
      if (out.code !== expected) failures.push(`${label}: closed with ${out.code ?? 'a clean end'}, predicted ${expected ?? 'a clean end'}`);
      if (out.call === 'hung' || out.call.startsWith('uncoded')) failures.push(`${label}: the pending call ${out.call}`);
      if (out.foreign !== undefined) failures.push(`${label}: handed the app ${out.foreign}`);
      if (out.handlerRuns !== 0) failures.push(`${label}: a handler ran without a matching hello`);
      tally.set(`${c.family} → ${out.code ?? 'clean end'}`, (tally.get(`${c.family} → ${out.code ?? 'clean end'}`) ?? 0) + 1);
    }
    t.same(failures, [], 'every case: one close, the predicted code, nothing pending, nothing foreign');
    t.equal(polluted(), false, 'Object.prototype untouched');
    t.same(uncaught, [], 'no uncaught exception or unhandled rejection');
    const seconds = (performance.now() - started) / 1000;
    t.comment(`${side}: ${CASES} cases in ${seconds.toFixed(1)} s; outcomes ${JSON.stringify(Object.fromEntries([...tally].sort()))}`);
  });
}
