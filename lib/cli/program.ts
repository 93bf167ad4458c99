/**
 * The `bulkhead` command line: one commander program, one file per command
 * under `commands/`. Every command returns an exit code ({@link EXIT_CODES});
 * an unexpected exception is a bug and exits 2 with its stack.
 * @module
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { PACKAGE_ROOT } from '../broker/package-paths.js';
import { isBulkheadError } from '../errors.js';
import { registerControl } from './commands/control.js';
import { registerDaemon } from './commands/daemon.js';
import { registerDashboard } from './commands/dashboard.js';
import { registerIdentity } from './commands/identity.js';
import { registerLogs } from './commands/logs.js';
import { registerProtocol } from './commands/protocol.js';
import { registerPs } from './commands/ps.js';
import { registerTypes } from './commands/types.js';
import { registerUnit } from './commands/unit.js';
import { registerValidate } from './commands/validate.js';
import { CliExit } from './daemon-client.js';
import { EXIT_CODES, EXIT_CODES_HELP, type ExitCode } from './exit-codes.js';

/** Builds the program. Parse with `parseAsync`; the exit code lands in `process.exitCode`. */
export function createProgram(): Command {
  const program = new Command('bulkhead')
    .description('Privilege-separated, relaunchable helper processes for Node.js.')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', `
Examples:
  $ bulkhead validate                                  # check ./protocols, ./sandbox-profiles, ./*.json
  $ bulkhead types protocols/ -o src/generated         # TypeScript types for every protocol
  $ bulkhead protocol diff old.json protocols/x.json   # compatible or breaking? (exit 0/1/2)
  $ bulkhead daemon --config bulkhead.json &           # run the services under a daemon
  $ bulkhead ps                                        # what runs: state, pid, CPU, memory, last exit
  $ bulkhead logs echo -f                              # what a helper prints, and what the daemon did
  $ bulkhead kickstart echo --restart

Commands that talk to a daemon take --socket, --state-dir (or --config) and --identity;
the defaults find a per-user daemon started with the same user's defaults.

${EXIT_CODES_HELP}`);
  registerValidate(program, run);
  registerTypes(program, run);
  registerProtocol(program, run);
  registerDaemon(program, run);
  registerPs(program, run);
  registerLogs(program, run);
  registerControl(program, run);
  registerIdentity(program, run);
  registerUnit(program, run);
  registerDashboard(program, run);
  return program;
}

/** Runs one command's work and records its exit code. */
async function run(work: () => Promise<ExitCode>): Promise<void> {
  try {
    process.exitCode = await work();
  } catch (err) {
    if (err instanceof CliExit) {
      process.stderr.write(`bulkhead: ${err.message}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    if (isBulkheadError(err)) {
      // Coded errors are the user's to fix (bad input), not crashes.
      process.stderr.write(`bulkhead: ${err.message} (${err.code})\n`);
      process.exitCode = EXIT_CODES.invalid;
      return;
    }
    process.stderr.write(`bulkhead: internal error: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = EXIT_CODES.internal;
  }
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}
