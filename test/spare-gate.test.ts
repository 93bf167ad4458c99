// The spare's rules as a state machine (lib/broker/spare-gate.ts), in memory: what a spare may send
// before activation, when the broker's hello is due, and that events of a spare activated early wait
// until it serves. The real-process side is in prewarm-trust.test.ts.
import t from 'tap';
import { SpareGate } from '../lib/broker/spare-gate.js';

t.test('a plain helper serves from the start: every frame admitted, events delivered at once', async (t) => {
  const gate = new SpareGate(false);
  t.ok(gate.activated);
  t.ok(gate.admits('event') && gate.admits('reply') && gate.admits('hello'));
  const seen: number[] = [];
  gate.deliver(() => seen.push(1));
  t.same(seen, [1]);
  t.notOk(gate.activateEarly(), 'no hello to send early');
  t.notOk(gate.serve(), 'no hello due: a plain helper got it at spawn');
});

t.test('a waiting spare: only its hello is admitted; activation makes the broker\'s hello due once', async (t) => {
  const gate = new SpareGate(true);
  t.notOk(gate.activated);
  t.ok(gate.admits('hello'));
  for (const kind of ['event', 'reply', 'error', 'activity', 'item'] as const) t.notOk(gate.admits(kind), `${kind} is refused before activation`);
  t.ok(gate.serve(), 'the broker\'s hello is due on activation');
  t.ok(gate.activated && gate.admits('event'));
  t.notOk(gate.serve(), 'and only once');
});

t.test('a spare activated early: its hello is sent then, its events wait until it serves, in order', async (t) => {
  const gate = new SpareGate(true);
  t.ok(gate.activateEarly(), 'the broker\'s hello is due now');
  t.notOk(gate.activateEarly(), 'once');
  t.ok(gate.admits('event'), 'it may send anything now');
  const seen: number[] = [];
  gate.deliver(() => seen.push(1));
  gate.deliver(() => seen.push(2));
  t.same(seen, [], 'held while it is not the service\'s helper');
  t.notOk(gate.serve(), 'no second hello when it starts serving');
  t.same(seen, [1, 2], 'held events go out in order');
  gate.deliver(() => seen.push(3));
  t.same(seen, [1, 2, 3]);
});

t.test('held events are bounded', async (t) => {
  const gate = new SpareGate(true);
  gate.activateEarly();
  let delivered = 0;
  for (let i = 0; i < 5000; i++) gate.deliver(() => delivered++);
  gate.serve();
  t.equal(delivered, 1024);
});

t.test('refusal is recorded once, with its reason', async (t) => {
  const gate = new SpareGate(true);
  t.equal(gate.refused, undefined);
  t.ok(gate.refuse('first'));
  t.notOk(gate.refuse('second'));
  t.equal(gate.refused, 'first');
});
