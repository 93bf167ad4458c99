/**
 * `bulkhead ps` (one table, or `--json`) and `bulkhead top` / `ps --watch`
 * (the table refreshed in place, with the daemon's latest events under it).
 * @module
 */
import { Option, type Command } from 'commander';
import type { Connection } from '../../connection/connection.js';
import type { ServiceStatus } from '../../broker/service-supervisor.js';
import type { DaemonConnectionStatus } from '../../daemon/daemon.js';
import type { LogQueryResult } from '../../daemon/log-store.js';
import { addClientOptions, CliExit, withControl, type DaemonClientOptions } from '../daemon-client.js';
import { EXIT_CODES, EXIT_CODES_HELP, type ExitCode } from '../exit-codes.js';
import { layersTable } from '../layers-table.js';
import { colors, formatDuration, formatLogEntry, formatTime, isTerminal, statusTable, type Colors } from '../format.js';

interface PsOptions extends DaemonClientOptions {
  json?: boolean;
  watch?: boolean;
  interval: string;
  count?: string;
  color?: boolean;
  clients?: boolean;
  layers?: boolean;
}

/** Daemon events shown under the table by `top`. */
const LATEST_EVENTS = 6;

/** What the `list` control method answers. */
interface ListResult {
  services: ServiceStatus[];
  daemon: { pid: number; socketPath: string; startedAt: number } & Partial<DaemonConnectionStatus>;
}

const COLUMNS_HELP = `
Columns:
  NAME, STATE    service and its state: idle, launching, running, stopping, throttled, failed
                 (+ "unresponsive 3s": its event loop has sent no heartbeat for that long past due;
                 "retry in 2s": when a throttled service's next launch attempt is due)
  PID, UPTIME    the running helper (outermost process when sandboxed) and how long it has run
  LAUNCHES       launch attempts since the daemon started; CRASHES: exits nobody asked for
  LAST EXIT      how the last helper ended: exit code or signal, and why when known (e.g. memory limit)
  CPU%, RSS      CPU (percent of one core, since the previous look; the first look averages over the
                 helper's life) and resident memory of the helper's whole process tree, from /proc
  CALLS          calls the running helper answered; INFLIGHT: calls it is working on now
  NEXT RUN       next scheduled run (launch.schedule)
  SANDBOX        profile and how many of its rules this host enforces (e.g. pure-compute 13/13)`;

/** Registers `ps` and `top` on the program. */
export function registerPs(program: Command, run: (work: () => Promise<ExitCode>) => Promise<void>): void {
  addClientOptions(program
    .command('ps')
    .summary('list services: state, pid, uptime, crashes, last exit, CPU, memory, calls, sandbox')
    .description('Show every service of a running daemon: one row each. With --watch (or as `bulkhead top`), refresh in place.')
    .option('--json', 'print the status objects as JSON (the same objects as broker.status() in an embedded broker)')
    .option('--clients', 'list the connected clients instead (identity, service, and the uid/gid/pid the kernel reported), then refusals and disconnects per reason')
    .option('--layers', 'per service, each sandbox rule and the layers that enforce it on this host; "!" marks a rule nothing enforces, with what is missing')
    .argument('[services...]', 'show only these services (the table, --json or --layers)')
    .option('-w, --watch', 'refresh every --interval until interrupted (same as `bulkhead top`)')
    .addOption(new Option('-i, --interval <ms>', 'refresh interval for --watch, in ms').default('2000'))
    .addOption(new Option('-n, --count <frames>', 'with --watch: stop after this many frames'))
    .option('--no-color', 'no colours, even on a terminal'))
    .addHelpText('after', `${COLUMNS_HELP}

Examples:
  $ bulkhead ps                                    # the daemon at the default socket, as admin
  $ bulkhead ps --json | jq '.[] | {name, state, rssBytes}'
  $ bulkhead ps --layers fetcher                   # which layer enforces each of fetcher's sandbox rules
  $ bulkhead ps --socket /run/bulkhead/bulkhead.sock --identity ops --identity-dir ~/.bulkhead
  $ bulkhead ps --config bulkhead.json             # socket and state dir from the config's "daemon" section

${EXIT_CODES_HELP}`)
    .action((only: string[], options: PsOptions) => run(() => options.watch === true ? watch(options) : once(options, only)));

  addClientOptions(program
    .command('top')
    .summary('the ps table, refreshed live, with the latest daemon events')
    .description('Refresh the ps table every --interval ms (in place on a terminal; frames separated by a blank line otherwise), with the daemon\'s latest events (launch, exit, throttle, denial) under it. Ctrl-C to quit.')
    .addOption(new Option('-i, --interval <ms>', 'refresh interval in ms').default('2000'))
    .addOption(new Option('-n, --count <frames>', 'stop after this many frames (for scripts and tests)'))
    .option('--no-color', 'no colours, even on a terminal'))
    .addHelpText('after', `${COLUMNS_HELP}

Examples:
  $ bulkhead top
  $ bulkhead top -i 500                            # twice a second
  $ bulkhead top -n 1 --no-color > frame.txt       # one frame, for a bug report

${EXIT_CODES_HELP}`)
    .action((options: PsOptions) => run(() => watch(options)));
}

async function once(options: PsOptions, only: string[] = []): Promise<ExitCode> {
  return withControl(options, async (control) => {
    const list = (await control.call('list', {})) as ListResult;
    const unknown = only.filter((name) => !list.services.some((s) => s.name === name));
    if (unknown.length > 0) throw new CliExit(EXIT_CODES.invalid, `No service named ${unknown.map((n) => JSON.stringify(n)).join(', ')}; \`bulkhead ps\` lists them.`);
    const services = only.length === 0 ? list.services : list.services.filter((s) => only.includes(s.name));
    if (options.layers === true && options.json !== true) {
      const c = colors(options.color !== false && isTerminal(process.stdout) ? undefined : false);
      process.stdout.write(`${layersTable(services, { colors: c })}\n`);
    } else if (options.clients === true) {
      process.stdout.write(options.json === true ? `${JSON.stringify(list.daemon, null, 2)}\n` : clientsTable(list.daemon));
    } else if (options.json === true) {
      process.stdout.write(`${JSON.stringify(services, null, 2)}\n`);
    } else {
      const c = colors(options.color !== false && isTerminal(process.stdout) ? undefined : false);
      process.stdout.write(`${statusTable(services, { colors: c })}\n`);
    }
    return EXIT_CODES.ok;
  });
}

/** `ps --clients`: one row per authenticated connection, then the refusal and disconnect counters. */
function clientsTable(d: ListResult['daemon']): string {
  const rows = [['CLIENT', 'SERVICE', 'UID', 'GID', 'PID', 'SINCE'], ...(d.clients ?? []).map((c) => [
    c.name, c.service, String(c.uid), String(c.gid), c.alive === false ? `${c.pid} (exited)` : String(c.pid), new Date(c.since).toISOString(),
  ])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  const counts = (title: string, m: Record<string, number> | undefined) => `${title}: ${Object.entries(m ?? {}).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`;
  lines.push('', `daemon id ${d.id ?? '?'}; ${d.pendingHandshakes ?? 0} authenticating now, ${d.held ?? 0} held since start`, counts('refused', d.refusals), counts('disconnected', d.disconnects));
  return `${lines.join('\n')}\n`;
}

function positiveInt(text: string | undefined, option: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    throw new CliExit(EXIT_CODES.invalid, `${option} must be a positive integer, got ${JSON.stringify(text)}.`);
  }
  return n;
}

async function watch(options: PsOptions): Promise<ExitCode> {
  const interval = Math.max(100, positiveInt(options.interval, '--interval', 2000));
  const count = options.count === undefined ? Infinity : positiveInt(options.count, '--count', 1);
  const tty = isTerminal(process.stdout);
  const c = colors(options.color !== false && tty ? undefined : false);
  let stop = false;
  let wake: (() => void) | undefined;
  const onSignal = () => {
    stop = true;
    wake?.();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await withControl(options, async (control, client) => {
      for (let frame = 1; frame <= count && !stop; frame++) {
        const text = await renderFrame(control, client.socketPath, c);
        // On a terminal: home the cursor and clear, so the table refreshes in place.
        process.stdout.write(tty ? `\x1b[H\x1b[2J${text}\n` : `${frame > 1 ? '\n' : ''}${text}\n`);
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- onSignal sets it while we await
        if (frame === count || stop) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, interval);
        });
      }
      return EXIT_CODES.ok;
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** One frame of `top`: a header line, the table, the last few daemon events. */
/** Client connections come and go all the time (top's own among them); what a watcher wants is launches, exits, throttling, denials. */
const ROUTINE_EVENTS = new Set(['connect', 'disconnect']);

/** The events `top` shows: the last few that are not routine connection traffic. */
export function latestEvents<E extends { data?: Record<string, unknown> | undefined }>(entries: readonly E[]): E[] {
  return entries.filter((e) => !ROUTINE_EVENTS.has(String(e.data?.['event']))).slice(-LATEST_EVENTS);
}

async function renderFrame(control: Connection, socketPath: string, c: Colors): Promise<string> {
  const [list, events] = await Promise.all([
    control.call('list', {}) as Promise<ListResult>,
    control.call('logs', { limit: 200, events: true }) as Promise<LogQueryResult>,
  ]);
  const now = Date.now();
  const counts = new Map<string, number>();
  for (const s of list.services) counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
  const summary = [...counts].map(([state, n]) => `${n} ${state}`).join(', ');
  const header = `${c.bold('bulkhead top')}  ${formatTime(now)}  daemon pid ${list.daemon.pid} on ${socketPath}, up ${formatDuration(now - list.daemon.startedAt)}  ${list.services.length} services${summary === '' ? '' : `: ${summary}`}`;
  const lines = [header, '', statusTable(list.services, { now, colors: c })];
  const latest = latestEvents(events.entries);
  if (latest.length > 0) {
    lines.push('', c.bold('Latest events'));
    for (const entry of latest) lines.push(`  ${formatLogEntry(entry, c)}`);
  }
  return lines.join('\n');
}
