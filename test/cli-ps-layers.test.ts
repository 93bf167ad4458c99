/**
 * `bulkhead ps --layers` against a real daemon started by the CLI: a
 * sandboxed helper's rules and the layers that enforce them, line by line as
 * `ps --json` reports them; an unknown service name exits 1.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServiceStatus } from '../lib/broker/service-supervisor.js';
import { CLI, FIXTURES, runCli, type CliRun } from './helpers.js';

const LIVE = join(FIXTURES, 'cli', 'live');
const work = mkdtempSync(join(tmpdir(), 'bulkhead-cli-layers-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const config = join(work, 'bulkhead.json');
const services = (JSON.parse(readFileSync(join(LIVE, 'bulkhead.json'), 'utf8')).services as Array<{ name: string }>).filter((s) => s.name === 'boxed' || s.name === 'chatty');
writeFileSync(config, JSON.stringify({ root: LIVE, services }));
const env = { ...process.env, BULKHEAD_SOCKET: join(work, 'run', 'bulkhead.sock'), BULKHEAD_STATE_DIR: join(work, 'state'), NO_COLOR: '1' };
const bulkhead = (...args: string[]): Promise<CliRun> => runCli(args, { cwd: work, env });

const daemon = spawn(process.execPath, [CLI, 'daemon', '--config', config], { env, stdio: ['ignore', 'ignore', 'pipe'] });
t.teardown(() => new Promise<void>((resolve) => {
  if (daemon.exitCode !== null) resolve();
  else {
    daemon.once('exit', () => resolve());
    daemon.kill('SIGKILL');
  }
}));
await new Promise<void>((resolve, reject) => {
  createInterface({ input: daemon.stderr! }).on('line', (line) => {
    if (line.includes('"event":"listening"')) resolve();
  });
  daemon.once('exit', (code) => reject(new Error(`the daemon exited ${code}`)));
});

t.test('ps --layers: each sandbox rule of a service and the layers that enforce it, as in --json', async (t) => {
  const kick = await bulkhead('kickstart', 'boxed');
  t.equal(kick.code, 0, kick.stderr);
  const [json, text] = await Promise.all([bulkhead('ps', '--json', 'boxed'), bulkhead('ps', '--layers', 'boxed')]);
  t.equal(text.code, 0, text.stderr);
  const listed = JSON.parse(json.stdout) as ServiceStatus[];
  t.same(listed.map((s) => s.name), ['boxed'], 'ps SERVICE lists only that service');
  const report = listed[0]!.sandbox!;
  const lines = text.stdout.trimEnd().split('\n');
  t.match(lines[0], /^boxed {2}pure-compute \d+\/\d+$/);
  t.match(lines[1], /^ {2}RULE +LAYERS$/);
  t.equal(lines.length, 2 + report.rules.length, 'one line per rule, only boxed\'s');
  for (const rule of report.rules) {
    const line = lines.find((l) => l.slice(2).startsWith(`${rule.rule} `));
    t.ok(line?.endsWith(rule.unenforced ? `(unenforced; missing ${rule.missing})` : rule.layers.join(', ') || '-'), `${rule.rule}: ${rule.layers.join(', ')}`);
    t.equal(line?.startsWith('! '), rule.unenforced);
  }
  t.ok(report.rules.some((r) => r.layers.includes('seccomp')), 'the kernel layers are in the view');
});

t.test('ps --layers names an unknown service and exits 1; an unsandboxed one says so', async (t) => {
  const unknown = await bulkhead('ps', '--layers', 'no-such-service');
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /No service named "no-such-service"/);
  const plain = await bulkhead('ps', '--layers', 'chatty');
  t.equal(plain.code, 0, plain.stderr);
  t.match(plain.stdout, /^chatty {2}(-|none)\n {2}\((no launch yet|no sandbox profile)/);
});
