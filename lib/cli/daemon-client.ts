/**
 * How the CLI finds and talks to a running daemon: the options every client
 * command shares (`--socket`, `--state-dir`, `--config`, `--identity`,
 * `--identity-dir`), their defaults, and one control connection per command.
 *
 * Defaults follow the daemon's own (lib/daemon/daemon-settings.ts): the
 * per-user socket and state directory, or the system ones for root; the
 * identity is `admin`, which the daemon issues into `<stateDir>/identities`
 * on its first start.
 * @module
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import type { Connection } from '../connection/connection.js';
import { BulkheadError, isBulkheadError, isErrorCode } from '../errors.js';
import { EXIT_CODES, type ExitCode } from './exit-codes.js';
import { CLI_ENV } from './cli-env.js';

/** Options shared by every command that talks to a daemon. */
export interface DaemonClientOptions {
  socket?: string;
  stateDir?: string;
  config?: string;
  identity?: string;
  identityDir?: string;
}

/** Where the daemon is and who we are. */
export interface ResolvedClient {
  socketPath: string;
  stateDir: string;
  identityName: string;
  identityDir: string;
}

/** An error the CLI reports with its own exit code and message (no stack). */
export class CliExit extends Error {
  constructor(readonly exitCode: ExitCode, message: string) {
    super(message);
    this.name = 'CliExit';
  }
}

/** Adds `--state-dir` and `--config` (for commands that only need the state directory). */
export function addStateDirOptions(command: Command): Command {
  return command
    .addOption(new Option('--state-dir <dir>', 'the daemon\'s state directory (CA, identities) [default: per-user $XDG_STATE_HOME/bulkhead, root /var/lib/bulkhead]').env(CLI_ENV.stateDir))
    .addOption(new Option('--config <file>', 'take socket and state directory from this config file\'s "daemon" section'));
}

/** Adds the options of every command that connects to a daemon. */
export function addClientOptions(command: Command): Command {
  return addStateDirOptions(command
    .addOption(new Option('--socket <path>', 'the daemon\'s socket [default: per-user $XDG_RUNTIME_DIR/bulkhead/bulkhead.sock, root /run/bulkhead/bulkhead.sock]').env(CLI_ENV.socket)))
    .addOption(new Option('--identity <name>', 'identity to present (needs to be in daemon.controlClients)').default('admin'))
    .addOption(new Option('--identity-dir <dir>', 'directory holding <name>.cert.pem and <name>.key.pem [default: <state-dir>/identities]'));
}

/** Applies defaults: command line, then `--config`'s daemon section, then the per-user/system defaults. */
export async function resolveClient(options: DaemonClientOptions): Promise<ResolvedClient> {
  const { resolveDaemonSettings, defaultSocketPath, defaultStateDir } = await import('../daemon/daemon-settings.js');
  let socketPath: string;
  let stateDir: string;
  if (options.config !== undefined) {
    const { readBrokerConfig } = await import('../broker/broker.js');
    const { file, config } = readBrokerConfig(options.config);
    const settings = resolveDaemonSettings(config.daemon, dirname(file), {
      ...(options.socket === undefined ? {} : { socketPath: resolve(options.socket) }),
      ...(options.stateDir === undefined ? {} : { stateDir: resolve(options.stateDir) }),
    }, file);
    socketPath = settings.socketPath;
    stateDir = settings.stateDir;
  } else {
    socketPath = resolve(options.socket ?? defaultSocketPath());
    stateDir = resolve(options.stateDir ?? defaultStateDir());
  }
  return {
    socketPath,
    stateDir,
    identityName: options.identity ?? 'admin',
    identityDir: resolve(options.identityDir ?? join(stateDir, 'identities')),
  };
}

/**
 * Opens the daemon's control connection, runs `work` with it, and closes it.
 * Errors that mean "no daemon there" become exit 3 with a message that says
 * which socket was tried.
 */
export async function withControl<T>(options: DaemonClientOptions, work: (control: Connection, client: ResolvedClient) => Promise<T>): Promise<T> {
  const client = await resolveClient(options);
  if (!existsSync(client.socketPath)) {
    throw new CliExit(EXIT_CODES.unreachable, `No daemon socket at ${client.socketPath}. Start one with \`bulkhead daemon --config FILE\`, or point at it with --socket (or --config).`);
  }
  const { readIdentity } = await import('../identity/files.js');
  const { RemoteBroker } = await import('../daemon/remote-broker.js');
  const identity = { name: client.identityName, ...readIdentity(client.identityDir, client.identityName) };
  const remote = new RemoteBroker(client.socketPath, identity);
  try {
    return await work(remote.control(), client);
  } catch (err) {
    throw unwrapControlError(unreachableOr(err, client.socketPath));
  } finally {
    await remote.close();
  }
}

/**
 * The daemon serves its control protocol like any service, so a refusal from
 * a control handler (ERR_UNKNOWN_SERVICE, ERR_LAUNCH_FAILED, ...) arrives as
 * ERR_SERVICE_ERROR with the daemon's code in `data.remoteCode`; the CLI
 * reports that code.
 */
export function unwrapControlError(err: unknown): unknown {
  if (!isBulkheadError(err) || err.code !== 'ERR_SERVICE_ERROR') return err;
  const remote = err.data['remoteCode'];
  if (!isErrorCode(remote) || remote === 'ERR_SERVICE_ERROR') return err;
  const data = err.data['remoteData'];
  return new BulkheadError(remote, err.message, typeof data === 'object' && data !== null ? data as Record<string, unknown> : {});
}

/** Turns "cannot connect" and "connection lost" errors into exit 3; anything else is returned as is. */
export function unreachableOr(err: unknown, socketPath: string): unknown {
  if (!isBulkheadError(err)) return err;
  const e = err;
  const data = e.data;
  if (e.code === 'ERR_INTERRUPTED' && typeof data['errno'] === 'string') {
    return new CliExit(EXIT_CODES.unreachable, `No daemon answers at ${socketPath} (${data['errno']}). Is \`bulkhead daemon\` running? (${e.code})`);
  }
  // A control handler's own errors arrive as ERR_SERVICE_ERROR (see unwrapControlError), so an
  // ERR_INVALIDATED here is always the connection itself: the daemon closed it (stopping, restarting).
  if ((e.code === 'ERR_INTERRUPTED' && typeof data['cause'] === 'string') || e.code === 'ERR_INVALIDATED') {
    return new CliExit(EXIT_CODES.unreachable, `The daemon at ${socketPath} went away during the command: ${e.message} (${e.code})`);
  }
  return err;
}
