// A cold helper reads what its broker sent before it started (the broker's hello and the first call that rides with it)
// once its entry module ran, before its event loop's first turn (lib/wire/socket-reads.ts `readWaitingNow`, wired in
// lib/connection/helper-server.ts): the first reply no longer waits for that turn, nor for the young-generation task Node
// may have posted during the start. The fixture keeps its microtask queue busy after serve(), so a call read by the loop
// is answered only once that ends; each case has its control, a call the same fixture reads by the loop.
import t from 'tap';
import { Broker } from 'bulkhead';
import { probeHost } from '../lib/sandbox/index.js';
import { FIXTURES } from './helpers.js';

const probe = await probeHost();
const sandboxSkip = probe.bwrap === null ? 'needs bubblewrap' : probe.cgroup === null ? 'needs a usable cgroup hierarchy' : false;

const manifest = (name: string, sandbox?: string) => ({ name, entry: './first-read-service.js', protocol: 'com.test.echo', launch: { throttleMs: 0 }, ...(sandbox === undefined ? {} : { sandbox }) });
const echo = async (broker: Broker, name: string, text: string): Promise<string> => ((await broker.connect(name).call('echo', { text })) as { text: string }).text;

for (const sandbox of [undefined, 'pure-compute']) {
  t.test(`${sandbox ?? 'unsandboxed'}: the first call of a cold launch is read before the event loop turns (control: a call sent once the helper runs is read by the loop)`, { skip: sandbox === undefined ? false : sandboxSkip }, async (t) => {
    const broker = new Broker({ root: FIXTURES });
    t.teardown(() => broker.close());
    broker.register(manifest('first', sandbox));
    broker.register(manifest('later', sandbox));
    t.equal(await echo(broker, 'first', 'cold'), 'cold: read before the loop', 'the call that rode with the hello was answered before the loop turned');
    // Control: launched without a call, the helper spins with nothing to read; the call sent once it said hello waits for the loop.
    await broker.kickstart('later');
    t.equal(await echo(broker, 'later', 'running'), 'running: read by the loop', 'control: a call that was not in the socket at the start is read by the loop');
    // And the cold helper goes on serving through the loop as before.
    t.equal(await echo(broker, 'first', 'again'), 'again: read by the loop', 'the next call of the cold helper is read by the loop');
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
