// A handler's trace must not leak into an untraced handler that the helper's call gate (lib/connection/call-gate.ts)
// starts later: with maxInFlight 1, a call queued behind a traced one starts when the traced handler settles, from
// inside that handler's continuation, where the handler trace's store (lib/connection/trace-context.ts) still holds
// the traced call's traceparent. An untraced handler started there must see no trace, and the calls it makes must
// carry none (audit15, bench/README.md "Round fourteen: an attacker's read of round fourteen").
import t from 'tap';
import { startBroker } from 'bulkhead/testing';
import { FIXTURES } from './helpers.js';

const PARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

t.test('an untraced call queued by the call gate behind a traced one carries no trace', async (t) => {
  const kit = await startBroker({
    root: FIXTURES,
    services: [
      { name: 'front', entry: './trace-gate-service.js', protocol: 'com.test.trace-gate', connects: ['gated'] },
      { name: 'gated', entry: './trace-service.js', protocol: 'com.test.trace', connects: ['back'], maxInFlight: 1 },
      { name: 'back', entry: './trace-service.js', protocol: 'com.test.trace' },
    ],
  });
  t.teardown(() => kit.close());
  const front = kit.broker.connect('front');
  for (let round = 0; round < 3; round++) {
    const { traced, untraced } = await front.call('fanout', { target: 'gated', via: 'back', traceparent: PARENT }) as { traced: unknown; untraced: unknown };
    t.same(traced, { mine: PARENT, downstream: PARENT }, `round ${round}, control: the traced handler carries its trace on`);
    t.same(untraced, { mine: null, downstream: null }, `round ${round}: the untraced handler the gate started after it carries none`);
  }
  t.same(await kit.broker.connect('gated').call('relay', { service: 'back' }), { mine: null, downstream: null }, 'control: an untraced call alone carries none');
  t.equal(kit.status('gated').launches, 1, 'one helper throughout');
});
