// The handler trace's AsyncLocalStorage is made by the first handler that runs in a trace, not when a helper loads the
// runtime (lib/connection/trace-context.ts): on Node >= 22 making one loads two of node's internal modules, ~0.13 ms of
// every cold helper's start (bench/README.md, "Round fourteen: the helper's start-up CPU"). What must still hold: a
// handler's trace is carried on by the calls it makes, from the first traced handler on, and an untraced handler's
// calls carry none, before and after the store exists.
import t from 'tap';
import { startBroker } from 'bulkhead/testing';
import { FIXTURES } from './helpers.js';

const PARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const OTHER = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
// Node 20 has AsyncLocalStorage in async_hooks, loaded at bootstrap: there is no module list to tell the store by.
const modulesTell = Number(process.versions.node.split('.')[0]) >= 22;

t.test('a helper makes the handler trace\'s store only for a traced handler, and carries the trace on', async (t) => {
  const kit = await startBroker({
    root: FIXTURES,
    services: [
      { name: 'lazy', entry: './trace-lazy-service.js', protocol: 'com.test.trace-lazy', connects: ['back'] },
      { name: 'back', entry: './trace-service.js', protocol: 'com.test.trace' },
    ],
  });
  t.teardown(() => kit.close());
  const lazy = kit.broker.connect('lazy');
  const state = async (): Promise<boolean> => ((await lazy.call('state', {})) as { storeLoaded: boolean }).storeLoaded;
  if (modulesTell) t.equal(await state(), false, 'after the hello and a first call: no AsyncLocalStorage made');
  t.same(await lazy.call('relay', { service: 'back' }), { mine: null, downstream: null }, 'an untraced handler\'s call carries no trace');
  if (modulesTell) t.equal(await state(), false, 'an untraced handler that makes a call makes no store either');
  t.same(await lazy.call('relay', { service: 'back' }, { traceparent: PARENT }), { mine: PARENT, downstream: PARENT }, 'the first traced handler: its call carries its trace on');
  if (modulesTell) t.equal(await state(), true, 'control: the store exists once a traced handler ran');
  t.same(await lazy.call('relay', { service: 'back' }, { traceparent: OTHER }), { mine: OTHER, downstream: OTHER }, 'the next traced handler: its own trace');
  t.same(await lazy.call('relay', { service: 'back' }), { mine: null, downstream: null }, 'and an untraced one after it: none (the store is empty outside a traced handler)');
  const [a, b] = await Promise.all([
    lazy.call('relay', { service: 'back' }, { traceparent: PARENT }),
    lazy.call('relay', { service: 'back' }, { traceparent: OTHER }),
  ]);
  t.same([a, b], [{ mine: PARENT, downstream: PARENT }, { mine: OTHER, downstream: OTHER }], 'two traced handlers at once: each carries its own');
  t.equal(kit.status('lazy').launches, 1, 'one helper throughout');
});
