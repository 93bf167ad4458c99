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
import { polluted, streamOracle } from './fuzz-oracle.js';
import { againstClient, againstServer, caseAt, clientPrediction, serverPrediction } from './fuzz-memory.js';
import { recordUncaught } from './helpers.js';

const uncaught = recordUncaught();
const SEED = Number(process.env['BULKHEAD_FUZZ_SEED'] ?? 20240607);
const CASES = Number(process.env['BULKHEAD_FUZZ_MEMORY_CASES'] ?? 20_000);
const GEN_OPTIONS = { maxBulkBytes: 16 * 1024 };

for (const [side, run, predict] of [
  ['a hostile service against an RpcClient', againstClient, clientPrediction],
  ['a hostile client against an RpcServer', againstServer, serverPrediction],
] as const) {
  t.test(`${side}: ${CASES} seeded cases in memory`, async (t) => {
    const started = performance.now();
    const failures: string[] = [];
    const tally = new Map<string, number>();
    for (let i = 0; i < CASES && failures.length < 20; i++) {
      const c = caseAt(SEED, i, GEN_OPTIONS);
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
