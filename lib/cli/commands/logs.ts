/**
 * `bulkhead logs [SERVICE] [-f]`: what helpers printed and what the daemon
 * did, from the daemon's bounded per-service rings.
 *
 * Following (`-f`) is a long poll with a cursor: each `logs` control call
 * passes the seq of the last entry printed as `after` and `waitMs`; the
 * daemon answers as soon as something newer exists (or after `waitMs` with
 * nothing), and the next call starts from the new cursor. Nothing is lost
 * between calls, nothing is printed twice, and an idle follow costs one
 * request per {@link FOLLOW_WAIT_MS}. If a ring overflowed before the
 * follower caught up, a notice says lines were missed.
 * @module
 */
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import type { LogEntry, LogQueryResult } from '../../daemon/log-store.js';
import { addClientOptions, CliExit, withControl, type DaemonClientOptions } from '../daemon-client.js';
import { EXIT_CODES, EXIT_CODES_HELP, type ExitCode } from '../exit-codes.js';
import { colors, formatLogEntry, isTerminal } from '../format.js';

/** How long one follow request waits for news on the daemon, in ms. */
export const FOLLOW_WAIT_MS = 20_000;

interface LogsOptions extends DaemonClientOptions {
  follow?: boolean;
  lines: string;
  json?: boolean;
  events?: boolean;
  color?: boolean;
  fromFiles?: boolean;
  stdin?: boolean;
}

/** Registers `logs` on the program. */
export function registerLogs(program: Command, run: (work: () => Promise<ExitCode>) => Promise<void>): void {
  addClientOptions(program
    .command('logs')
    .summary('helpers\' stdout/stderr and the daemon\'s events (launch, exit, throttle, denial)')
    .description(
      'Print what helpers wrote on stdout and stderr, one line each, tagged with service and pid, and the daemon\'s ' +
      'own events (launch, exit with its reason, throttled, failed, denied, kickstart, stop, reload), in order. ' +
      'The daemon keeps the last 1000 entries per service in memory and, unless it runs under systemd, in ' +
      '<state-dir>/logs/daemon.N.log. When no daemon answers, the entries are read from those files instead ' +
      '(--from-files reads them even when one does); under systemd, `journalctl [--user] -u bulkhead -o cat | bulkhead logs --stdin` ' +
      'formats the journal\'s lines the same way.',
    )
    .argument('[service]', 'only this service\'s lines and events')
    .option('-f, --follow', 'keep printing new entries as they arrive (Ctrl-C to stop)')
    .addOption(new Option('-n, --lines <n>', 'how many of the latest entries to print first').default('100'))
    .option('--events', 'only the daemon\'s events, no helper output')
    .option('--json', 'one JSON object per line: { seq, time, service, pid, stream, text, data? }')
    .option('--from-files', 'read <state-dir>/logs/ instead of asking the daemon (what a stopped daemon left)')
    .option('--stdin', 'read daemon log lines (JSON) from standard input, e.g. from journalctl -o cat')
    .option('--no-color', 'no colours, even on a terminal'))
    .addHelpText('after', `
Output:
  05-14 10:31:02.118 echo[4242] event: launched pid 4242
  05-14 10:31:02.301 echo[4242] stdout: listening for work
  05-14 10:31:09.020 echo[4242] event: was killed by SIGABRT (memory limit (128 MiB)), unrequested

Examples:
  $ bulkhead logs                      # the last 100 entries of every service
  $ bulkhead logs echo -f              # follow one service
  $ bulkhead logs --events -n 20       # what the daemon did lately
  $ bulkhead logs --json | jq -r 'select(.stream == "stderr") | .text'

${EXIT_CODES_HELP}`)
    .action((service: string | undefined, options: LogsOptions) => run(() => logs(service, options)));
}

async function logs(service: string | undefined, options: LogsOptions): Promise<ExitCode> {
  const lines = Number(options.lines);
  if (!Number.isInteger(lines) || lines < 0 || lines > 5000) throw new CliExit(EXIT_CODES.invalid, `--lines must be an integer from 0 to 5000, got ${JSON.stringify(options.lines)}.`);
  const c = colors(options.color !== false && isTerminal(process.stdout) ? undefined : false);
  const print = (entry: LogEntry) => process.stdout.write(`${options.json === true ? JSON.stringify(entry) : formatLogEntry(entry, c)}\n`);
  const filter = { ...(service === undefined ? {} : { service }), ...(options.events === true ? { events: true } : {}) };
  let stop = false;
  const controller = new AbortController();
  const onSignal = () => {
    stop = true;
    controller.abort();
  };
  if (options.stdin === true || options.fromFiles === true) {
    if (options.follow === true) throw new CliExit(EXIT_CODES.invalid, '--follow needs the daemon; it cannot be combined with --from-files or --stdin.');
    (await readPersisted(options, { ...filter, limit: lines })).forEach(print);
    return EXIT_CODES.ok;
  }
  if (options.follow === true) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  try {
    return await withControl(options, async (control) => {
      // The latest entries (with -n 0, none: just where "now" is).
      const first = (await control.call('logs', { ...filter, limit: Math.max(1, lines) })) as LogQueryResult;
      if (lines > 0) first.entries.forEach(print);
      let cursor = first.cursor;
      while (options.follow === true && !stop) {
        let next: LogQueryResult;
        try {
          next = (await control.call('logs', { ...filter, after: cursor, waitMs: FOLLOW_WAIT_MS, limit: 1000 }, { timeoutMs: FOLLOW_WAIT_MS + 10_000, signal: controller.signal })) as LogQueryResult;
        } catch (err) {
          // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- onSignal sets it while we await
          if (stop) break; // Ctrl-C while waiting
          throw err;
        }
        if (next.missed) process.stderr.write('bulkhead: some lines were overwritten in the daemon\'s ring before they could be read.\n');
        next.entries.forEach(print);
        cursor = next.cursor;
      }
      return EXIT_CODES.ok;
    });
  } catch (err) {
    // No daemon: what it left on disk, if anything.
    if (!(err instanceof CliExit) || err.exitCode !== EXIT_CODES.unreachable || options.follow === true) throw err;
    const { resolveClient } = await import('../daemon-client.js');
    const dir = join((await resolveClient(options)).stateDir, 'logs');
    const { rolledLogFiles } = await import('../log-files.js');
    if (rolledLogFiles(dir).length === 0) throw err;
    process.stderr.write(`bulkhead: ${err.message}\nbulkhead: showing what it logged in ${dir}\n`);
    (await readPersisted(options, { ...filter, limit: lines })).forEach(print);
    return EXIT_CODES.ok;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Entries from <state-dir>/logs or standard input. */
async function readPersisted(options: LogsOptions, filter: { service?: string; events?: boolean; limit: number }): Promise<LogEntry[]> {
  const { entryFromLogLine, readLogFiles } = await import('../log-files.js');
  if (options.stdin !== true) {
    const { resolveClient } = await import('../daemon-client.js');
    return readLogFiles(join((await resolveClient(options)).stateDir, 'logs'), filter);
  }
  const { createInterface } = await import('node:readline');
  const entries: LogEntry[] = [];
  for await (const line of createInterface({ input: process.stdin })) {
    const entry = entryFromLogLine(line, entries.length + 1);
    if (entry === undefined || (filter.service !== undefined && entry.service !== filter.service) || (filter.events === true && entry.stream !== 'event')) continue;
    entries.push(entry);
  }
  return entries.slice(-filter.limit);
}
