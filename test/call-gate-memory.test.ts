// The helper's service-wide call gate (lib/connection/call-gate.ts), in memory: several
// channels of one helper share one maxInFlight / maxQueued; past the bound calls wait in
// one FIFO queue, past the queue they fail with ERR_BACKPRESSURE, as on the broker's path.
import t from 'tap';
import { CallGate } from '../lib/connection/call-gate.js';
import { CallMeter, CALL_DURATION_BUCKETS, readCallBatch } from '../lib/connection/call-meter.js';
import type { HandlerContext } from '../lib/connection/rpc-server.js';
import { rpcPair, type RpcPair } from './memory-pair.js';
import { rejection } from './helpers.js';

/** A service whose `wait` handlers run until released; it counts how many run at once. */
function holdingService() {
  const held: Array<{ tag: number; release: () => void }> = [];
  let running = 0;
  let peak = 0;
  let waiters: Array<() => void> = [];
  const handlers = {
    wait: (p: { tag: number }, ctx: HandlerContext) => new Promise((resolve, reject) => {
      running++;
      peak = Math.max(peak, running);
      const done = (): void => {
        running--;
      };
      held.push({ tag: p.tag, release: () => {
        done();
        resolve({ tag: p.tag });
      } });
      ctx.signal.addEventListener('abort', () => {
        done();
        reject(ctx.signal.reason as Error);
      }, { once: true });
      for (const w of waiters.splice(0)) w();
    }),
    echo: (p: { text: string }) => p,
  };
  return {
    handlers,
    held,
    get running() {
      return running;
    },
    get peak() {
      return peak;
    },
    /** Resolves once `n` handlers have started in all. */
    started(n: number): Promise<void> {
      if (held.length >= n) return Promise.resolve();
      return new Promise((resolve) => {
        const check = (): void => {
          if (held.length >= n) resolve();
          else waiters.push(check);
        };
        waiters.push(check);
      });
    },
    reset() {
      waiters = [];
    },
  };
}

function pairs(gate: CallGate, service: ReturnType<typeof holdingService>, n: number): RpcPair[] {
  return Array.from({ length: n }, () => rpcPair({ handlers: service.handlers, server: { gate } }));
}

const settle = (p: Promise<unknown>): Promise<string> => p.then((v) => `ok:${(v as { tag: number }).tag}`, (e: { code: string }) => e.code);

/** Resolves once `check` holds, checked after each turn of the event loop (bounded). */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

t.test('three channels, maxInFlight 2, maxQueued 4: two run, four wait, the rest get ERR_BACKPRESSURE', async (t) => {
  const service = holdingService();
  const gate = new CallGate({ maxInFlight: 2, maxQueued: 4 }, 'com.test.memory');
  const ps = pairs(gate, service, 3);
  const outcomes: string[] = [];
  const calls: Array<Promise<string>> = [];
  for (let i = 0; i < 10; i++) {
    for (const [c, p] of ps.entries()) calls.push(settle(p.client.call('wait', { tag: c * 100 + i })).then((o) => (outcomes.push(o), o)));
  }
  await until(() => outcomes.length === 24, '24 refusals');
  t.same(outcomes, Array(24).fill('ERR_BACKPRESSURE'), 'every call past 2 running + 4 queued is refused at once');
  const one = await rejection(ps[0]!.client.call('wait', { tag: 999 }));
  t.equal(one.code, 'ERR_BACKPRESSURE');
  t.match(one.data, { maxInFlight: 2, maxQueued: 4 }, 'with the limits in data, as the broker\'s refusal');
  t.equal(service.running, 2, 'two handlers run');
  t.equal(gate.queued, 4, 'four wait');
  for (let released = 0; released < 6; released++) {
    await service.started(released + 1);
    service.held[released]!.release();
  }
  const all = await Promise.all(calls);
  t.equal(all.filter((o) => o.startsWith('ok:')).length, 6, 'the six accepted calls completed');
  t.equal(service.peak, 2, 'never more than maxInFlight handlers at once, across channels');
  t.equal(gate.running, 0, 'every slot came back');
  t.equal(gate.queued, 0);
});

t.test('one queue, first in first out: calls start in the order they arrived', async (t) => {
  const service = holdingService();
  const gate = new CallGate({ maxInFlight: 1, maxQueued: 3 }, 'com.test.memory');
  const [p] = pairs(gate, service, 1);
  const calls = [1, 2, 3, 4, 5].map((tag) => settle(p!.client.call('wait', { tag })));
  t.equal(await calls[4], 'ERR_BACKPRESSURE', 'the fifth finds the queue full');
  for (let released = 0; released < 4; released++) {
    await service.started(released + 1);
    service.held[released]!.release();
  }
  t.same(await Promise.all(calls.slice(0, 4)), ['ok:1', 'ok:2', 'ok:3', 'ok:4']);
  t.same(service.held.map((h) => h.tag), [1, 2, 3, 4], 'handlers started in arrival order');
  t.equal(service.peak, 1);
});

t.test('a queued call cancelled by its caller leaves the queue: its handler never runs', async (t) => {
  const service = holdingService();
  const gate = new CallGate({ maxInFlight: 1, maxQueued: 10 }, 'com.test.memory');
  const [p] = pairs(gate, service, 1);
  const first = p!.client.call('wait', { tag: 1 });
  await service.started(1);
  t.equal((await rejection(p!.client.call('wait', { tag: 2 }, { timeoutMs: 20 }))).code, 'ERR_DEADLINE');
  await until(() => gate.queued === 0, 'the cancel to reach the server');
  const third = p!.client.call('wait', { tag: 3 });
  await until(() => gate.queued === 1, 'the third call to wait');
  service.held[0]!.release();
  await service.started(2);
  t.same(service.held.map((h) => h.tag), [1, 3], 'the cancelled call never ran');
  service.held[1]!.release();
  t.same(await first, { tag: 1 });
  t.same(await third, { tag: 3 });
});

t.test('a channel that closes takes its queued calls with it; the others keep their places', async (t) => {
  const service = holdingService();
  const gate = new CallGate({ maxInFlight: 1, maxQueued: 10 }, 'com.test.memory');
  const [a, b] = pairs(gate, service, 2);
  const running = a!.client.call('wait', { tag: 1 }).catch((e: { code: string }) => e.code);
  await service.started(1);
  const lost = a!.client.call('wait', { tag: 2 }).catch((e: { code: string }) => e.code);
  await until(() => gate.queued === 1, 'a\'s second call to wait');
  const kept = b!.client.call('wait', { tag: 3 });
  await until(() => gate.queued === 2, 'b\'s call to wait');
  a!.clientChannel.destroy();
  await a!.serverClosed;
  // a's running handler was aborted with its channel and settled: its slot went to b's call, not a's.
  await service.started(2);
  t.same(service.held.map((h) => h.tag), [1, 3], 'a\'s queued call went with its channel; b\'s took the slot');
  t.equal(gate.queued, 0);
  t.equal(await lost, 'ERR_INTERRUPTED');
  service.held[1]!.release();
  t.same(await kept, { tag: 3 });
  t.equal(await running, 'ERR_INTERRUPTED');
  t.equal(gate.running, 0);
});

t.test('many queued calls whose handlers settle at once: no recursion, all answered', async (t) => {
  const gate = new CallGate({ maxInFlight: 1, maxQueued: 20_000 }, 'com.test.memory');
  let release!: () => void;
  const p = rpcPair({ handlers: {
    wait: () => new Promise((resolve) => (release = () => resolve({ tag: 0 }))),
    echo: (x: { text: string }) => x,
  }, server: { gate }, client: { maxInFlight: 20_000, maxQueued: 0 } });
  const blocker = p.client.call('wait', { tag: 0 });
  await new Promise((resolve) => setImmediate(resolve));
  const echoes = Array.from({ length: 15_000 }, (_, i) => p.client.call('echo', { text: String(i) }));
  while (gate.queued < 15_000) await new Promise((resolve) => setImmediate(resolve));
  release();
  const answers = await Promise.all(echoes);
  t.equal(answers.length, 15_000);
  t.equal((answers[14_999] as { text: string }).text, '14999');
  await blocker;
  t.equal(gate.running, 0);
});

t.test('CallGate.fromEnvironment: no limits, no gate; bad values are ignored', async (t) => {
  t.equal(CallGate.fromEnvironment(undefined, undefined, 's'), undefined);
  t.equal(CallGate.fromEnvironment('0', '5', 's'), undefined);
  t.equal(CallGate.fromEnvironment('x', '5', 's'), undefined);
  t.match(CallGate.fromEnvironment('4', '16', 's'), { maxInFlight: 4, maxQueued: 16 });
  t.match(CallGate.fromEnvironment('4', '-1', 's'), { maxInFlight: 4, maxQueued: 0 });
});

t.test('CallMeter batches durations and codes; the broker reads a batch only in shape', async (t) => {
  const meter = new CallMeter();
  t.equal(meter.take(), undefined, 'nothing answered, nothing to send');
  meter.record(0.0001, null);
  meter.record(0.003, 'ERR_INVALID_PARAMS');
  meter.record(99, 'E_MINE');
  const batch = meter.take()!;
  t.equal(batch.calls, 3);
  t.equal(batch.buckets.length, CALL_DURATION_BUCKETS.length + 1);
  t.equal(batch.buckets[0], 1);
  t.equal(batch.buckets[3], 1, '3 ms falls in the 5 ms bucket');
  t.equal(batch.buckets[CALL_DURATION_BUCKETS.length], 1, 'past the largest bound');
  t.same(batch.errors, { ERR_INVALID_PARAMS: 1, E_MINE: 1 });
  const read = readCallBatch({ ...batch });
  t.same({ ...read!.errors }, { ERR_INVALID_PARAMS: 1, ERR_SERVICE_ERROR: 1 }, 'a handler\'s own code counts as the ERR_SERVICE_ERROR its caller got');
  t.equal(readCallBatch({ ...batch, buckets: [1] }), undefined, 'wrong bucket count');
  t.equal(readCallBatch({ ...batch, calls: -1 }), undefined);
  t.equal(readCallBatch({ ...batch, errors: JSON.parse('{"__proto__": 5}') as object })?.errors['ERR_SERVICE_ERROR'], 5, '__proto__ is just a code');
  t.equal(Object.getPrototypeOf(readCallBatch({ ...batch, errors: JSON.parse('{"__proto__": 5}') as object })!.errors), null);
  for (let i = 0; i < 40; i++) meter.record(0.001, `E_${i}`);
  t.ok(Object.keys(meter.take()!.errors).length <= 33, 'distinct codes per batch are bounded');
});

t.test('CallMeter counts untimed calls (nobody observed them): in calls and errors, not in the buckets; the broker reads buckets only up to the calls', async (t) => {
  const meter = new CallMeter();
  meter.count(null);
  meter.count('ERR_BACKPRESSURE');
  meter.record(0.002, null);
  const batch = meter.take()!;
  t.equal(batch.calls, 3, 'every call counted');
  t.same(batch.errors, { ERR_BACKPRESSURE: 1 }, 'the untimed failure by its code');
  t.equal(batch.buckets.reduce((n, b) => n + b, 0), 1, 'only the timed call is in a bucket');
  t.equal(batch.sum, 0.002);
  t.same(readCallBatch({ ...batch }), { ...batch, timed: 1 }, 'a batch with untimed calls is read as it is, with its timed calls counted');
  t.equal(readCallBatch({ ...batch, timed: 3 })?.timed, 1, 'a timed count the helper sends is not taken: the broker counts the buckets');
  t.equal(readCallBatch({ ...batch, calls: 0 }), undefined, 'buckets holding more calls than the batch: refused');
  const untimed = new CallMeter();
  untimed.count(null);
  const only = untimed.take()!;
  t.same({ calls: only.calls, timed: only.buckets.reduce((n, b) => n + b, 0), sum: only.sum }, { calls: 1, timed: 0, sum: 0 });
});

t.test('a queued call whose id the client reuses meanwhile: a protocol violation when it would start; its slot comes back', async (t) => {
  const service = holdingService();
  const gate = new CallGate({ maxInFlight: 2, maxQueued: 10 }, 'com.test.memory');
  const [a, b] = pairs(gate, service, 2);
  const first = a!.client.call('wait', { tag: 1 });
  const second = a!.client.call('wait', { tag: 2 });
  await service.started(2);
  // Two calls with one id, while both must wait: the id is in flight for neither yet, so both queue.
  const id = 7;
  for (const tag of [71, 72]) b!.clientChannel.send({ kind: 'call', id, method: 'wait', params: { tag }, meta: null });
  await until(() => gate.queued === 2, 'both to queue');
  service.held[0]!.release();
  service.held[1]!.release();
  const why = await b!.serverClosed;
  t.equal(why?.code, 'ERR_BAD_FRAME');
  t.match(why?.message, `call id ${id} is already in flight`);
  t.same(service.held.map((h) => h.tag), [1, 2, 71], 'the first of the two ran; the reused id never did');
  t.same(await first, { tag: 1 });
  t.same(await second, { tag: 2 });
  const third = a!.client.call('wait', { tag: 3 });
  await service.started(4);
  service.held[3]!.release();
  t.same(await third, { tag: 3 }, 'the refused call gave its slot back');
});
