/**
 * The pure logic behind systemd units, socket activation, sd_notify's
 * environment, the HTTP address, crash reasons, trace context and journal
 * lines: fast, in memory, no processes.
 */
import t from 'tap';
import { listenFdFromEnv, underJournal } from '../lib/daemon/systemd-activation.js';
import { notifyEnvironment } from '../lib/daemon/systemd-notify.js';
import { generateUnits, quoteExecArg } from '../lib/daemon/systemd-units.js';
import { parseHttpAddress } from '../lib/daemon/http-server.js';
import { crashReason } from '../lib/broker/metrics.js';
import { isTraceparent } from '../lib/connection/trace-context.js';
import { entryFromLogLine } from '../lib/cli/log-files.js';
import { expectCode } from './helpers.js';

t.test('LISTEN_FDS: fd 3 only for our pid, the variables removed either way', async (t) => {
  const env: NodeJS.ProcessEnv = { LISTEN_PID: '42', LISTEN_FDS: '1', LISTEN_FDNAMES: 'whatever' };
  t.equal(listenFdFromEnv(env, 42), 3, 'fd 3, whatever LISTEN_FDNAMES says');
  t.same(env, {}, 'LISTEN_* removed');
  t.equal(listenFdFromEnv({ LISTEN_PID: '42', LISTEN_FDS: '1' }, 43), undefined, 'meant for another process');
  t.equal(listenFdFromEnv({ LISTEN_FDS: '1' }, 42), undefined, 'no LISTEN_PID');
  t.equal(listenFdFromEnv({ LISTEN_PID: '42', LISTEN_FDS: '0' }, 42), undefined);
  expectCode(t, () => listenFdFromEnv({ LISTEN_PID: '42', LISTEN_FDS: '2' }, 42), 'ERR_SOCKET_ACTIVATION');
  t.ok(underJournal({ JOURNAL_STREAM: '8:1234' }));
  t.ok(underJournal({ INVOCATION_ID: 'abc' }));
  t.notOk(underJournal({}));
});

t.test('NOTIFY_SOCKET and the watchdog', async (t) => {
  t.same(notifyEnvironment({ NOTIFY_SOCKET: '/run/n', WATCHDOG_USEC: '4000000' }, 7), { socket: '/run/n', watchdogUsec: 4_000_000 });
  t.same(notifyEnvironment({ NOTIFY_SOCKET: '@abstract', WATCHDOG_USEC: '4000000', WATCHDOG_PID: '7' }, 7), { socket: '@abstract', watchdogUsec: 4_000_000 });
  t.equal(notifyEnvironment({ NOTIFY_SOCKET: '/run/n', WATCHDOG_USEC: '4000000', WATCHDOG_PID: '8' }, 7)?.watchdogUsec, undefined, 'a watchdog meant for another pid is not ours');
  t.equal(notifyEnvironment({ NOTIFY_SOCKET: 'relative' }, 7), undefined, 'neither a path nor @abstract');
  t.equal(notifyEnvironment({}, 7), undefined);
});

t.test('units: quoting, paths and targets', async (t) => {
  t.equal(quoteExecArg('/usr/bin/node'), '/usr/bin/node');
  t.equal(quoteExecArg('/home/me/my app/x.json'), '"/home/me/my app/x.json"');
  t.equal(quoteExecArg('/a/100%/$HOME'), '"/a/100%%/$$HOME"', 'specifiers and variables escaped');
  const spec = { name: 'bh', nodePath: '/usr/bin/node', cliPath: '/opt/bh/cli.js', configPath: '/etc/bh.json', socketPath: '/run/bh/bh.sock', socketMode: 0o660, socketGroup: 120, stateDir: '/var/lib/bh' };
  const system = generateUnits({ ...spec, scope: 'system' });
  t.equal(system.service.file, 'bh.service');
  t.match(system.service.text, /^WantedBy=multi-user\.target$/m);
  t.match(system.service.text, /^PrivateTmp=yes$/m);
  t.match(system.socket.text, /^SocketMode=0660$/m);
  t.match(system.socket.text, /^SocketGroup=120$/m);
  t.match(system.socket.text, /^DirectoryMode=0750$/m, 'the group can reach a group socket');
  const user = generateUnits({ ...spec, scope: 'user', socketPath: '/tmp/bh.sock', socketGroup: undefined, watchdogSec: 0 });
  t.match(user.service.text, /^WantedBy=default\.target$/m);
  t.notMatch(user.service.text, /WatchdogSec/, '--watchdog 0: none');
  t.notMatch(user.service.text, /PrivateTmp/);
  const tmp = generateUnits({ ...spec, scope: 'system', socketPath: '/tmp/bh.sock' });
  t.notMatch(tmp.service.text, /PrivateTmp/, 'no private /tmp when the socket lives there');
});

t.test('--http addresses', async (t) => {
  t.same(parseHttpAddress('9464'), { host: '127.0.0.1', port: 9464 }, 'loopback by default');
  t.same(parseHttpAddress('0.0.0.0:80'), { host: '0.0.0.0', port: 80 });
  t.same(parseHttpAddress('[::1]:9464'), { host: '::1', port: 9464 });
  t.equal(parseHttpAddress('127.0.0.1:99999'), undefined);
  t.equal(parseHttpAddress('http://x:1'), undefined);
});

t.test('crash reasons stay few (a label)', async (t) => {
  t.equal(crashReason({ code: 134, signal: null, reason: 'memory limit (128 MiB), probably: the helper aborted' }), 'memory limit');
  t.equal(crashReason({ code: null, signal: 'SIGKILL', reason: undefined }), 'signal SIGKILL');
  t.equal(crashReason({ code: 3, signal: null, reason: undefined }), 'exit code 3');
  t.equal(crashReason({ code: 1, signal: null, reason: 'CPU limit 10 s' }), 'cpu limit  s', 'numbers removed');
});

t.test('traceparent', async (t) => {
  t.ok(isTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'));
  t.notOk(isTraceparent('00-00000000000000000000000000000000-00f067aa0ba902b7-01'), 'all-zero trace id');
  t.notOk(isTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01'), 'all-zero parent id');
  t.notOk(isTraceparent('ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'), 'version ff');
  t.notOk(isTraceparent('00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01'), 'upper case');
  t.notOk(isTraceparent(42));
});

t.test('journal / file lines back into log entries', async (t) => {
  const out = entryFromLogLine('{"level":30,"time":"2026-12-05T04:00:00.000Z","event":"output","service":"a","pid":5,"stream":"stderr","line":"oops"}', 1);
  t.same(out, { seq: 1, time: Date.parse('2026-12-05T04:00:00.000Z'), service: 'a', pid: 5, stream: 'stderr', text: 'oops' });
  const exit = entryFromLogLine('{"level":40,"time":"2026-12-05T04:00:01.000Z","event":"exit","service":"a","pid":5,"code":null,"signal":"SIGKILL","reason":null,"requested":false}', 2);
  t.equal(exit?.stream, 'event');
  t.equal(exit?.text, 'was killed by SIGKILL, unrequested');
  t.equal(exit?.data?.['level'], undefined, 'pino fields dropped from data');
  t.equal(entryFromLogLine('not json', 3), undefined);
  t.equal(entryFromLogLine('{"no":"event"}', 3), undefined);
  t.equal(entryFromLogLine('{"event":"output","__proto__":{"x":1},"service":"a","stream":"stdout","line":"l"}', 4)?.text, 'l');
});
