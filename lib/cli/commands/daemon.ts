/**
 * `bulkhead daemon --config FILE`: runs the broker alone on a Unix socket
 * (see lib/daemon/daemon.ts), logging JSON lines to stderr (and optionally a
 * rolled file); SIGTERM or SIGINT stops every helper and exits 0.
 * @module
 */
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { CliExit } from '../daemon-client.js';
import { EXIT_CODES, EXIT_CODES_HELP, type ExitCode } from '../exit-codes.js';

interface DaemonCommandOptions {
  config: string;
  socket?: string;
  stateDir?: string;
  logFile?: string;
  logSize: string;
  logKeep: string;
}

/** Registers `daemon` on the program. */
export function registerDaemon(program: Command, run: (work: () => Promise<ExitCode>) => Promise<void>): void {
  program
    .command('daemon')
    .summary('run the broker as a daemon on a Unix socket')
    .description(
      'Run the services of a config file under a broker that listens on an owner-only Unix socket. Clients ' +
      '(apps, and this CLI) authenticate with certificates from the daemon\'s CA in <state-dir>/ca; on its first start ' +
      'the daemon issues the "admin" identity into <state-dir>/identities, which `bulkhead ps` and friends use by default. ' +
      'Logs one JSON object per line on stderr: the daemon\'s events and every line helpers print. ' +
      'SIGTERM or SIGINT stops every helper gracefully and exits 0.',
    )
    .requiredOption('-c, --config <file>', 'config file { root?, services: [...], daemon?: { socketPath, stateDir, controlClients, ... } }')
    .addOption(new Option('--socket <path>', 'listen here instead of daemon.socketPath / the default').env('BULKHEAD_SOCKET'))
    .addOption(new Option('--state-dir <dir>', 'CA, identities and schedule state [default: daemon.stateDir, per-user $XDG_STATE_HOME/bulkhead, root /var/lib/bulkhead]').env('BULKHEAD_STATE_DIR'))
    .option('--log-file <path>', 'also append the log to files rolled by size: <path minus .log>.1.log, .2.log, ... with a current.log symlink')
    .addOption(new Option('--log-size <size>', 'roll the log file at this size (e.g. 512k, 10m, 1g)').default('10m'))
    .addOption(new Option('--log-keep <n>', 'rolled log files kept besides the current one').default('5'))
    .addHelpText('after', `
Log lines (stderr, and --log-file):
  {"level":30,"time":"...","event":"listening","socketPath":"/run/user/1000/bulkhead/bulkhead.sock","pid":4100,"services":["echo"]}
  {"level":30,"time":"...","event":"output","service":"echo","pid":4242,"stream":"stdout","line":"ready"}
  {"level":40,"time":"...","event":"exit","service":"echo","pid":4242,"code":null,"signal":"SIGABRT","reason":"memory limit (128 MiB)","requested":false}

Examples:
  $ bulkhead daemon --config bulkhead.json
  $ bulkhead daemon -c /etc/bulkhead.json --log-file /var/log/bulkhead/daemon.log --log-size 50m
  $ bulkhead daemon -c bulkhead.json --socket /tmp/bh.sock --state-dir /tmp/bh-state   # a throwaway daemon

A systemd unit runs it as: ExecStart=/usr/bin/env bulkhead daemon --config /etc/bulkhead.json

${EXIT_CODES_HELP}`)
    .action((options: DaemonCommandOptions) => run(() => daemon(options)));
}

async function daemon(options: DaemonCommandOptions): Promise<ExitCode> {
  const keep = Number(options.logKeep);
  if (!Number.isInteger(keep) || keep < 0) throw new CliExit(EXIT_CODES.invalid, `--log-keep must be a whole number, got ${JSON.stringify(options.logKeep)}.`);
  if (!/^\d+(\.\d+)?[kmg]?$/i.test(options.logSize)) throw new CliExit(EXIT_CODES.invalid, `--log-size must look like 512k, 10m or 1g, got ${JSON.stringify(options.logSize)}.`);
  const { createDaemonLogger } = await import('../daemon-log.js');
  const { Daemon } = await import('../../daemon/daemon.js');
  const logger = await createDaemonLogger({ file: options.logFile === undefined ? undefined : resolve(options.logFile), size: options.logSize, keep });
  const running = await Daemon.start({
    config: options.config,
    settings: {
      ...(options.socket === undefined ? {} : { socketPath: resolve(options.socket) }),
      ...(options.stateDir === undefined ? {} : { stateDir: resolve(options.stateDir) }),
    },
    log: (entry) => logger.write(entry),
  }).catch(async (err: unknown) => {
    await logger.flush();
    throw err;
  });
  await new Promise<void>((done) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      logger.write({ event: 'signal', signal });
      void running.close().then(done, (err: unknown) => {
        logger.write({ event: 'close-failed', message: String(err) });
        done();
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  await logger.flush();
  return EXIT_CODES.ok;
}
