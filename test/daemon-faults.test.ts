/**
 * A fault on the daemon's side is not the client's business: a corrupt revoked.json
 * makes the daemon refuse every client (it fails closed), but the client learns only
 * ERR_DAEMON_FAULT, never the daemon's paths or the underlying message; those go to
 * the daemon's log as ERR_CORRUPT_STATE. Positive control: the same client is served
 * before the file is damaged and again after it is restored.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../lib/daemon/daemon.js';
import { connectTo } from '../lib/daemon/remote-broker.js';
import { FIXTURES, rejection } from './helpers.js';
import { seedStateDir, sharedIdentity } from './shared-ca.js';

const work = mkdtempSync(join(tmpdir(), 'bulkhead-daemon-faults-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const config = join(work, 'bulkhead.json');
writeFileSync(config, JSON.stringify({ root: FIXTURES, services: [
  { name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo', clients: ['app'] },
  { name: 'broken', entry: './supervision/throws-at-start.js', protocol: 'com.test.supervision', clients: ['app'], launch: { throttleMs: 0 } },
] }));
const stateDir = join(work, 'state');
const log: Array<Record<string, unknown>> = [];
await seedStateDir(stateDir); // the run's test CA (test/shared-ca.ts): no new keys for this daemon
const daemon = await Daemon.start({ config, settings: { socketPath: join(work, 'run', 'd.sock'), stateDir }, log: (entry) => log.push(entry) });
t.teardown(() => daemon.close());
const client = connectTo(daemon.socketPath, await sharedIdentity('app'), { protocolsDir: join(FIXTURES, 'protocols') });
t.teardown(() => client.close());
const revokedFile = join(stateDir, 'ca', 'revoked.json');

t.test('a corrupt revocation list: the client gets ERR_DAEMON_FAULT without the daemon\'s paths; the log has the cause', async (t) => {
  t.same((await client.connect('echo', { protocol: 'com.test.echo' }).call('echo', { text: 'before' })).text, 'before', 'positive control: served while the list is sound');
  const sound = readFileSync(revokedFile, 'utf8');
  writeFileSync(revokedFile, '{ not json');
  const err = await rejection(client.connect('echo', { protocol: 'com.test.echo' }).call('echo', { text: 'during' }));
  t.equal(err.code, 'ERR_DAEMON_FAULT');
  t.notMatch(err.message, stateDir, 'the message does not name the daemon\'s state directory');
  t.notMatch(JSON.stringify(err.data), stateDir, 'nor does its data');
  t.notMatch(err.message, /revoked\.json/, 'nor the file');
  const cause = log.find((e) => e['event'] === 'denied' && e['code'] === 'ERR_CORRUPT_STATE');
  t.ok(cause, 'the daemon logged the real cause');
  t.match(String(cause?.['message']), revokedFile, 'with the path, for its administrator');
  writeFileSync(revokedFile, sound);
  t.same((await client.connect('echo', { protocol: 'com.test.echo' }).call('echo', { text: 'after' })).text, 'after', 'served again once the list is restored');
});

t.test('a second daemon on the same socket is refused with ERR_DAEMON_RUNNING; the first keeps serving', async (t) => {
  const err = await rejection(Daemon.start({ config, settings: { socketPath: daemon.socketPath, stateDir }, log: () => undefined }));
  t.equal(err.code, 'ERR_DAEMON_RUNNING');
  t.equal(err.data['socketPath'], daemon.socketPath, 'data.socketPath names the socket');
  t.same((await client.connect('echo', { protocol: 'com.test.echo' }).call('echo', { text: 'still here' })).text, 'still here', 'the running daemon was not disturbed');
});

t.test('a helper that fails at start: the daemon client gets ERR_LAUNCH_FAILED without its stderr or the server\'s paths; `bulkhead logs` has them', async (t) => {
  const err = await rejection(client.connect('broken', { protocol: 'com.test.supervision' }).call('echo', { text: 'x' }));
  t.equal(err.code, 'ERR_LAUNCH_FAILED', err.message);
  t.equal(err.data['exitCode'], 1, 'the exit code is passed on');
  t.notOk('stderrTail' in err.data, 'no stderr lines in data');
  t.notOk('thrown' in err.data, 'nor the thrown line');
  t.notMatch(JSON.stringify(err.data), /API_KEY/, 'nowhere in data');
  t.notMatch(err.message, /API_KEY/, 'nor the thrown line in the message');
  t.notMatch(JSON.stringify(err), FIXTURES, 'no server path anywhere in the error');
  t.match(err.message, /bulkhead logs broken/, 'the message says where the administrator finds the cause');
  // Positive control: the helper really printed it, and the daemon kept it for its administrator.
  const lines = daemon.logs.query({ service: 'broken' }).entries.map((e) => e.text).join('\n');
  t.match(lines, /Error: API_KEY is not set/, 'the daemon\'s log store has the thrown line');
});
