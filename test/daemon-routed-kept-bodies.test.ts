// A routed daemon client's call frames wait in ServiceSupervisor.forward while the helper launches.
// The daemon decodes small frames where they lie in the read buffer every channel shares
// (lib/wire/framed-channel.ts), so a body that waits must be a copy (keptBody): frames read later
// land where the earlier ones lay. Each call here arrives in a read of its own while the helper is
// still launching; every answer must be the answer to that call.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../lib/daemon/daemon.js';
import { RemoteBroker } from '../lib/daemon/remote-broker.js';
import { FIXTURES } from './helpers.js';
import { seedStateDir, sharedIdentity } from './shared-ca.js';

const work = mkdtempSync(join(tmpdir(), 'bulkhead-routed-kept-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const configPath = join(work, 'bulkhead.json');
writeFileSync(configPath, JSON.stringify({ root: FIXTURES, services: [{ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo', clients: ['app-a'], launch: { throttleMs: 0 } }] }));
await seedStateDir(join(work, 'state')); // the run's test CA (test/shared-ca.ts): no new keys for this daemon
const daemon = await Daemon.start({ config: configPath, settings: { socketPath: join(work, 'd.sock'), stateDir: join(work, 'state') }, log: () => {} });
t.teardown(() => daemon.close());

t.test('calls routed while the helper launches each get their own answer', async (t) => {
  const client = new RemoteBroker(daemon.socketPath, await sharedIdentity('app-a'), { protocolsDir: join(FIXTURES, 'protocols'), direct: false });
  t.teardown(() => client.close());
  const echo = client.connect('echo', { protocol: 'com.test.echo' });
  t.equal(daemon.broker.status('echo').state, 'idle', 'the helper is not running yet: the first call launches it');
  const texts = Array.from({ length: 40 }, (_, i) => `call ${i} `.repeat(1 + (i % 9)));
  const answers: Array<Promise<{ text: string }>> = [];
  let sentWhileLaunching = 0;
  for (const text of texts) {
    answers.push(echo.call('echo', { text }) as Promise<{ text: string }>);
    // One turn of the event loop: the daemon reads this call before the next is written.
    await new Promise((resolve) => setImmediate(resolve));
    if (daemon.broker.status('echo').state !== 'running') sentWhileLaunching++;
  }
  const got = await Promise.all(answers);
  t.ok(sentWhileLaunching >= 2, `${sentWhileLaunching} calls were read while the helper was still launching (their bodies waited)`);
  t.same(got.map((a) => a.text), texts, 'every call got the answer to its own text');
  t.equal(daemon.connectionStatus().clients.find((c) => c.pid === process.pid)?.path, 'routed', 'the calls took the routed path');
});
