/**
 * sd_notify for `bulkhead daemon`: tells systemd when the daemon is ready
 * (`READY=1`, only once it serves connections), what it is doing (`STATUS=`),
 * that it is alive (`WATCHDOG=1`, at half of `WATCHDOG_USEC`), and that it is
 * stopping (`STOPPING=1`).
 *
 * systemd's default `NotifyAccess=main` accepts a datagram only from the
 * service's main pid, and the kernel stamps the sender's pid on it, so the
 * datagram must leave from this process: a child such as `systemd-notify`
 * would be ignored. Node has no AF_UNIX datagram sockets, so the sending is a
 * ~60-line Node-API addon (native/sd-notify/sd_notify.c, built by
 * `npm run build` into dist/native/): Node-API is ABI-stable, so one build
 * serves every Node line, and unlike the `unix-dgram` package it reaches
 * abstract sockets (`NOTIFY_SOCKET=@name`). Without the addon (no C compiler
 * at build time) the notifier reports itself unavailable and the daemon logs
 * it; systemd then times the start out, which says so loudly.
 * @module
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The addon's one function. */
interface SdNotifyAddon {
  notify(path: string, message: Buffer): void;
}

/** Where `npm run build` puts the addon. */
const ADDON_PATH = fileURLToPath(new URL('../../native/sd_notify.node', import.meta.url));

let addon: SdNotifyAddon | null | undefined;

/** Loads the addon once; null when it was not built or cannot load. */
function loadAddon(): SdNotifyAddon | null {
  if (addon !== undefined) return addon;
  try {
    addon = existsSync(ADDON_PATH) ? (createRequire(import.meta.url)(ADDON_PATH) as SdNotifyAddon) : null;
  } catch {
    addon = null;
  }
  return addon;
}

/** What {@link SystemdNotifier.fromEnv} read from the environment. */
export interface NotifyEnvironment {
  /** `NOTIFY_SOCKET`: a path, or `@name` for the abstract namespace. */
  socket: string;
  /** Watchdog interval in µs (`WATCHDOG_USEC`), when the watchdog is for this pid. */
  watchdogUsec: number | undefined;
}

/**
 * Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` (the watchdog is
 * ours only when `WATCHDOG_PID` is absent or equals `pid`), as sd_notify(3)
 * and sd_watchdog_enabled(3) do. Undefined when not started by systemd with
 * `Type=notify`.
 */
export function notifyEnvironment(env: NodeJS.ProcessEnv = process.env, pid = process.pid): NotifyEnvironment | undefined {
  const socket = env['NOTIFY_SOCKET'];
  if (socket === undefined || socket === '' || (socket[0] !== '/' && socket[0] !== '@')) return undefined;
  const usec = Number(env['WATCHDOG_USEC']);
  const watchdogPid = env['WATCHDOG_PID'];
  const forUs = watchdogPid === undefined || watchdogPid === '' || Number(watchdogPid) === pid;
  return { socket, watchdogUsec: forUs && Number.isInteger(usec) && usec > 0 ? usec : undefined };
}

/** Sends sd_notify states for this process. */
export class SystemdNotifier {
  private watchdog: NodeJS.Timeout | undefined;
  private lastStatus: string | undefined;

  private constructor(
    /** The socket datagrams go to. */
    readonly socket: string,
    private readonly watchdogUsec: number | undefined,
    private readonly addon: SdNotifyAddon,
    private readonly onError: (error: Error) => void,
  ) {}

  /**
   * A notifier when systemd asked for notifications (`NOTIFY_SOCKET`), else
   * undefined. Removes `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`
   * from `env` so nothing this process spawns inherits them.
   * @param onError - a failed send (the daemon logs it; it never throws)
   * @throws Error when systemd asked for notifications but the addon is missing
   */
  static fromEnv(onError: (error: Error) => void, env: NodeJS.ProcessEnv = process.env): SystemdNotifier | undefined {
    const found = notifyEnvironment(env);
    delete env['NOTIFY_SOCKET'];
    delete env['WATCHDOG_USEC'];
    delete env['WATCHDOG_PID'];
    if (found === undefined) return undefined;
    const loaded = loadAddon();
    if (loaded === null) throw new Error(`NOTIFY_SOCKET is set but the sd_notify addon (${ADDON_PATH}) is missing: rebuild bulkhead with a C compiler (npm run build), or use Type=simple in the unit.`);
    return new SystemdNotifier(found.socket, found.watchdogUsec, loaded, onError);
  }

  /** Interval of the watchdog pings in ms (half of `WATCHDOG_USEC`), or undefined when systemd set no watchdog for us. */
  get watchdogIntervalMs(): number | undefined {
    return this.watchdogUsec === undefined ? undefined : Math.max(1, Math.floor(this.watchdogUsec / 2000));
  }

  /** Sends raw `KEY=value` lines; false when the send failed (reported to onError). */
  send(...lines: string[]): boolean {
    try {
      this.addon.notify(this.socket, Buffer.from(lines.join('\n')));
      return true;
    } catch (err) {
      this.onError(err as Error);
      return false;
    }
  }

  /** `READY=1` with a status line, and starts the watchdog pings when systemd asked for them. */
  ready(status: string): void {
    this.lastStatus = status;
    this.send('READY=1', `STATUS=${oneLine(status)}`, `MAINPID=${process.pid}`);
    const every = this.watchdogIntervalMs;
    if (every !== undefined && this.watchdog === undefined) {
      this.watchdog = setInterval(() => this.send('WATCHDOG=1'), every);
      this.watchdog.unref();
    }
  }

  /** `STATUS=` (only when it changed). */
  status(status: string): void {
    if (status === this.lastStatus) return;
    this.lastStatus = status;
    this.send(`STATUS=${oneLine(status)}`);
  }

  /** `STOPPING=1`, and stops the watchdog pings. */
  stopping(status = 'stopping'): void {
    this.close();
    this.send('STOPPING=1', `STATUS=${oneLine(status)}`);
  }

  /** Stops the watchdog pings. Idempotent. */
  close(): void {
    if (this.watchdog !== undefined) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}
