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
}

/** Registers `logs` on the program. */
export function registerLogs(program: Command, run: (work: () => Promise<ExitCode>) => Promise<void>): void {
  addClientOptions(program
    .command('logs')
    .summary('helpers\' stdout/stderr and the daemon\'s events (launch, exit, throttle, denial)')
    .description(
      'Print what helpers wrote on stdout and stderr, one line each, tagged with service and pid, and the daemon\'s ' +
      'own events (launch, exit with its reason, throttled, failed, denied, kickstart, stop, reload), in order. ' +
      'The daemon keeps the last 1000 entries per service in memory; start it with --log-file to keep them on disk too.',
    )
    .argument('[service]', 'only this service\'s lines and events')
    .option('-f, --follow', 'keep printing new entries as they arrive (Ctrl-C to stop)')
    .addOption(new Option('-n, --lines <n>', 'how many of the latest entries to print first').default('100'))
    .option('--events', 'only the daemon\'s events, no helper output')
    .option('--json', 'one JSON object per line: { seq, time, service, pid, stream, text, data? }')
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
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
