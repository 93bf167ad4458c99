/**
 * `bulkhead unit --user|--system --config FILE [-o DIR]`: writes a systemd
 * `.service` (Type=notify) and `.socket` (socket activation) that run this
 * bulkhead's daemon on the config, with absolute paths throughout, and prints
 * how to install them. See lib/daemon/systemd-units.ts for what they contain.
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { PACKAGE_ROOT } from '../../broker/package-paths.js';
import { CliExit } from '../daemon-client.js';
import { EXIT_CODES, EXIT_CODES_HELP, type ExitCode } from '../exit-codes.js';

interface UnitOptions {
  user?: boolean;
  system?: boolean;
  config: string;
  output?: string;
  name: string;
  watchdog: string;
  node?: string;
}

/** Registers `unit` on the program. */
export function registerUnit(program: Command, run: (work: () => Promise<ExitCode>) => Promise<void>): void {
  program
    .command('unit')
    .summary('write systemd units (socket-activated, Type=notify) that run the daemon')
    .description(
      'Write <name>.service and <name>.socket for a per-user agent (--user) or a system daemon (--system) that runs ' +
      '`bulkhead daemon --config FILE` with this node and this bulkhead (absolute paths: bulkhead need not be on PATH). ' +
      'The socket unit owns the daemon\'s Unix socket (mode and group from the config) and starts the daemon on the first ' +
      'connection; the daemon tells systemd when it is ready and pings its watchdog. Relative paths are made absolute.',
    )
    .option('--user', 'a per-user agent (systemctl --user), wanted by default.target')
    .option('--system', 'a system daemon, wanted by multi-user.target')
    .requiredOption('-c, --config <file>', 'the daemon\'s config file')
    .option('-o, --output <dir>', 'where to write the units [default: the current directory]')
    .addOption(new Option('--name <name>', 'base name of the units').default('bulkhead'))
    .addOption(new Option('--watchdog <seconds>', 'WatchdogSec= (0: no watchdog)').default('30'))
    .addOption(new Option('--node <path>', 'node binary for ExecStart= [default: the node running this command]'))
    .addHelpText('after', `
Examples:
  $ bulkhead unit --user -c bulkhead.json -o ~/.config/systemd/user
  $ systemctl --user daemon-reload && systemctl --user enable --now bulkhead.socket bulkhead.service
  $ sudo bulkhead unit --system -c /etc/bulkhead.json -o /etc/systemd/system

${EXIT_CODES_HELP}`)
    .action((options: UnitOptions) => run(() => unit(options)));
}

async function unit(options: UnitOptions): Promise<ExitCode> {
  if (options.user === options.system) throw new CliExit(EXIT_CODES.invalid, 'Say which kind of unit: --user (a per-user agent) or --system (a system daemon).');
  if (!/^[A-Za-z0-9_.@-]+$/.test(options.name)) throw new CliExit(EXIT_CODES.invalid, `--name must be a unit name (letters, digits, _ . @ -), got ${JSON.stringify(options.name)}.`);
  const watchdogSec = Number(options.watchdog);
  if (!Number.isInteger(watchdogSec) || watchdogSec < 0) throw new CliExit(EXIT_CODES.invalid, `--watchdog must be a whole number of seconds, got ${JSON.stringify(options.watchdog)}.`);
  const scope = options.user === true ? 'user' : 'system';
  const { readBrokerConfig } = await import('../../broker/broker.js');
  const { resolveDaemonSettings } = await import('../../daemon/daemon-settings.js');
  const { generateUnits, installSteps } = await import('../../daemon/systemd-units.js');
  const { file, config } = readBrokerConfig(options.config);
  const section = (config.daemon ?? {}) as { socketPath?: string; stateDir?: string };
  // The defaults of the kind of daemon the unit runs, not of whoever runs this command (root writing a --user unit, say).
  const settings = resolveDaemonSettings(config.daemon, dirname(file), {
    ...(section.socketPath === undefined ? { socketPath: defaultSocket(scope) } : {}),
    ...(section.stateDir === undefined ? { stateDir: defaultState(scope) } : {}),
  }, file);
  const units = generateUnits({
    scope,
    name: options.name,
    nodePath: resolve(options.node ?? process.execPath),
    cliPath: join(PACKAGE_ROOT, 'dist', 'lib', 'cli', 'main.js'),
    configPath: file,
    socketPath: settings.socketPath,
    socketMode: settings.socketMode,
    socketGroup: settings.socketGroup,
    stateDir: settings.stateDir,
    watchdogSec,
  });
  const dir = resolve(options.output ?? '.');
  mkdirSync(dir, { recursive: true });
  for (const { file: name, text } of [units.service, units.socket]) {
    writeFileSync(join(dir, name), text, { mode: 0o644 });
    process.stdout.write(`wrote ${join(dir, name)}\n`);
  }
  process.stdout.write(`\nInstall:\n${installSteps(scope, options.name, dir).map((line) => `  ${line}`).join('\n')}\n`);
  return EXIT_CODES.ok;
}

function defaultSocket(scope: 'user' | 'system'): string {
  if (scope === 'system') return '/run/bulkhead/bulkhead.sock';
  const runtime = process.env['XDG_RUNTIME_DIR'];
  return join(runtime !== undefined && runtime !== '' && process.getuid?.() !== 0 ? runtime : `/run/user/${process.getuid?.() ?? 1000}`, 'bulkhead', 'bulkhead.sock');
}

function defaultState(scope: 'user' | 'system'): string {
  if (scope === 'system') return '/var/lib/bulkhead';
  const state = process.env['XDG_STATE_HOME'];
  return join(state !== undefined && state !== '' ? state : join(homedir(), '.local', 'state'), 'bulkhead');
}
