/**
 * `bulkhead daemon --config FILE`: runs the broker alone on a Unix socket
 * (see lib/daemon/daemon.ts), logging JSON lines to stderr (and optionally a
 * rolled file); SIGTERM or SIGINT stops every helper and exits 0.
 * @module
 */
import { dirname, join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { CliExit } from '../daemon-client.js';
import { EXIT_CODES, EXIT_CODES_HELP, type ExitCode } from '../exit-codes.js';
import { CLI_ENV } from '../cli-env.js';

interface DaemonCommandOptions {
  config: string;
  socket?: string;
  stateDir?: string;
  /** A path, or false for --no-log-file. */
  logFile?: string | false;
  logSize: string;
  logKeep: string;
  http?: string;
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
      'Logs one JSON object per line on stderr: the daemon\'s events and every line helpers print; the same lines are ' +
      'kept in <state-dir>/logs/daemon.log, rolled by size. Under systemd (JOURNAL_STREAM or INVOCATION_ID set) they go to ' +
      'stdout for the journal instead, and no file is written. Socket-activated (LISTEN_FDS), it serves the socket systemd ' +
      'passed; with NOTIFY_SOCKET it reports READY=1 once serving, STATUS= lines and watchdog pings (see `bulkhead unit`). ' +
      'SIGTERM or SIGINT stops every helper gracefully and exits 0.',
    )
    .requiredOption('-c, --config <file>', 'config file { root?, services: [...], daemon?: { socketPath, stateDir, controlClients, ... } }')
    .addOption(new Option('--socket <path>', 'listen here instead of daemon.socketPath / the default').env(CLI_ENV.socket))
    .addOption(new Option('--state-dir <dir>', 'CA, identities and schedule state [default: daemon.stateDir, per-user $XDG_STATE_HOME/bulkhead, root /var/lib/bulkhead]').env(CLI_ENV.stateDir))
    .option('--log-file <path>', 'also append the log to files rolled by size: <path minus .log>.1.log, .2.log, ... with a current.log symlink [default: <state-dir>/logs/daemon.log; under systemd, none]')
    .option('--no-log-file', 'keep no log file (stderr and the in-memory ring only)')
    .addOption(new Option('--http <[host:]port>', 'serve GET /metrics (Prometheus) and the Activity Monitor at / on this address [host: 127.0.0.1; port 0: any free one]; `bulkhead dashboard` prints the URL').env(CLI_ENV.http))
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

Under systemd: \`bulkhead unit --user|--system --config FILE\` writes a socket-activated Type=notify unit pair.

${EXIT_CODES_HELP}`)
    .action((options: DaemonCommandOptions) => run(() => daemon(options)));
}

async function daemon(options: DaemonCommandOptions): Promise<ExitCode> {
  const keep = Number(options.logKeep);
  if (!Number.isInteger(keep) || keep < 0) throw new CliExit(EXIT_CODES.invalid, `--log-keep must be a whole number, got ${JSON.stringify(options.logKeep)}.`);
  if (!/^\d+(\.\d+)?[kmg]?$/i.test(options.logSize)) throw new CliExit(EXIT_CODES.invalid, `--log-size must look like 512k, 10m or 1g, got ${JSON.stringify(options.logSize)}.`);
  // Read (and remove) systemd's variables first, before anything can spawn a process that would inherit them.
  const { listenFdFromEnv, underJournal } = await import('../../daemon/systemd-activation.js');
  const { SystemdNotifier } = await import('../../daemon/systemd-notify.js');
  const listenFd = listenFdFromEnv();
  const { parseHttpAddress, DaemonHttpServer } = await import('../../daemon/http-server.js');
  const httpAddress = options.http === undefined ? undefined : parseHttpAddress(options.http);
  if (options.http !== undefined && httpAddress === undefined) throw new CliExit(EXIT_CODES.invalid, `--http must be PORT, HOST:PORT or [IPv6]:PORT, got ${JSON.stringify(options.http)}.`);
  const journal = underJournal();
  // Failed sends are logged once the logger exists (it is made after the environment is read).
  const notifyErrors: { report?: (error: Error) => void } = {};
  let notifier: ReturnType<typeof SystemdNotifier.fromEnv>;
  try {
    notifier = SystemdNotifier.fromEnv((error) => notifyErrors.report?.(error));
  } catch (err) {
    throw new CliExit(EXIT_CODES.invalid, (err as Error).message);
  }
  const { createDaemonLogger } = await import('../daemon-log.js');
  const { Daemon } = await import('../../daemon/daemon.js');
  const settings = {
    ...(options.socket === undefined ? {} : { socketPath: resolve(options.socket) }),
    ...(options.stateDir === undefined ? {} : { stateDir: resolve(options.stateDir) }),
  };
  const logFile = options.logFile === false ? undefined : options.logFile !== undefined ? resolve(options.logFile) : journal ? undefined : await defaultLogFile(options.config, settings);
  const logger = await createDaemonLogger({ file: logFile, size: options.logSize, keep, stdout: journal });
  notifyErrors.report = (error) => logger.write({ event: 'notify-failed', message: error.message });
  const running = await Daemon.start({
    config: options.config,
    settings,
    log: (entry) => logger.write(entry),
    ...(listenFd === undefined ? {} : { listenFd }),
  }).catch(async (err: unknown) => {
    notifier?.stopping(`failed to start: ${err instanceof Error ? err.message : String(err)}`);
    await logger.flush();
    throw err;
  });
  let http: Awaited<ReturnType<typeof DaemonHttpServer.start>> | undefined;
  if (httpAddress !== undefined) {
    try {
      http = await DaemonHttpServer.start(running, httpAddress);
    } catch (err) {
      await running.close();
      notifier?.stopping('failed to start the HTTP server');
      await logger.flush();
      throw new CliExit(EXIT_CODES.invalid, `--http ${options.http}: cannot listen (${(err as NodeJS.ErrnoException).code ?? String(err)}).`);
    }
    // The viewer URL only: the admin token is in <state-dir>/http.json, for `bulkhead dashboard`.
    logger.write({ event: 'http', metrics: `${http.url}metrics`, dashboard: `${http.url}?token=${http.token}` });
  }
  // The stop handlers go in before READY=1: whoever reads READY (systemd, a supervisor, a test) may send SIGTERM at
  // once, and a SIGTERM before process.on('SIGTERM') kills node outright (no close, the log's tail lost).
  const stopped = new Promise<void>((done) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      logger.write({ event: 'signal', signal });
      notifier?.stopping(`stopping on ${signal}`);
      void (http?.close() ?? Promise.resolve()).then(() => running.close()).then(done, (err: unknown) => {
        logger.write({ event: 'close-failed', message: String(err) });
        done();
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  if (notifier !== undefined) {
    // Serving from here on: connections that waited in the passed socket's backlog are being accepted.
    notifier.ready(statusLine(running.broker.status()));
    running.broker.on('state', () => notifier.status(statusLine(running.broker.status())));
  }
  await stopped;
  notifier?.close();
  await logger.flush();
  return EXIT_CODES.ok;
}

/** `<state-dir>/logs/daemon.log`, the state directory resolved as the daemon will. */
async function defaultLogFile(config: string, overrides: { stateDir?: string }): Promise<string> {
  const { readBrokerConfig } = await import('../../broker/broker.js');
  const { resolveDaemonSettings } = await import('../../daemon/daemon-settings.js');
  const { file, config: parsed } = readBrokerConfig(config);
  return join(resolveDaemonSettings(parsed.daemon, dirname(file), overrides, file).stateDir, 'logs', 'daemon.log');
}

/** The STATUS= line systemd shows: how many services run, and which failed. */
function statusLine(services: { name: string; state: string }[]): string {
  const running = services.filter((s) => s.state === 'running').length;
  const failed = services.filter((s) => s.state === 'failed').map((s) => s.name);
  return `${services.length} services, ${running} running${failed.length === 0 ? '' : `, failed: ${failed.join(', ')}`}`;
}
