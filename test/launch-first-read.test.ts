// A cold helper reads what its broker sent before it started (the broker's hello and the first call that rides with it)
// once its entry module ran, before its event loop's first turn (lib/wire/socket-reads.ts `readWaitingNow`, wired in
// lib/connection/helper-server.ts): the first reply no longer waits for that turn, nor for the young-generation task Node
// may have posted during the start. The fixture keeps its next-tick queue busy after serve(), so a call read by the loop
// is answered only once that ends (with `readWaiting` made a no-op, the cold cases fail: checked by hand).
import t from 'tap';
import { Broker } from 'bulkhead';
import { probeHost } from '../lib/sandbox/index.js';
import { FIXTURES } from './helpers.js';

const probe = await probeHost();
const sandboxSkip = probe.bwrap === null ? 'needs bubblewrap' : probe.cgroup === null ? 'needs a usable cgroup hierarchy' : false;

const manifest = (name: string, sandbox?: string) => ({ name, entry: './first-read-service.js', protocol: 'com.test.echo', launch: { throttleMs: 0 }, ...(sandbox === undefined ? {} : { sandbox }) });
const echo = async (broker: Broker, name: string, text: string): Promise<string> => ((await broker.connect(name).call('echo', { text })) as { text: string }).text;

for (const sandbox of [undefined, 'pure-compute']) {
  t.test(`${sandbox ?? 'unsandboxed'}: the first call of a cold launch is read before the event loop turns; the next one by the loop`, { skip: sandbox === undefined ? false : sandboxSkip }, async (t) => {
    const broker = new Broker({ root: FIXTURES });
    t.teardown(() => broker.close());
    broker.register(manifest('first', sandbox));
    t.equal(await echo(broker, 'first', 'cold'), 'cold: read before the loop', 'the call that rode with the hello was answered before the loop turned');
    t.equal(await echo(broker, 'first', 'again'), 'again: read by the loop', 'the next call is read by the loop, as before');
  });
}

t.test('a stopped helper\'s next cold launch reads its first call at once again', async (t) => {
  const broker = new Broker({ root: FIXTURES });
  t.teardown(() => broker.close());
  broker.register(manifest('relaunched'));
  t.equal(await echo(broker, 'relaunched', 'one'), 'one: read before the loop');
  await broker.stop('relaunched');
  t.equal(await echo(broker, 'relaunched', 'two'), 'two: read before the loop', 'the relaunch after stop() too');
});

t.test('an entry that awaits after serve() (no I/O) has run that await before its first call is handled', async (t) => {
  const broker = new Broker({ root: FIXTURES });
  t.teardown(() => broker.close());
  broker.register({ name: 'awaiting', entry: './first-read-await-service.js', protocol: 'com.test.echo', launch: { throttleMs: 0 } });
  t.equal(await echo(broker, 'awaiting', 'cold'), 'cold: configured', 'the handler saw the binding the entry set after its await');
});
