/**
 * `bulkhead dashboard --config FILE`: prints the URL of the running daemon's
 * Activity Monitor, `http://127.0.0.1:PORT/?token=...`, read from
 * `<state-dir>/http.json` (owner-only, written by `bulkhead daemon --http`).
 * The admin URL by default (its page has kickstart/stop/restart buttons);
 * `--read-only` prints the viewer URL the daemon logs.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { addStateDirOptions, CliExit, resolveClient, type DaemonClientOptions } from '../daemon-client.js';
import { EXIT_CODES, EXIT_CODES_HELP, type ExitCode } from '../exit-codes.js';

interface DashboardOptions extends DaemonClientOptions {
  readOnly?: boolean;
  metrics?: boolean;
}

/** Registers `dashboard` on the program. */
export function registerDashboard(program: Command, run: (work: () => Promise<ExitCode>) => Promise<void>): void {
  addStateDirOptions(program
    .command('dashboard')
    .summary('print the URL of the daemon\'s Activity Monitor (needs `bulkhead daemon --http`)')
    .description(
      'Print http://HOST:PORT/?token=... for the daemon started with --http: open it in a browser to see every service ' +
      'live (state, pid, CPU and memory charts, launches and crashes, sandbox enforcement, the log). The URL carries the admin ' +
      'token (kickstart/stop/restart buttons) unless --read-only is given. Anyone who has the URL has that access: share the read-only one.',
    )
    .addOption(new Option('--read-only', 'the viewer URL (no action buttons), the one the daemon logs'))
    .addOption(new Option('--metrics', 'print the /metrics URL instead')))
    .addHelpText('after', `
Examples:
  $ bulkhead daemon --config bulkhead.json --http 127.0.0.1:9464 &
  $ bulkhead dashboard --config bulkhead.json
  http://127.0.0.1:9464/?token=...

${EXIT_CODES_HELP}`)
    .action((options: DashboardOptions) => run(() => dashboard(options)));
}

async function dashboard(options: DashboardOptions): Promise<ExitCode> {
  const { httpInfoPath } = await import('../../daemon/http-server.js');
  const client = await resolveClient(options);
  const file = httpInfoPath(client.stateDir);
  if (!existsSync(file)) throw new CliExit(EXIT_CODES.unreachable, `No ${file}: start the daemon with --http 127.0.0.1:PORT (its state directory is ${client.stateDir}).`);
  let info: { url?: unknown; token?: unknown; adminToken?: unknown; pid?: unknown };
  try {
    info = JSON.parse(readFileSync(file, 'utf8')) as typeof info;
  } catch (err) {
    throw new CliExit(EXIT_CODES.invalid, `Cannot read ${file}: ${(err as Error).message}`);
  }
  if (typeof info.url !== 'string' || typeof info.token !== 'string' || typeof info.adminToken !== 'string') throw new CliExit(EXIT_CODES.invalid, `${file} is not what bulkhead daemon writes; restart the daemon.`);
  if (typeof info.pid === 'number' && !alive(info.pid)) throw new CliExit(EXIT_CODES.unreachable, `The daemon that wrote ${file} (pid ${info.pid}) is not running; start it with --http.`);
  const token = options.readOnly === true ? info.token : info.adminToken;
  process.stdout.write(`${options.metrics === true ? `${info.url}metrics` : `${info.url}?token=${token}`}\n`);
  return EXIT_CODES.ok;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
