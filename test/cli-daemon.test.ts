/**
 * The `bulkhead` CLI against a real daemon started by the CLI itself
 * (`bulkhead daemon`): ps, top, logs (and -f), kickstart, stop, reload,
 * identity issue/revoke, sign, and the exit codes. Helpers are real
 * processes; pids and memory are checked against /proc.
 */
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../lib/broker/broker.js';
import type { ServiceStatus } from '../lib/broker/service-supervisor.js';
import { RemoteBroker } from '../lib/daemon/remote-broker.js';
import { readIdentity } from '../lib/identity/index.js';
import { CLI, FIXTURES, REPO_ROOT, rejection, runCli, type CliRun } from './helpers.js';
import { seedStateDir } from './shared-ca.js';

const LIVE = join(FIXTURES, 'cli', 'live');
const PROTOCOLS = join(LIVE, 'protocols');

const work = mkdtempSync(join(tmpdir(), 'bulkhead-cli-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const socket = join(work, 'run', 'bulkhead.sock');
const stateDir = join(work, 'state');
const config = join(work, 'bulkhead.json');
const services = JSON.parse(readFileSync(join(LIVE, 'bulkhead.json'), 'utf8')).services as unknown[];
writeFileSync(config, JSON.stringify({ root: LIVE, services }));

/** Every CLI run finds the daemon through the environment (the --socket / --state-dir defaults). */
const env = { ...process.env, BULKHEAD_SOCKET: socket, BULKHEAD_STATE_DIR: stateDir, NO_COLOR: '1' };

function bulkhead(...args: string[]): Promise<CliRun> {
  return runCli(args, { cwd: work, env });
}

async function psJson(): Promise<ServiceStatus[]> {
  const run = await bulkhead('ps', '--json');
  if (run.code !== 0) throw new Error(`ps --json exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as ServiceStatus[];
}

const byName = (list: ServiceStatus[], name: string): ServiceStatus => list.find((s) => s.name === name)!;

/** Lines of a child's stream, with a way to wait for one that matches. */
function lines(stream: NodeJS.ReadableStream): { all: string[]; waitFor(match: (line: string) => boolean): Promise<string> } {
  const all: string[] = [];
  const waiters: Array<{ match: (line: string) => boolean; resolve(line: string): void }> = [];
  createInterface({ input: stream }).on('line', (line) => {
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
    waitFor: (match) => {
      const seen = all.find(match);
      return seen !== undefined ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ match, resolve }));
    },
  };
}

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

// The daemon, started the way a user would, on a copy of the run's test CA (test/shared-ca.ts): it loads that CA and
// admin identity as it loads any existing state dir, instead of making two RSA keys; `identity issue` still makes its.
await seedStateDir(stateDir);
// The daemon, started the way a user would.
const daemon = spawn(process.execPath, [CLI, 'daemon', '--config', config, '--log-file', join(work, 'log', 'daemon.log')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
const daemonLog = lines(daemon.stderr!);
t.teardown(async () => {
  if (daemon.exitCode === null) {
    daemon.kill('SIGKILL');
    await exited(daemon);
  }
});
await daemonLog.waitFor((line) => line.includes('"event":"listening"'));

// An app identity, issued with the CLI, for calls through the daemon.
const issued = await bulkhead('identity', 'issue', 'app', '--json');
const app = { name: 'app', ...readIdentity(join(stateDir, 'identities'), 'app') };
const client = new RemoteBroker(socket, app, { protocolsDir: PROTOCOLS });
t.teardown(() => client.close());
const chatty = () => client.connect('chatty', { protocol: 'com.test.cli.chatty' });

t.test('identity issue writes a certificate from the daemon\'s CA', async (t) => {
  t.equal(issued.code, 0, issued.stderr);
  const result = JSON.parse(issued.stdout) as { name: string; serial: string; certPath: string };
  t.equal(result.name, 'app');
  t.match(result.serial, /^[0-9a-f]+$/);
  t.equal(result.certPath, join(stateDir, 'identities', 'app.cert.pem'));
  const again = await bulkhead('identity', 'issue', 'app');
  t.equal(again.code, 1, 'an existing identity is not overwritten without --force');
  t.match(again.stderr, /--force/);
});

t.test('ps shows a running helper whose pid exists and whose RSS matches /proc', async (t) => {
  const kick = await bulkhead('kickstart', 'chatty');
  t.equal(kick.code, 0, kick.stderr);
  const [json, text] = await Promise.all([psJson(), bulkhead('ps')]);
  const s = byName(json, 'chatty');
  t.equal(s.state, 'running');
  t.type(s.pid, 'number');
  t.match(kick.stdout, `pid ${s.pid}`);
  t.ok(existsSync(`/proc/${s.pid}`), 'the pid is a live process');
  // chatty runs unsandboxed: its pid is the node process itself.
  const vmRss = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${s.pid}/status`, 'utf8'))![1]) * 1024;
  t.ok(s.rssBytes !== null && s.rssBytes > vmRss / 2 && s.rssBytes < vmRss * 2, `RSS ${s.rssBytes} is near /proc's VmRSS ${vmRss}`);
  t.ok(s.cpuPercent !== null && s.cpuPercent >= 0 && s.cpuPercent < 400, `CPU ${s.cpuPercent}%`);
  t.equal(text.code, 0, text.stderr);
  const header = text.stdout.split('\n')[0]!;
  for (const column of ['NAME', 'STATE', 'PID', 'UPTIME', 'LAUNCHES', 'CRASHES', 'LAST EXIT', 'CPU%', 'RSS', 'CALLS', 'INFLIGHT', 'NEXT RUN', 'SANDBOX']) t.ok(header.includes(column), `column ${column}`);
  const row = text.stdout.split('\n').find((line) => line.startsWith('chatty '))!;
  t.match(row, new RegExp(`running\\s+${s.pid}\\s`));
  t.match(row, /MiB/);
});

t.test('a sandboxed helper: RSS counts its whole tree, and the enforcement summary is shown', async (t) => {
  const kick = await bulkhead('kickstart', 'boxed', '--json');
  t.equal(kick.code, 0, kick.stderr);
  const { pid } = JSON.parse(kick.stdout) as { pid: number };
  const [json, text] = await Promise.all([psJson(), bulkhead('ps')]);
  const s = byName(json, 'boxed');
  t.equal(s.pid, pid);
  t.ok(existsSync(`/proc/${pid}`));
  // The pid is the outermost wrapper (bubblewrap, a few MiB); node runs below it.
  t.ok(s.rssBytes !== null && s.rssBytes > 20 * 2 ** 20 && s.rssBytes < 2 ** 30, `RSS ${s.rssBytes} includes the node inside the sandbox`);
  const enforced = s.sandbox!.rules.filter((r) => !r.unenforced).length;
  t.match(text.stdout.split('\n').find((line) => line.startsWith('boxed '))!, `pure-compute ${enforced}/${s.sandbox!.rules.length}`);
});

t.test('logs shows what a helper printed, tagged with service and pid; -f follows', async (t) => {
  const follower = spawn(process.execPath, [CLI, 'logs', 'chatty', '-f', '-n', '1'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => follower.kill('SIGKILL'));
  const followed = lines(follower.stdout!);
  await followed.waitFor(() => true); // the follower has its cursor
  const { pid } = await chatty().call('say', { text: 'hello from the test' });
  const seen = await followed.waitFor((line) => line.includes('said: hello from the test'));
  t.match(seen, `chatty[${pid}] stdout: said: hello from the test`);
  await followed.waitFor((line) => line.includes(`chatty[${pid}] stderr: warned: hello from the test`));
  follower.kill('SIGINT');
  t.equal(await exited(follower), 0, 'Ctrl-C ends a follow with exit 0');

  const run = await bulkhead('logs', 'chatty');
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, `chatty[${pid}] stdout: said: hello from the test`);
  t.match(run.stdout, `chatty[${pid}] event: launched pid ${pid}`);
  t.notMatch(run.stdout, /boxed/, 'only the named service');
  const json = await bulkhead('logs', '--json', '-n', '500');
  const entries = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { service: string | null; pid: number | null; stream: string; text: string });
  t.ok(entries.some((e) => e.service === 'chatty' && e.pid === pid && e.stream === 'stderr' && e.text === 'warned: hello from the test'));
  t.ok(entries.some((e) => e.service === 'boxed' && e.stream === 'event'), 'every service without a name');
});

t.test('a crashed helper shows its exit and reason in ps; logs has its last words', async (t) => {
  const before = byName(await psJson(), 'chatty');
  t.equal((await rejection(chatty().call('crash', { code: 3 }))).code, 'ERR_INTERRUPTED');
  // hog allocates until its sandbox's memory limit (128 MiB) stops it.
  t.equal((await rejection(client.connect('hog', { protocol: 'com.test.cli.chatty' }).call('hog', {}))).code, 'ERR_INTERRUPTED');
  const [json, text, logs] = await Promise.all([psJson(), bulkhead('ps'), bulkhead('logs', 'chatty', '--events')]);
  const s = byName(json, 'chatty');
  t.equal(s.state, 'idle');
  t.equal(s.pid, null);
  t.equal(s.crashes, before.crashes + 1);
  t.equal(s.lastExit!.code, 3);
  t.equal(s.lastExit!.requested, false);
  t.match(s.lastExit!.stderrTail.join('\n'), 'giving up with code 3');
  t.match(text.stdout.split('\n').find((line) => line.startsWith('chatty '))!, /idle\s+-\s+-\s+\d+\s+1\s+exit 3/);
  t.match(byName(json, 'hog').lastExit!.reason, /^memory limit \(128 MiB\)/);
  t.match(text.stdout.split('\n').find((line) => line.startsWith('hog '))!, 'memory limit (128 MiB)');
  t.match(logs.stdout, `chatty[${before.pid}] event: exited with code 3, unrequested`);
  t.notMatch(logs.stdout, /stdout:|stderr:/, '--events leaves helper output out');
  const all = await bulkhead('logs', 'chatty');
  t.match(all.stdout, `chatty[${before.pid}] stderr: chatty: giving up with code 3`);
});

t.test('kickstart, kickstart --restart and stop change the state', async (t) => {
  const start = await bulkhead('kickstart', 'chatty', '--json');
  t.equal(start.code, 0, start.stderr);
  const first = (JSON.parse(start.stdout) as { pid: number }).pid;
  t.equal(byName(await psJson(), 'chatty').state, 'running');
  const restart = await bulkhead('kickstart', 'chatty', '--restart', '--json');
  const second = (JSON.parse(restart.stdout) as { pid: number }).pid;
  t.not(second, first, 'a new helper');
  const stop = await bulkhead('stop', 'chatty');
  t.equal(stop.code, 0, stop.stderr);
  t.equal(stop.stdout, 'chatty: stopped\n');
  const s = byName(await psJson(), 'chatty');
  t.equal(s.state, 'idle');
  t.equal(s.pid, null);
  t.equal(s.lastExit!.requested, true);
  const unknown = await bulkhead('kickstart', 'nope');
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, 'ERR_UNKNOWN_SERVICE');
});

t.test('top refreshes: two frames, each with the table and the latest events', async (t) => {
  const run = await bulkhead('top', '-n', '2', '-i', '200');
  t.equal(run.code, 0, run.stderr);
  const frames = run.stdout.split(/^bulkhead top /m).slice(1);
  t.equal(frames.length, 2);
  for (const frame of frames) {
    t.match(frame, /daemon pid \d+ on /);
    t.match(frame, /^NAME\s+STATE/m);
    t.match(frame, /^chatty\s+idle/m);
    t.match(frame, /Latest events/);
  }
});

t.test('reload picks up a new service', async (t) => {
  writeFileSync(config, JSON.stringify({ root: LIVE, services: [...services, { name: 'extra', entry: './chatty-service.js', protocol: 'com.test.cli.chatty' }] }));
  const run = await bulkhead('reload', '--json');
  t.equal(run.code, 0, run.stderr);
  t.same(JSON.parse(run.stdout), { added: ['extra'], removed: [], replaced: [], editedProfiles: [], relaunched: [] });
  t.ok((await psJson()).some((s) => s.name === 'extra'));
});

t.test('a bad reload changes nothing and is logged; restart swaps the helper for a new one', async (t) => {
  const good = { root: LIVE, services: [...services, { name: 'extra', entry: './chatty-service.js', protocol: 'com.test.cli.chatty' }] };
  const kick = await bulkhead('kickstart', 'extra', '--json');
  t.equal(kick.code, 0, kick.stderr);
  const { pid } = JSON.parse(kick.stdout) as { pid: number };
  const before = (await psJson()).map((s) => s.name).sort();
  // The case: every other service dropped, and extra's new entry missing.
  writeFileSync(config, JSON.stringify({ root: LIVE, services: [{ name: 'extra', entry: './missing.js', protocol: 'com.test.cli.chatty' }] }));
  const bad = await bulkhead('reload');
  t.equal(bad.code, 1);
  t.match(bad.stderr, 'ERR_INVALID_MANIFEST');
  t.match(bad.stderr, '/entry', 'the field is named');
  const after = await psJson();
  t.same(after.map((s) => s.name).sort(), before, 'no service removed');
  t.equal(byName(after, 'extra').pid, pid, 'the running helper untouched');
  await daemonLog.waitFor((line) => line.includes('"event":"reload-failed"'));
  t.pass('the refused reload is logged with its reason');
  writeFileSync(config, JSON.stringify(good));
  const restart = await bulkhead('restart', 'extra', '--json');
  t.equal(restart.code, 0, restart.stderr);
  const restarted = (JSON.parse(restart.stdout) as { pid: number }).pid;
  t.not(restarted, pid, 'a new helper');
  t.equal(byName(await psJson(), 'extra').state, 'running');
});

t.test('a reload whose new helper throws at import is rolled back: exit 1, ERR_RELOAD_FAILED logged, the running helper and manifest untouched', async (t) => {
  const good = { root: LIVE, services: [...services, { name: 'extra', entry: './chatty-service.js', protocol: 'com.test.cli.chatty' }] };
  const kick = await bulkhead('kickstart', 'extra', '--json');
  t.equal(kick.code, 0, kick.stderr);
  const { pid } = JSON.parse(kick.stdout) as { pid: number };
  // The entry exists (the config checks pass) but throws before serve(), as a missing setting makes a real service do.
  const throwing = join(FIXTURES, 'supervision', 'throws-at-start.js');
  writeFileSync(config, JSON.stringify({ root: LIVE, services: [...services, { name: 'extra', entry: throwing, protocol: 'com.test.cli.chatty' }, { name: 'more', entry: './chatty-service.js', protocol: 'com.test.cli.chatty' }] }));
  const bad = await bulkhead('reload');
  t.equal(bad.code, 1, bad.stdout);
  t.match(bad.stderr, 'ERR_RELOAD_FAILED');
  t.match(bad.stderr, 'API_KEY is not set', 'the thrown line reaches the operator');
  const after = await psJson();
  t.equal(byName(after, 'extra').pid, pid, 'the running helper untouched');
  t.equal(byName(after, 'extra').state, 'running');
  t.notOk(after.some((s) => s.name === 'more'), 'the service the config adds was not added');
  await daemonLog.waitFor((line) => line.includes('"event":"reload-failed"') && line.includes('ERR_RELOAD_FAILED'));
  t.pass('the rolled-back reload is logged with its code and reason');
  writeFileSync(config, JSON.stringify(good));
});

t.test('refusals exit 1 with the daemon\'s code; no daemon exits 3', async (t) => {
  const guest = await bulkhead('identity', 'issue', 'guest', '--json');
  t.equal(guest.code, 0, guest.stderr);
  const denied = await bulkhead('ps', '--identity', 'guest');
  t.equal(denied.code, 1);
  t.match(denied.stderr, 'ERR_NOT_PERMITTED');
  t.match(denied.stderr, 'controlClients', 'the message says what to do');
  const revoke = await bulkhead('identity', 'revoke', join(stateDir, 'identities', 'guest.cert.pem'));
  t.equal(revoke.code, 0, revoke.stderr);
  const revoked = await bulkhead('ps', '--identity', 'guest');
  t.equal(revoked.code, 1);
  t.match(revoked.stderr, 'ERR_CERT_REVOKED');
  const nobody = await bulkhead('ps', '--socket', join(work, 'run', 'nobody.sock'));
  t.equal(nobody.code, 3);
  t.match(nobody.stderr, 'nobody.sock');
});

t.test('ps --clients lists connected clients with their kernel uid/gid/pid and path, and refusals per reason', async (t) => {
  // An app connection with the default options is handed off; one with direct: false is routed.
  const routedClient = new RemoteBroker(socket, app, { protocolsDir: PROTOCOLS, direct: false });
  t.teardown(() => routedClient.close());
  await client.connect('chatty', { protocol: 'com.test.cli.chatty' }).call('say', { text: 'direct' });
  await routedClient.connect('chatty', { protocol: 'com.test.cli.chatty' }).call('say', { text: 'routed' });
  // ps itself is a connected client (admin, on bulkhead.control) while it asks: its own row shows.
  const text = await bulkhead('ps', '--clients');
  t.equal(text.code, 0, text.stderr);
  const appPaths = [...text.stdout.matchAll(new RegExp(`^app\\s+chatty\\s+(\\S+)\\s+\\d+\\s+\\d+\\s+${process.pid}\\s`, 'gm'))].map((m) => m[1]).sort();
  // (Earlier tests' connections of `client` are still open, direct too.)
  t.same({ paths: [...new Set(appPaths)], routed: appPaths.filter((p) => p === 'routed').length }, { paths: ['direct', 'routed'], routed: 1 }, `this process's chatty connections: the default ones direct, the direct: false one routed (${appPaths.join(', ')})`);
  const row = new RegExp(`^admin\\s+bulkhead\\.control\\s+routed\\s+${process.getuid!()}\\s+${process.getgid!()}\\s+(\\d+)\\s`, 'm').exec(text.stdout);
  t.ok(row !== null, 'a row for the ps process: identity, service, and the uid/gid the kernel reported');
  t.not(Number(row?.[1]), process.pid, 'its pid is the ps child\'s, not ours');
  t.match(text.stdout, /refused: .*ERR_NOT_PERMITTED:not-in-clients \d+/, 'the earlier refusal of "guest" is counted under its code and reason');
  t.match(text.stdout, /daemon id [0-9a-f]{64}/, 'the daemon id is a SHA-256 fingerprint');
  const logs = await bulkhead('logs', '--events', '-n', '200');
  t.match(logs.stdout, new RegExp(`refused guest \\(uid ${process.getuid!()}, gid ${process.getgid!()}, pid \\d+\\) to bulkhead\\.control: ERR_NOT_PERMITTED \\(not-in-clients\\)`), 'logs show the refusal with the peer\'s kernel credentials');
});

t.test('sign writes a signature with an issued identity', async (t) => {
  const dir = join(work, 'svc');
  mkdirSync(dir);
  writeFileSync(join(dir, 'main.js'), 'export {};\n');
  const run = await bulkhead('sign', dir, '--identity', 'app');
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, 'signed 1 file');
  t.ok(existsSync(join(dir, 'bulkhead.signature.json')));
});

t.test('an embedded broker\'s status() has the same shape as ps --json, calls served included', async (t) => {
  const broker = Broker.fromConfig(join(LIVE, 'bulkhead.json'), { stateDir: join(work, 'embedded-state') });
  t.teardown(() => broker.close());
  const connection = broker.connect('chatty');
  await connection.call('say', { text: 'embedded' });
  await connection.call('say', { text: 'embedded' });
  const local = broker.status('chatty');
  t.equal(local.callsServed, 2);
  t.ok(local.rssBytes !== null && local.rssBytes > 0);
  const remote = byName(await psJson(), 'chatty');
  t.same(Object.keys(remote).sort(), Object.keys(local).sort(), 'same fields');
});

t.test('SIGTERM stops the daemon cleanly; its log file has the events', async (t) => {
  // Daemon.close() waits for server.close() before it ends client sessions, so a connected
  // client would hold the daemon open (reported; see the issue notes): disconnect first.
  await client.close();
  daemon.kill('SIGTERM');
  t.equal(await exited(daemon), 0);
  await daemonLog.waitFor((line) => line.includes('"event":"stopped"'));
  const file = readFileSync(join(work, 'log', 'current.log'), 'utf8');
  const events = file.trim().split('\n').map((l) => JSON.parse(l) as { event: string; level: number; reason?: string });
  t.ok(events.some((e) => e.event === 'exit' && e.level === 40 && e.reason?.startsWith('memory limit') === true), 'an unrequested exit is a warning, with its reason');
  t.ok(events.some((e) => e.event === 'output'), 'helper output is logged');
  t.equal(events.at(-1)!.event, 'stopped');
  t.notOk(existsSync(socket), 'the socket is removed');
});
