/**
 * The daemon's HTTP side (`bulkhead daemon --http 127.0.0.1:PORT`):
 * - `GET /metrics`: Prometheus text (no token: metrics carry no secrets, and
 *   scrapers cannot log in);
 * - `GET /?token=T`: the Activity Monitor page (dashboard/ in the package,
 *   served as one self-contained HTML document: no remote resources);
 * - `GET /events?token=T`: server-sent events feeding the page: a
 *   `snapshot` of every service each second, `log` entries as they arrive;
 * - `POST /api/{kickstart,stop,restart}?service=NAME&token=T`: only with the
 *   admin token.
 *
 * Two random tokens are made per run: a viewer token (logged by the daemon)
 * and an admin token (never logged). Both are written to
 * `<stateDir>/http.json` (owner-only), where `bulkhead dashboard` reads them:
 * whoever can read the state directory already holds the admin identity's
 * key. A missing or wrong token is a 401; the viewer token on an action is a
 * 403. Tokens are compared in constant time. It binds to 127.0.0.1 unless told
 * otherwise.
 * @module
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../broker/package-paths.js';
import { METRICS_CONTENT_TYPE } from '../broker/metrics.js';
import type { LogEntry } from './log-store.js';
import type { Daemon } from './daemon.js';

/** How often the page gets a snapshot, in ms. */
export const SNAPSHOT_INTERVAL_MS = 1000;
/** Log entries and timeline events sent when the page connects. */
const INITIAL_LOG_ENTRIES = 300;
/** Connected pages at most (each costs one response stream). */
const MAX_EVENT_STREAMS = 32;

/** Where the HTTP server listens. */
export interface HttpAddress {
  host: string;
  port: number;
}

/** What `<stateDir>/http.json` holds. */
export interface HttpInfo {
  /** Base URL, e.g. http://127.0.0.1:9464/ */
  url: string;
  /** Read-only token (the daemon logs it). */
  token: string;
  /** Token that may also kickstart, stop and restart (never logged). */
  adminToken: string;
  pid: number;
}

/**
 * Parses `--http`: `PORT`, `HOST:PORT` or `[IPv6]:PORT`; the host defaults to 127.0.0.1.
 * @returns undefined when it is not one of those
 */
export function parseHttpAddress(text: string): HttpAddress | undefined {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(text);
  if (m === null) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  const host = m[1] === undefined ? '127.0.0.1' : m[1].replace(/^\[|\]$/g, '');
  return { host, port };
}

/** The file `bulkhead dashboard` reads. */
export function httpInfoPath(stateDir: string): string {
  return join(stateDir, 'http.json');
}

/** The daemon's HTTP server. */
export class DaemonHttpServer {
  private readonly streams = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private cursor = 0;
  private readonly page: string;

  private constructor(
    private readonly daemon: Daemon,
    private readonly server: Server,
    /** Viewer token. */
    readonly token: string,
    private readonly adminToken: string,
  ) {
    this.page = dashboardPage();
  }

  /** Listens on `address`, writes `<stateDir>/http.json`, and returns the server. */
  static async start(daemon: Daemon, address: HttpAddress): Promise<DaemonHttpServer> {
    const server = createServer();
    const http = new DaemonHttpServer(daemon, server, randomBytes(24).toString('base64url'), randomBytes(24).toString('base64url'));
    server.on('request', (req, res) => http.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(address.port, address.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const info: HttpInfo = { url: http.url, token: http.token, adminToken: http.adminToken, pid: process.pid };
    writeFileSync(httpInfoPath(daemon.settings.stateDir), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
    return http;
  }

  /** Base URL, e.g. `http://127.0.0.1:9464/`. */
  get url(): string {
    const { address, port } = this.server.address() as AddressInfo;
    return `http://${address.includes(':') ? `[${address}]` : address}:${port}/`;
  }

  /** Open event streams (pages connected). */
  get connectedPages(): number {
    return this.streams.size;
  }

  /** Stops listening and ends every event stream. Idempotent. */
  close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    for (const res of this.streams) res.end();
    this.streams.clear();
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Cache-Control', 'no-store');
    if (url.pathname === '/metrics' && req.method === 'GET') {
      void this.daemon.broker.metrics().then((text) => {
        res.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE });
        res.end(text);
      }, (err: unknown) => send(res, 500, `metrics failed: ${String(err)}\n`));
      return;
    }
    const role = this.role(url.searchParams.get('token'));
    if (url.pathname === '/' && req.method === 'GET') {
      if (role === undefined) return send(res, 401, 'A token is needed: open the URL `bulkhead dashboard --config FILE` prints (http://HOST:PORT/?token=...).\n');
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        // Everything is inline; nothing may load from anywhere else.
        'Content-Security-Policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        'Referrer-Policy': 'no-referrer',
      });
      res.end(this.page);
      return;
    }
    if (url.pathname === '/events' && req.method === 'GET') {
      if (role === undefined) return send(res, 401, 'Wrong or missing token.\n');
      return this.openStream(res, role === 'admin');
    }
    const action = /^\/api\/(kickstart|stop|restart)$/.exec(url.pathname)?.[1];
    if (action !== undefined && req.method === 'POST') {
      if (role === undefined) return send(res, 401, 'Wrong or missing token.\n');
      if (role !== 'admin') return send(res, 403, 'Read-only token: actions need the admin URL from `bulkhead dashboard`.\n');
      void this.act(action, url.searchParams.get('service') ?? '').then((body) => send(res, 200, `${JSON.stringify(body)}\n`, 'application/json'), (err: unknown) => {
        const e = err as { code?: string; message?: string };
        send(res, e.code === 'ERR_UNKNOWN_SERVICE' ? 404 : 409, `${JSON.stringify({ code: e.code ?? 'ERR_SERVICE_ERROR', message: e.message ?? String(err) })}\n`, 'application/json');
      });
      return;
    }
    send(res, 404, 'Not found.\n');
  }

  private role(token: string | null): 'viewer' | 'admin' | undefined {
    if (token === null) return undefined;
    if (same(token, this.adminToken)) return 'admin';
    if (same(token, this.token)) return 'viewer';
    return undefined;
  }

  private async act(action: string, service: string): Promise<{ pid: number | null }> {
    const broker = this.daemon.broker;
    const before = broker.status(service); // ERR_UNKNOWN_SERVICE first
    this.daemon.logs.event(service, before.pid, `${action} from the dashboard`, { event: action, service, by: 'dashboard' });
    if (action === 'stop') await broker.stop(service);
    else {
      if (before.state === 'failed') broker.reset(service);
      if (action === 'restart') await broker.stop(service);
      await broker.kickstart(service);
    }
    return { pid: broker.status(service).pid };
  }

  private openStream(res: ServerResponse, admin: boolean): void {
    if (this.streams.size >= MAX_EVENT_STREAMS) return send(res, 503, 'Too many dashboards open.\n');
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive' });
    const logs = this.daemon.logs.query({ limit: INITIAL_LOG_ENTRIES });
    const timeline = this.daemon.logs.query({ events: true, limit: INITIAL_LOG_ENTRIES }).entries.filter(isTimelineEntry);
    writeEvent(res, 'init', { admin, daemon: this.daemonInfo(), logs: logs.entries, timeline, intervalMs: SNAPSHOT_INTERVAL_MS });
    writeEvent(res, 'snapshot', this.snapshot());
    this.streams.add(res);
    if (this.streams.size === 1) this.cursor = this.daemon.logs.lastSeq;
    res.on('close', () => {
      this.streams.delete(res);
      if (this.streams.size === 0 && this.timer !== undefined) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    });
    // One timer for every page, running only while a page is open.
    this.timer ??= setInterval(() => this.tick(), SNAPSHOT_INTERVAL_MS);
    this.timer.unref();
  }

  private tick(): void {
    const snapshot = this.snapshot();
    const news = this.daemon.logs.query({ after: this.cursor, limit: 1000 });
    this.cursor = news.cursor;
    for (const res of this.streams) {
      writeEvent(res, 'snapshot', snapshot);
      if (news.entries.length > 0) writeEvent(res, 'log', news.entries);
    }
  }

  private daemonInfo() {
    return { pid: process.pid, socketPath: this.daemon.socketPath, startedAt: this.daemon.startedAt };
  }

  /** What the page draws each second: per service, the fields `ps` shows. */
  private snapshot() {
    const services = this.daemon.broker.status().map((s) => ({
      name: s.name,
      state: s.state,
      pid: s.pid,
      startedAt: s.startedAt,
      cpuPercent: s.cpuPercent,
      rssBytes: s.rssBytes,
      inFlight: s.inFlight,
      launches: s.launches,
      crashes: s.crashes,
      callsServed: s.callsServed,
      lastExit: s.lastExit === null ? null : { code: s.lastExit.code, signal: s.lastExit.signal, reason: s.lastExit.reason ?? null, requested: s.lastExit.requested, at: s.lastExit.at },
      sandbox: s.sandbox,
    }));
    const mem = process.memoryUsage();
    return { time: Date.now(), services, daemon: { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, cpu: process.cpuUsage() } };
  }
}

/** Launches and exits: what the timeline draws. */
function isTimelineEntry(entry: LogEntry): boolean {
  const event = entry.data?.['event'];
  return event === 'launch' || event === 'exit' || event === 'failed' || event === 'throttled';
}

function writeEvent(res: ServerResponse, event: string, data: unknown): void {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'Content-Type': type });
  res.end(body);
}

function same(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** dashboard/index.html with its style.css and app.js inlined: one document, no other requests. */
function dashboardPage(): string {
  const dir = join(PACKAGE_ROOT, 'dashboard');
  const html = readFileSync(join(dir, 'index.html'), 'utf8');
  const css = readFileSync(join(dir, 'style.css'), 'utf8');
  const js = readFileSync(join(dir, 'app.js'), 'utf8');
  // Function replacers: `$` in the sources must not be read as a replacement pattern.
  return html.replace('<!--STYLE-->', () => `<style>\n${css}</style>`).replace('<!--SCRIPT-->', () => `<script>\n${js.replace(/<\/script/gi, '<\\/script')}</script>`);
}
