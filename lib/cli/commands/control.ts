/**
 * `bulkhead kickstart SERVICE [--restart]`, `bulkhead restart SERVICE`,
 * `bulkhead stop SERVICE` and `bulkhead reload`: steer a running daemon through its control protocol.
 * @module
 */
import type { Command } from 'commander';
import { addClientOptions, withControl, type DaemonClientOptions } from '../daemon-client.js';
import { EXIT_CODES, EXIT_CODES_HELP, type ExitCode } from '../exit-codes.js';

interface KickstartOptions extends DaemonClientOptions {
  restart?: boolean;
  json?: boolean;
}

interface JsonOption extends DaemonClientOptions {
  json?: boolean;
}

/** Long enough for a helper to launch (its launchTimeoutMs defaults to 10 s) or to stop (goodbye, SIGTERM, SIGKILL). */
const STEER_TIMEOUT_MS = 60_000;

/** Registers `kickstart`, `restart`, `stop` and `reload` on the program. */
export function registerControl(program: Command, run: (work: () => Promise<ExitCode>) => Promise<void>): void {
  addClientOptions(program
    .command('kickstart')
    .summary('start a service now (or restart it with --restart)')
    .description('Launch SERVICE now if it is not running and wait until it serves; with --restart, stop the running helper first. A service whose crash-loop breaker tripped (state failed) is reset and launched again. Prints the new pid.')
    .argument('<service>', 'service name, as in `bulkhead ps`')
    .option('-r, --restart', 'stop the running helper first (like launchctl kickstart -k)')
    .option('--json', 'print { pid } as JSON'))
    .addHelpText('after', `
Examples:
  $ bulkhead kickstart echo
  $ bulkhead kickstart echo --restart      # pick up new code

${EXIT_CODES_HELP}`)
    .action((service: string, options: KickstartOptions) => run(() => withControl(options, async (control) => {
      const result = (await control.call('kickstart', { name: service, ...(options.restart === true ? { restart: true } : {}) }, { timeoutMs: STEER_TIMEOUT_MS })) as { pid: number | null };
      process.stdout.write(options.json === true ? `${JSON.stringify(result)}\n` : `${service}: running, pid ${result.pid ?? '-'}\n`);
      return EXIT_CODES.ok;
    })));

  addClientOptions(program
    .command('stop')
    .summary('stop a service\'s helper (the next call launches it again)')
    .description('Stop SERVICE\'s running helper gracefully: goodbye (it finishes calls in flight), then SIGTERM, then SIGKILL after the manifest\'s exitTimeoutMs. The service stays registered: the next call, kickstart or keep-alive launches it again.')
    .argument('<service>', 'service name, as in `bulkhead ps`')
    .option('--json', 'print { stopped } as JSON'))
    .addHelpText('after', `
Examples:
  $ bulkhead stop echo

${EXIT_CODES_HELP}`)
    .action((service: string, options: JsonOption) => run(() => withControl(options, async (control) => {
      const result = (await control.call('stop', { name: service }, { timeoutMs: STEER_TIMEOUT_MS })) as { stopped: boolean };
      process.stdout.write(options.json === true ? `${JSON.stringify(result)}\n` : result.stopped ? `${service}: stopped\n` : `${service}: was not running\n`);
      return EXIT_CODES.ok;
    })));

  addClientOptions(program
    .command('restart')
    .summary('restart a service without downtime')
    .description('Restart SERVICE without downtime: a new helper is launched (or the prewarmed spare taken) while the old one serves; once it is ready new calls go to it, and the old one finishes its calls in flight (within exitTimeoutMs) and is stopped. A service that is not running is launched. Prints the new pid. If the new helper fails to start, the old one keeps serving and the command fails.')
    .argument('<service>', 'service name, as in `bulkhead ps`')
    .option('--json', 'print { pid } as JSON'))
    .addHelpText('after', `
Examples:
  $ bulkhead restart echo                # pick up new code, no call lost

${EXIT_CODES_HELP}`)
    .action((service: string, options: JsonOption) => run(() => withControl(options, async (control) => {
      const result = (await control.call('restart', { name: service }, { timeoutMs: STEER_TIMEOUT_MS })) as { pid: number | null };
      process.stdout.write(options.json === true ? `${JSON.stringify(result)}\n` : `${service}: restarted, pid ${result.pid ?? '-'}\n`);
      return EXIT_CODES.ok;
    })));

  addClientOptions(program
    .command('reload')
    .summary('re-read the daemon\'s config file')
    .description('Make the daemon re-read its config file, atomically: every service is checked first (manifest, entry, protocol, sandbox profile, schedule); an error is reported with its file and JSON pointer (exit 1) and changes nothing. Then new services are registered, removed ones stopped and unregistered, and changed ones (their manifest, or their sandbox profile file edited in place) restarted without downtime (a changed protocol re-registers the service: its clients must connect again). Running, unchanged services are not touched.')
    .option('--json', 'print { added, removed, replaced, editedProfiles, relaunched } as JSON'))
    .addHelpText('after', `
Examples:
  $ bulkhead reload
  $ bulkhead validate bulkhead.json && bulkhead reload

${EXIT_CODES_HELP}`)
    .action((options: JsonOption) => run(() => withControl(options, async (control) => {
      const result = (await control.call('reload', {}, { timeoutMs: STEER_TIMEOUT_MS })) as { added: string[]; removed: string[]; replaced: string[]; editedProfiles?: string[]; relaunched?: string[] };
      if (options.json === true) process.stdout.write(`${JSON.stringify(result)}\n`);
      else {
        const list = (names: string[] | undefined) => (names === undefined || names.length === 0 ? '-' : names.join(', '));
        process.stdout.write(`added: ${list(result.added)}\nremoved: ${list(result.removed)}\nreplaced: ${list(result.replaced)}\nprofile edited: ${list(result.editedProfiles)}\nrelaunched: ${list(result.relaunched)}\n`);
      }
      return EXIT_CODES.ok;
    })));
}
