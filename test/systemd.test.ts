/**
 * Running the daemon as a systemd service, with the pieces systemd itself
 * uses: `systemd-socket-activate` passes the listening socket (LISTEN_FDS),
 * and a datagram socket bound by the test (test/fixtures/systemd/notify-receiver.py,
 * which reads the sender's pid from SCM_CREDENTIALS as systemd does) plays
 * NOTIFY_SOCKET. `bulkhead unit` output is checked by `systemd-analyze verify`.
 */
import t, { type Test } from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RemoteBroker } from '../lib/daemon/remote-broker.js';
import { CertificateAuthority, writeIdentity } from '../lib/identity/index.js';
import { CLI, FIXTURES, REPO_ROOT, runCli } from './helpers.js';

const LIVE = join(FIXTURES, 'cli', 'live');
const RECEIVER = join(REPO_ROOT, 'test', 'fixtures', 'systemd', 'notify-receiver.py');
const hasActivate = spawnSync('systemd-socket-activate', ['--version']).status === 0;
const hasPython = spawnSync('python3', ['--version']).status === 0;
const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

const work = mkdtempSync(join(tmpdir(), 'bulkhead-systemd-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const services = (JSON.parse(readFileSync(join(LIVE, 'bulkhead.json'), 'utf8')) as { services: Array<{ name: string }> }).services.filter((s) => s.name === 'chatty');

/** A config whose daemon section uses relative paths (resolved against the config's directory). */
function writeConfig(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'bulkhead.json');
  writeFileSync(file, JSON.stringify({ root: LIVE, services, daemon: { socketPath: 'run/bh.sock', stateDir: 'state', socketMode: '0660', socketGroup: 0 } }));
  return file;
}

/** Lines of a stream, parsed as JSON when they are, with a wait for one that matches. */
function jsonLines(stream: NodeJS.ReadableStream) {
  const all: Array<Record<string, unknown>> = [];
  const waiters: Array<{ match: (line: Record<string, unknown>) => boolean; resolve(line: Record<string, unknown>): void }> = [];
  createInterface({ input: stream }).on('line', (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      line = { text };
    }
    all.push(line);
    for (const w of [...waiters]) {
      if (w.match(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  return {
    all,
    waitFor(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
      const seen = all.find(match);
      return seen !== undefined ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ match, resolve }));
    },
  };
}

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve(child.exitCode) : new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Starts the notify receiver on `address` (a path or '@name'). */
async function notifyReceiver(t: Test, address: string) {
  const child = spawn('python3', [RECEIVER, address], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  const lines = jsonLines(child.stdout!);
  await lines.waitFor((l) => l['bound'] === address);
  /** Datagrams, each { pid, lines }. */
  return {
    datagrams: lines.all as Array<{ pid?: number | null; lines?: string[] }>,
    waitFor: (what: string, after = 0) => lines.waitFor((l) => Array.isArray(l['lines']) && (l['lines'] as string[]).includes(what) && lines.all.indexOf(l) >= after) as Promise<{ pid: number | null; lines: string[] }>,
  };
}

t.test('bulkhead unit writes verifiable user and system units with absolute paths', async (t) => {
  const dir = join(work, 'unit-app');
  writeConfig(dir);
  // Relative config path and output directory: written absolute.
  for (const scope of ['user', 'system'] as const) {
    const run = await runCli(['unit', `--${scope}`, '--config', 'bulkhead.json', '-o', `units-${scope}`], { cwd: dir });
    t.equal(run.code, 0, run.stderr);
    t.match(run.stdout, scope === 'user' ? /systemctl --user enable --now bulkhead\.socket bulkhead\.service/ : /systemctl enable --now bulkhead\.socket bulkhead\.service/, 'prints the install step');
    const service = readFileSync(join(dir, `units-${scope}`, 'bulkhead.service'), 'utf8');
    const socket = readFileSync(join(dir, `units-${scope}`, 'bulkhead.socket'), 'utf8');
    t.match(service, /^Type=notify$/m);
    t.match(service, /^Restart=on-failure$/m);
    t.match(service, /^NoNewPrivileges=yes$/m);
    const exec = /^ExecStart=(.*)$/m.exec(service)![1]!.split(' ');
    t.same(exec.slice(0, 5), [process.execPath, CLI, 'daemon', '--config', join(dir, 'bulkhead.json')], 'absolute node, CLI and config');
    t.equal(exec[exec.indexOf('--socket') + 1], join(dir, 'run', 'bh.sock'));
    t.match(socket, new RegExp(`^ListenStream=${join(dir, 'run', 'bh.sock').replace(/[.]/g, '\\.')}$`, 'm'), 'ListenStream is the absolute socketPath');
    t.match(socket, /^SocketMode=0660$/m);
    t.match(socket, /^SocketGroup=0$/m);
    t.match(socket, /^Service=bulkhead\.service$/m);
    t.match(socket, /^WantedBy=sockets\.target$/m);
    t.match(service, scope === 'user' ? /^WantedBy=default\.target$/m : /^WantedBy=multi-user\.target$/m);
    if (scope === 'system') t.match(service, /^ProtectSystem=full$/m);
    else t.notMatch(service, /ProtectSystem/, 'a user manager cannot apply ProtectSystem= without PrivateUsers=');
    if (hasAnalyze) {
      // A user manager needs a runtime directory; give it a private one (this test may run without a login session).
      const runtime = join(dir, `xdg-runtime-${scope}`);
      mkdirSync(runtime, { mode: 0o700 });
      const verify = spawnSync('systemd-analyze', [...(scope === 'user' ? ['--user'] : []), 'verify', join(dir, `units-${scope}`, 'bulkhead.service'), join(dir, `units-${scope}`, 'bulkhead.socket')], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: runtime } });
      t.equal(verify.status, 0, `systemd-analyze verify (${scope}): ${verify.stderr}`);
    }
  }
  if (hasAnalyze) {
    // Control: verify does fail a unit whose ExecStart cannot run.
    const broken = join(dir, 'broken');
    mkdirSync(broken);
    writeFileSync(join(broken, 'bulkhead.service'), readFileSync(join(dir, 'units-system', 'bulkhead.service'), 'utf8').replace(process.execPath, '/nonexistent/node'));
    writeFileSync(join(broken, 'bulkhead.socket'), readFileSync(join(dir, 'units-system', 'bulkhead.socket'), 'utf8'));
    const verify = spawnSync('systemd-analyze', ['verify', join(broken, 'bulkhead.service')], { encoding: 'utf8' });
    t.not(verify.status, 0, 'systemd-analyze verify rejects a unit it cannot run');
  }
  const neither = await runCli(['unit', '--config', 'bulkhead.json'], { cwd: dir });
  t.equal(neither.code, 1, 'neither --user nor --system is a usage error');
});

t.test('socket-activated daemon: adopts fd 3, serves the early client, notifies from its own pid', { skip: !hasActivate || !hasPython ? 'needs systemd-socket-activate and python3' : false }, async (t) => {
  const dir = join(work, 'activated');
  const config = writeConfig(dir);
  const socketPath = join(dir, 'run', 'bh.sock');
  const stateDir = join(dir, 'state');
  // The app's identity exists before the daemon ever ran (the daemon loads the same CA).
  const ca = await CertificateAuthority.loadOrCreate(join(stateDir, 'ca'));
  writeIdentity(join(dir, 'ids'), ca.issue('app'));
  const app = { name: 'app', certPem: readFileSync(join(dir, 'ids', 'app.cert.pem'), 'utf8'), keyPem: readFileSync(join(dir, 'ids', 'app.key.pem'), 'utf8') };
  const notify = await notifyReceiver(t, join(dir, 'notify.sock'));
  // systemd-socket-activate binds the socket, waits for the first connection, then execs the daemon (same pid).
  const activate = spawn('systemd-socket-activate', ['-l', socketPath, '-E', `NOTIFY_SOCKET=${join(dir, 'notify.sock')}`, '-E', 'WATCHDOG_USEC=400000', '-E', 'JOURNAL_STREAM=8:1234',
    process.execPath, CLI, 'daemon', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(async () => {
    if (activate.exitCode === null && activate.signalCode === null) {
      activate.kill('SIGKILL');
      await exited(activate);
    }
  });
  const stderr = jsonLines(activate.stderr!);
  const stdout = jsonLines(activate.stdout!);
  await stderr.waitFor((l) => typeof l['text'] === 'string' && (l['text'] as string).startsWith('Listening on'));
  t.notOk(existsSync(stateDir + '/identities'), 'the daemon has not started yet');

  // The first client connects while no daemon runs; its call is answered once the daemon is up.
  const client = new RemoteBroker(socketPath, app, { protocolsDir: join(LIVE, 'protocols') });
  t.teardown(() => client.close());
  const answer = await client.connect('chatty', { protocol: 'com.test.cli.chatty' }).call('say', { text: 'early' }) as { pid: number };
  t.ok(answer.pid > 0, 'the call made before the daemon existed was served');

  const listening = await stdout.waitFor((l) => l['event'] === 'listening');
  t.equal(listening['activated'], true, 'the daemon took the passed socket');
  t.equal(listening['pid'], activate.pid, 'systemd-socket-activate exec\'d the daemon in place (LISTEN_PID is its pid)');
  t.equal(stderr.all.filter((l) => l['event'] !== undefined).length, 0, 'under the journal (JOURNAL_STREAM) the log goes to stdout, not stderr');
  t.notOk(existsSync(join(stateDir, 'logs')), 'and no log file is written');

  const ready = await notify.waitFor('READY=1');
  t.equal(ready.pid, activate.pid, 'READY=1 comes from the daemon\'s own pid (NotifyAccess=main)');
  t.ok(ready.lines.some((l) => /^STATUS=1 services, \d running/.test(l)), `a STATUS= line: ${ready.lines.join(' | ')}`);
  const readyAt = notify.datagrams.indexOf(ready);
  const ping = await notify.waitFor('WATCHDOG=1', readyAt);
  const ping2 = await notify.waitFor('WATCHDOG=1', notify.datagrams.indexOf(ping) + 1);
  t.equal(ping.pid, activate.pid, 'watchdog pings from the daemon\'s pid');
  t.equal(ping2.pid, activate.pid);

  // Helpers inherit neither the listening socket nor systemd's variables.
  const daemonSocket = readlinkSync(`/proc/${activate.pid}/fd/3`);
  t.match(daemonSocket, /^socket:\[\d+\]$/);
  const helperFds = readdirSync(`/proc/${answer.pid}/fd`).map((fd) => {
    try {
      return readlinkSync(`/proc/${answer.pid}/fd/${fd}`);
    } catch {
      return '';
    }
  });
  t.notOk(helperFds.includes(daemonSocket), 'the helper holds no fd of the listening socket');
  const helperEnv = readFileSync(`/proc/${answer.pid}/environ`, 'utf8').split('\0');
  t.same(helperEnv.filter((v) => /^(LISTEN_|NOTIFY_SOCKET|WATCHDOG_)/.test(v)), [], 'no LISTEN_*, NOTIFY_SOCKET or WATCHDOG_* in the helper\'s environment');
  const daemonEnv = readFileSync(`/proc/${activate.pid}/environ`, 'utf8');
  t.match(daemonEnv, /LISTEN_FDS=1/, 'control: the daemon itself was started with LISTEN_FDS (the check above could have failed)');

  // What the journal would hold, formatted by `bulkhead logs --stdin` (journalctl -o cat | bulkhead logs --stdin).
  await stdout.waitFor((l) => l['event'] === 'output' && l['line'] === 'said: early'); // the helper's line may trail its reply
  const journal = stdout.all.map((l) => JSON.stringify(l)).join('\n');
  const formatted = spawnSync(process.execPath, [CLI, 'logs', '--stdin', '--no-color', 'chatty'], { input: journal, encoding: 'utf8' });
  t.equal(formatted.status, 0, formatted.stderr);
  t.match(formatted.stdout, new RegExp(`chatty\\[${answer.pid}\\] stdout: said: early`), 'journal lines read back as log entries');

  const before = notify.datagrams.length;
  activate.kill('SIGTERM');
  const stopping = await notify.waitFor('STOPPING=1', before);
  t.equal(stopping.pid, activate.pid, 'STOPPING=1 from the daemon');
  t.equal(await exited(activate), 0);
  t.ok(existsSync(socketPath), 'the socket systemd owns is not unlinked on exit');
});

t.test('a passed socket bound elsewhere than socketPath is refused with ERR_SOCKET_ACTIVATION', { skip: !hasActivate ? 'needs systemd-socket-activate' : false }, async (t) => {
  const dir = join(work, 'wrong');
  const config = writeConfig(dir);
  const elsewhere = join(dir, 'elsewhere.sock');
  const activate = spawn('systemd-socket-activate', ['-l', elsewhere, process.execPath, CLI, 'daemon', '--config', config, '--no-log-file'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr = jsonLines(activate.stderr!);
  await stderr.waitFor((l) => typeof l['text'] === 'string' && (l['text'] as string).startsWith('Listening on'));
  const { createConnection } = await import('node:net');
  const poke = createConnection(elsewhere);
  poke.on('error', () => undefined);
  t.teardown(() => poke.destroy());
  t.equal(await exited(activate), 1, 'the daemon exits 1 (a config problem) without serving');
  t.ok(stderr.all.some((l) => typeof l['text'] === 'string' && (l['text'] as string).includes('(ERR_SOCKET_ACTIVATION)') && (l['text'] as string).includes(elsewhere)), 'the message names the path it got');
});

t.test('an abstract NOTIFY_SOCKET (@name) receives READY=1; without systemd the log persists in <state-dir>/logs', { skip: !hasPython ? 'needs python3' : false }, async (t) => {
  const dir = join(work, 'abstract');
  const config = writeConfig(dir);
  const name = `@bulkhead-test-${process.pid}`;
  const notify = await notifyReceiver(t, name);
  const env: NodeJS.ProcessEnv = { ...process.env, NOTIFY_SOCKET: name };
  delete env['JOURNAL_STREAM'];
  delete env['INVOCATION_ID'];
  const daemon = spawn(process.execPath, [CLI, 'daemon', '--config', config], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(async () => {
    if (daemon.exitCode === null && daemon.signalCode === null) {
      daemon.kill('SIGKILL');
      await exited(daemon);
    }
  });
  const ready = await notify.waitFor('READY=1');
  t.equal(ready.pid, daemon.pid, 'READY=1 over the abstract socket, from the daemon');
  daemon.kill('SIGTERM');
  t.equal(await exited(daemon), 0);
  const logs = readdirSync(join(dir, 'state', 'logs'));
  const current = logs.find((f) => /^daemon\.\d+\.log$/.test(f));
  t.ok(current, `a rolled log file in <state-dir>/logs (${logs.join(', ')})`);
  const text = readFileSync(join(dir, 'state', 'logs', current!), 'utf8');
  t.match(text, /"event":"listening"/, 'holding the daemon\'s events');
  t.notOk(existsSync(join(dir, 'run', 'bh.sock')), 'control: a daemon that made its own socket removes it on exit');
  // With the daemon gone, `bulkhead logs` reads what it left on disk.
  const offline = await runCli(['logs', '--config', config, '--events', '--no-color'], { cwd: dir });
  t.equal(offline.code, 0, offline.stderr);
  t.match(offline.stderr, /showing what it logged in .*state\/logs/);
  t.match(offline.stdout, /daemon event: listening on .*bh\.sock/);
});
