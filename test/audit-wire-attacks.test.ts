// Round twelve's attacker's read of rounds nine to eleven (audit12): attacks on the broker by a real hostile helper
// (test/fixtures/audit-raw-writer.js writes the bytes it is given straight to fd 3, in one write) that the suite did
// not try at the process level. Each has its positive control: the hostile bytes reached the broker and were acted on.
import t from 'tap';
import { Broker, isBulkheadError, type BulkheadError } from 'bulkhead';
import { encodeEnvelope } from '../lib/wire/envelope.js';
import { FIXTURES, recordUncaught, rejection } from './helpers.js';

const uncaught = recordUncaught();

/** A reply frame for call `id`, as a helper's runtime would write it. */
const reply = (id: number, result: unknown): Buffer => encodeEnvelope({ kind: 'reply', id, result });
/** A header that declares a 32 MiB body (over the 16 MiB limit); no body follows it. */
/** How a held call settled. */
type Settled = { value?: unknown; error?: BulkheadError };
const OVERSIZE_HEADER = Buffer.from([0x02, 0x00, 0x00, 0x00]);

t.test('an oversize header mid-burst: the frames before it are delivered, nothing after it is ever decoded', async (t) => {
  const broker = new Broker({ root: FIXTURES });
  t.teardown(() => broker.close());
  broker.register({ name: 'raw', entry: './audit-raw-writer.js', protocol: 'com.test.audit', launch: { throttleMs: 0, exitTimeoutMs: 250 } });
  broker.register({ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo' });
  const echo = broker.connect('echo');
  const before = await echo.call('echo', { text: 'before' });
  const raw = broker.connect('raw');
  // A ready helper: the broker numbers its calls from 1 in the order they are made (count 1, the holds 2 to 4, raw 5).
  t.same(await raw.call('count', {}), { held: 0 });
  const held = [2, 3, 4].map(() => raw.call('hold', {}, { timeoutMs: 60_000 }).then((value): Settled => ({ value }), (e: unknown): Settled => ({ error: e as BulkheadError })));
  // One write: two good replies, an oversize header, then a well-formed reply that would settle the third hold were
  // the decoder to go on past the header (a desync: its 4 bytes taken as a length, or skipped).
  const burst = Buffer.concat([reply(2, { said: 'first' }), reply(3, { said: 'second' }), OVERSIZE_HEADER, reply(4, { said: 'smuggled' })]);
  const err = await rejection(raw.call('raw', { hex: burst.toString('hex'), afterHeld: 3 }));
  t.equal(err.code, 'ERR_FRAME_TOO_LARGE', 'the burst\'s own call fails with the frame limit\'s code');
  t.equal(err.data['declared'], 32 * 1024 * 1024);
  const [first, second, third] = await Promise.all(held);
  // Positive control: the hostile write reached the broker and its frames before the header were acted on.
  t.same(first, { value: { said: 'first' } }, 'the first reply in the burst settled its call');
  t.same(second, { value: { said: 'second' } }, 'so did the second');
  t.equal(third!.error?.code, 'ERR_FRAME_TOO_LARGE', 'the reply after the header was never decoded: its call failed with the connection');
  t.equal(await echo.call('echo', { text: 'after' }).then((r) => r.pid), before.pid, 'the broker and its other helper serve on');
});

t.test('a helper that blocks before it ever beats (before reading the broker\'s hello) is killed by the watchdog; the call does not hang', async (t) => {
  // Round eleven moved a cold helper's heartbeat to the broker's hello (lib/connection/helper-server.ts). The broker's
  // watchdog counts from the helper's own hello, not from a first beat: a helper that never beats is still silent.
  const broker = new Broker({ root: FIXTURES });
  t.teardown(() => broker.close());
  const watchdogMs = 400;
  broker.register({ name: 'mute', entry: './audit-raw-writer.js', protocol: 'com.test.audit', env: { BLOCK_BEFORE_HELLO: '1' }, launch: { throttleMs: 0, watchdogMs, exitTimeoutMs: 250 } });
  const err = await rejection(broker.connect('mute').call('hold', {}));
  t.equal(err.code, 'ERR_INTERRUPTED');
  t.equal(err.data['reason'], 'watchdog', 'the watchdog ended it');
  // Positive control: the helper said hello (else this would be a launch failure) and then really blocked.
  t.ok((err.data['stderrTail'] as string[] | undefined)?.some((line) => line.includes('blocking before the broker\'s hello')), 'it blocked where the test says');
  t.equal(broker.status('mute').lastExit?.reason, 'watchdog');
});

t.test('no uncaught exception or unhandled rejection in the broker', async (t) => {
  t.same(uncaught.filter((e) => !(isBulkheadError(e))), []);
});
