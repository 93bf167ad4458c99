// The daemon logs a prewarmed spare's takeover (lib/daemon/daemon.ts): after a crash of the serving helper (SIGKILL
// to its node from outside), its log has `takeover` (the spare's pid, the old pid), then the old helper's `exit`
// with the old pid, then the spare's `launch` (docs/launch-policies.md, "Prewarm"), and `bulkhead logs --events`
// reads it as one line. A real daemon started by the CLI; the order is taken from its log, never from timings.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { helperNode } from '../lib/broker/certain-death.js';
import type { ServiceStatus } from '../lib/broker/service-supervisor.js';
import { CLI, FIXTURES, runCli } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'bulkhead-takeover-log-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const config = join(work, 'bulkhead.json');
writeFileSync(config, JSON.stringify({ root: FIXTURES, services: [{ name: 'tk', entry: './takeover-service.js', protocol: 'com.test.takeover', launch: { prewarm: true, throttleMs: 0 } }] }));
const env = { ...process.env, BULKHEAD_SOCKET: join(work, 'run', 'bulkhead.sock'), BULKHEAD_STATE_DIR: join(work, 'state'), NO_COLOR: '1' };

const daemon = spawn(process.execPath, [CLI, 'daemon', '--config', config], { env, stdio: ['ignore', 'ignore', 'pipe'] });
t.teardown(() => daemon.kill('SIGKILL'));
/** The daemon's JSON log entries, in order, with a way to wait for one. */
const entries: Array<Record<string, unknown>> = [];
const waiters: Array<{ match: (e: Record<string, unknown>) => boolean; resolve: () => void }> = [];
createInterface({ input: daemon.stderr! }).on('line', (line) => {
  if (!line.startsWith('{')) return;
  entries.push(JSON.parse(line) as Record<string, unknown>);
  for (const w of [...waiters]) if (w.match(entries.at(-1)!)) w.resolve();
});
const waitFor = (match: (e: Record<string, unknown>) => boolean): Promise<void> =>
  entries.some(match) ? Promise.resolve() : new Promise((resolve) => waiters.push({ match, resolve }));

await waitFor((e) => e['event'] === 'listening');

async function status(): Promise<ServiceStatus> {
  const run = await runCli(['ps', '--json'], { cwd: work, env });
  return (JSON.parse(run.stdout) as ServiceStatus[]).find((s) => s.name === 'tk')!;
}

t.test('a crash of a prewarmed service: takeover, the old exit, the spare\'s launch, in the daemon\'s log', async (t) => {
  const kick = await runCli(['kickstart', 'tk', '--json'], { cwd: work, env });
  t.equal(kick.code, 0, kick.stderr);
  const old = (JSON.parse(kick.stdout) as { pid: number }).pid;
  // No event reaches the CLI when the spare is warm: ps is asked until it shows one (bounded).
  let spare: number | null = null;
  for (let i = 0; i < 200 && spare === null; i++) spare = (await status()).sparePid;
  if (spare === null) throw new Error('no warm spare after 200 ps calls');
  const from = entries.length;
  process.kill(helperNode(old, process.execPath)!, 'SIGKILL');
  await waitFor((e) => e['event'] === 'launch' && e['pid'] === spare);
  const events = entries.slice(from).filter((e) => e['service'] === 'tk' && ['takeover', 'exit', 'launch'].includes(e['event'] as string));
  t.same(events.map((e) => ({ event: e['event'], pid: e['pid'], ...(e['event'] === 'takeover' ? { replaced: e['replaced'] } : {}) })), [
    { event: 'takeover', pid: spare, replaced: old },
    { event: 'exit', pid: old },
    { event: 'launch', pid: spare },
  ], 'takeover (the spare, the old pid), the exit under the old pid, then the spare\'s launch');
  const logs = await runCli(['logs', 'tk', '--events'], { cwd: work, env });
  t.match(logs.stdout, `prewarmed spare pid ${spare} took over from pid ${old} (its exit follows)`);
});
