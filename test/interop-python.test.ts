// Interop: a client in another language, written from docs/wire.md alone
// (test/fixtures/interop/bulkhead_client.py, Debian's python3-cbor2 and
// python3-cryptography), authenticates to a real daemon, lists services through
// the control protocol, calls, receives events, gets typed errors and a typed
// refusal. If the spec and the code drift apart, this fails.
import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../lib/daemon/daemon.js';
import { writeIdentity } from '../lib/identity/index.js';
import { FIXTURES, REPO_ROOT } from './helpers.js';
import { seedStateDir, sharedIdentity } from './shared-ca.js';

/** Debian's interpreter first: a pyenv or venv python on PATH may lack the Debian packages. */
const PYTHON = ['/usr/bin/python3', 'python3'].find((py) => spawnSync(py, ['-c', 'import cbor2, cryptography'], { stdio: 'ignore' }).status === 0);

if (PYTHON === undefined) {
  t.plan(0, 'skipped: python3 with cbor2 and cryptography is not installed (Debian: apt-get install python3-cbor2 python3-cryptography)');
} else {
  const work = mkdtempSync(join(tmpdir(), 'bulkhead-interop-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const config = join(work, 'bulkhead.json');
  writeFileSync(config, JSON.stringify({
    root: FIXTURES,
    services: [
      { name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo', clients: ['py'] },
      { name: 'private', entry: './echo-service.js', protocol: 'com.test.echo', clients: ['someone-else'] },
    ],
  }));
  await seedStateDir(join(work, 'state')); // the run's test CA (test/shared-ca.ts): no new keys for this daemon
  const daemon = await Daemon.start({ config, settings: { socketPath: join(work, 'run', 'd.sock'), stateDir: join(work, 'state') }, log: () => {} });
  t.teardown(() => daemon.close());
  const identities = join(work, 'state', 'identities'); // admin's identity is there as on a first start (a copy)
  writeIdentity(identities, await sharedIdentity('py'));

  t.test('a Python client written from docs/wire.md speaks to the daemon', async (t) => {
    const started = Date.now();
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(PYTHON, [join(REPO_ROOT, 'test/fixtures/interop/bulkhead_client.py'), daemon.socketPath, identities, join(REPO_ROOT, 'protocols/bulkhead.control.json'), join(FIXTURES, 'protocols/com.test.echo.json')], { timeout: 60_000 }, (err, out, errOut) => (err === null ? resolve(out) : reject(new Error(`${err.message}\n${errOut}`))));
    });
    t.comment(`python client ran in ${Date.now() - started} ms`);
    const seen = JSON.parse(stdout) as Record<string, any>;
    t.same(seen['control'].services, ['echo', 'private'], 'listed the services through bulkhead.control');
    t.equal(seen['control'].range, 0, 'the control connection has range 0');
    t.equal(seen['control'].daemonId, daemon.ca.fingerprint, 'the challenge\'s daemon id is the CA fingerprint');
    t.same(seen['peer'], { name: 'py', uid: seen['uid'], gid: seen['gid'], pid: seen['pid'] }, 'ok.peer: its certificate name and the kernel\'s uid/gid/pid of the Python process');
    t.ok(seen['range'] >= 1 && seen['range'] <= 4095, 'a service connection has a range 1..4095');
    t.equal(seen['echo'].text, 'hi from python', 'a call');
    t.same(seen['count'], { result: { sent: 3 }, events: [0, 1, 2].map((i) => ({ name: 'tick', payload: { i } })) }, 'events addressed to the call, then its reply');
    t.same(seen['whoami'].peer, { name: 'py', uid: seen['uid'], gid: seen['gid'], pid: seen['pid'] }, 'the service saw the Python process as ctx.peer');
    t.equal(seen['typedError']?.code, 'ERR_INVALID_PARAMS', 'a typed error');
    t.equal(seen['deadline'], 'ERR_DEADLINE', 'the caller gave up at its deadline');
    t.equal(seen['serviceSawAbort'], 'ERR_DEADLINE', 'its cancel crossed the daemon: the handler\'s signal aborted with ERR_DEADLINE');
    t.equal(seen['refused']?.code, 'ERR_NOT_PERMITTED', 'a typed refusal');
    t.same(seen['refused']?.data, { reason: 'not-in-clients', name: 'py', service: 'private' }, 'with the data docs/wire.md 8.5 lists');
  });
}
