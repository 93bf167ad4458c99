/**
 * `bulkhead daemon`: the broker alone, as a launch daemon or agent. It listens
 * on a Unix socket created owner-only (or group-only), authenticates every
 * client with a certificate from its CA and a signature over a fresh nonce,
 * authorises it against the service's `clients`, and then routes its frames
 * to the helper unchanged. `bulkhead.control` is served by the daemon itself.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { Broker, readBrokerConfig } from '../broker/broker.js';
import { RpcServer, type Handler } from '../connection/rpc-server.js';
import { bulkheadError, isBulkheadError, type BulkheadError } from '../errors.js';
import { CertificateAuthority, createChallenge, proofPayload, verifyProof, verifyServiceDir, writeIdentity } from '../identity/index.js';
import { loadProtocol } from '../protocol/registry.js';
import { PACKAGE_ROOT } from '../broker/package-paths.js';
import type { PeerInfo } from '../wire/envelope.js';
import { FramedChannel, untrustedPeerBacklog, type FramedChannelOptions } from '../wire/framed-channel.js';
import { CONTROL_SERVICE } from './control.js';
import { resolveDaemonSettings, type DaemonSettings, type ResolvedDaemonSettings } from './daemon-settings.js';
import { HandshakeReader, writeHandshake } from './handshake-io.js';
import { describeLogEvent, LogStore } from './log-store.js';
import { RoutedSession } from './routed-session.js';
import { listenOnPassedFd } from './systemd-activation.js';

export { CONTROL_SERVICE } from './control.js';

/** How long a client has to authenticate, in ms. */
export const HANDSHAKE_TIMEOUT_MS = 5000;

/** Options of {@link Daemon.start}. */
export interface DaemonOptions {
  /** Path of the config file (`{ root?, services, daemon? }`). */
  config: string;
  /** Overrides of the config's `daemon` section (e.g. from the command line). */
  settings?: Partial<DaemonSettings>;
  /**
   * Receives structured log lines: one object per event (`launch`, `exit`,
   * `throttled`, `failed`, `denied`, `kickstart`, ...) and one per line a
   * helper printed (`{ event: "output", service, pid, stream, line }`). The
   * same entries are kept in {@link Daemon.logs} for `bulkhead logs`.
   * @default JSON lines on stderr
   */
  log?: (entry: Record<string, unknown>) => void;
  /**
   * A listening Unix socket passed by systemd (socket activation, see
   * lib/daemon/systemd-activation.ts): listen on this fd instead of creating
   * the socket; it must be bound to the settings' socketPath, and it is not
   * unlinked on close (systemd owns it).
   * @default none: the daemon creates its own socket
   */
  listenFd?: number;
}

/** One structured log entry. */
export type DaemonLogEntry = Record<string, unknown> & { event: string };

/** A running daemon. */
export class Daemon {
  /** A random id for this run, bound into every client's proof. */
  readonly id = randomBytes(8).toString('hex');
  readonly startedAt = Date.now();
  private readonly sessions = new Set<{ close(): void }>();
  private closing: Promise<void> | undefined;
  /** True when systemd passed the listening socket (it then owns the path). */
  socketActivated = false;

  private constructor(
    readonly configPath: string,
    readonly settings: ResolvedDaemonSettings,
    readonly broker: Broker,
    readonly ca: CertificateAuthority,
    private readonly server: Server,
    private readonly log: (entry: DaemonLogEntry) => void,
    /** Helpers' output and the daemon's events, bounded per service: what `bulkhead logs` reads. */
    readonly logs: LogStore,
  ) {}

  /** Absolute socket path. */
  get socketPath(): string {
    return this.settings.socketPath;
  }

  /**
   * Loads the config, the CA (created on first start), registers every
   * service and starts listening.
   * @throws BulkheadError for a bad config, or ERR_INVALID_OPTION when another daemon already listens on the socket
   */
  static async start(options: DaemonOptions): Promise<Daemon> {
    const { file, config } = readBrokerConfig(options.config);
    const settings = resolveDaemonSettings(config.daemon, dirname(file), options.settings, file);
    const write = options.log ?? ((entry: Record<string, unknown>) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`));
    const logs = new LogStore();
    const log = (entry: DaemonLogEntry): void => {
      const service = typeof entry['service'] === 'string' ? entry['service'] : null;
      const pid = typeof entry['pid'] === 'number' && entry.event !== 'listening' ? entry['pid'] : null;
      logs.event(service, pid, describeLogEvent(entry), entry);
      write(entry);
    };
    mkdirSync(settings.stateDir, { recursive: true, mode: 0o700 });
    const ca = await CertificateAuthority.loadOrCreate(join(settings.stateDir, 'ca'));
    ensureAdminIdentity(ca, settings.stateDir, log);
    const broker = Broker.fromConfig(file, {
      stateDir: join(settings.stateDir, 'schedules'),
      verifyCode: (dir, requirement) => {
        verifyServiceDir(dir, requirement, ca);
      },
    });
    const pids = new Map<string, number>();
    broker.on('exit', (service, info) => log({ event: 'exit', service, pid: pids.get(service) ?? null, code: info.code, signal: info.signal, reason: info.reason ?? null, requested: info.requested, uptimeMs: info.uptimeMs }));
    broker.on('launch', (service, pid) => {
      pids.set(service, pid);
      log({ event: 'launch', service, pid });
    });
    broker.on('log', ({ service, pid, stream, line }) => {
      logs.line(service, pid, stream, line);
      write({ event: 'output', service, pid, stream, line });
    });
    broker.on('state', (service, state) => {
      if (state === 'throttled') log({ event: 'throttled', service });
      if (state === 'failed') log({ event: 'failed', service, message: broker.status(service).failure?.message ?? null });
    });
    broker.on('denied', ({ client, service, code }) => log({ event: 'denied', code, client, service }));
    broker.on('job', (service, run) => log({ event: 'job', service, result: run.result, trigger: run.trigger, durationMs: run.durationMs, ...(run.error === undefined ? {} : { error: run.error.code }) }));
    broker.metricsRecorder.forDaemon();
    const server = createServer();
    const daemon = new Daemon(file, settings, broker, ca, server, log, logs);
    server.on('connection', (socket) => daemon.accept(socket));
    try {
      if (options.listenFd === undefined) await listenOwnerOnly(server, settings);
      else {
        await listenOnPassedFd(server, options.listenFd, settings.socketPath);
        daemon.socketActivated = true;
      }
    } catch (err) {
      await broker.close();
      throw err;
    }
    log({ event: 'listening', socketPath: settings.socketPath, pid: process.pid, services: broker.serviceNames(), ...(daemon.socketActivated ? { activated: true } : {}) });
    return daemon;
  }

  /** Stops listening, ends every client session and stops every helper. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // server.close() waits for open connections, so end the sessions before awaiting it.
      const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const session of [...this.sessions]) session.close();
      await stopped;
      await this.broker.close();
      this.logs.close();
      try {
        if (!this.socketActivated) unlinkSync(this.settings.socketPath);
      } catch {
        // Already gone.
      }
      this.log({ event: 'stopped' });
    })();
    return this.closing;
  }

  /** Re-reads the config: adds new services, removes deleted ones, replaces changed ones. */
  async reload(): Promise<{ added: string[]; removed: string[]; replaced: string[] }> {
    const { file, config } = readBrokerConfig(this.configPath);
    const wanted = new Map(config.services.map((m, i) => [m.name, { manifest: m, index: i }]));
    const added: string[] = [];
    const removed: string[] = [];
    const replaced: string[] = [];
    for (const name of this.broker.serviceNames()) {
      const next = wanted.get(name);
      if (next === undefined) {
        await this.broker.unregister(name);
        removed.push(name);
      } else if (JSON.stringify(next.manifest) !== JSON.stringify(this.broker.manifest(name))) {
        await this.broker.unregister(name);
        this.broker.registerFrom(next.manifest, `${file} /services/${next.index}`);
        replaced.push(name);
      }
    }
    for (const [name, { manifest, index }] of wanted) {
      if (this.broker.serviceNames().includes(name)) continue;
      this.broker.registerFrom(manifest, `${file} /services/${index}`);
      added.push(name);
    }
    this.log({ event: 'reload', added, removed, replaced });
    return { added, removed, replaced };
  }

  private accept(socket: Socket): void {
    socket.on('error', () => socket.destroy());
    void this.handshake(socket).catch((err: unknown) => {
      // A throw that is not a coded refusal is a daemon bug: its message stays in the daemon's log.
      if (!isBulkheadError(err)) this.log({ event: 'denied', code: 'ERR_DAEMON_FAULT', client: null, service: null, message: err instanceof Error ? err.message : String(err) });
      const error = isBulkheadError(err) ? err : bulkheadError('ERR_DAEMON_FAULT', 'The handshake failed because of a fault in the daemon; its administrator will find the cause in `bulkhead logs`.');
      if (!socket.destroyed) {
        writeHandshake(socket, { t: 'error', error: error.toJSON() });
        socket.end();
        setTimeout(() => socket.destroy(), 1000).unref();
      }
    });
  }

  /** Challenge → auth → ok, then hands the socket to a session. */
  private async handshake(socket: Socket): Promise<void> {
    const reader = new HandshakeReader(socket);
    const { nonce } = createChallenge();
    writeHandshake(socket, { t: 'challenge', v: 1, nonce, daemon: this.id });
    const auth = await reader.next(HANDSHAKE_TIMEOUT_MS);
    const service = typeof auth['service'] === 'string' ? auth['service'] : undefined;
    const name = typeof auth['name'] === 'string' ? auth['name'] : undefined;
    const cert = auth['cert'];
    const sig = auth['sig'];
    if (auth['t'] !== 'auth' || service === undefined) {
      throw this.deny('ERR_AUTH_FAILED', 'The first message must be { t: "auth", service, name, cert, sig }.', { name, service });
    }
    if (typeof cert !== 'string' || cert === '' || !(sig instanceof Uint8Array) || name === undefined) {
      throw this.deny('ERR_AUTH_REQUIRED', `Connecting to ${service} needs a certificate and a signature over the challenge; issue an identity with \`bulkhead identity issue NAME\`.`, { name, service });
    }
    let identity: { name: string };
    try {
      identity = this.ca.verifyClient(cert);
    } catch (err) {
      throw this.denyVerification(err, { name, service });
    }
    const payload = proofPayload(nonce, { socketPath: this.socketPath, daemonId: this.id, clientName: identity.name });
    if (identity.name !== name || !verifyProof(cert, payload, sig)) {
      throw this.deny('ERR_AUTH_FAILED', 'The signature does not prove possession of the certificate\'s key for this connection (wrong key, or a replayed handshake).', { name: identity.name, service });
    }
    const peer: PeerInfo = { name: identity.name };
    if (service === CONTROL_SERVICE) {
      if (!this.settings.controlClients.includes(identity.name) && !this.settings.controlClients.includes('*')) {
        throw this.deny('ERR_NOT_PERMITTED', `Identity "${identity.name}" may not use the control protocol; add it to daemon.controlClients.`, { name: identity.name, service });
      }
      reader.release();
      writeHandshake(socket, { t: 'ok', peer, range: 0 });
      this.serveControl(socket, peer);
      return;
    }
    if (!this.broker.serviceNames().includes(service)) {
      throw this.deny('ERR_UNKNOWN_SERVICE', `This daemon has no service named "${service}".`, { name: identity.name, service });
    }
    const clients = this.broker.manifest(service).clients ?? [];
    if (!clients.includes(identity.name) && !clients.includes('*')) {
      throw this.deny('ERR_NOT_PERMITTED', `Identity "${identity.name}" may not connect to ${service}; add it to the service's clients.`, { name: identity.name, service });
    }
    reader.release();
    const channel = new FramedChannel(socket, this.clientChannelOptions());
    let session: RoutedSession;
    try {
      session = new RoutedSession(channel, this.broker.supervisorOf(service), peer, (error) => {
        this.sessions.delete(session);
        this.broker.metricsRecorder.disconnected();
        this.log({ event: 'disconnect', service, client: identity.name, code: error?.code ?? null, ...(error === undefined ? {} : { message: error.message }) });
      });
    } catch (err) {
      throw this.deny(isBulkheadError(err) ? err.code : 'ERR_INVALIDATED', (err as Error).message, { name: identity.name, service });
    }
    this.sessions.add(session);
    // Written before anything the session sends: channel writes wait for the next tick.
    writeHandshake(socket, { t: 'ok', peer, range: session.range });
    this.broker.metricsRecorder.connected();
    this.log({ event: 'connect', service, client: identity.name, range: session.range });
  }

  /** A client's channel: the broker's frame limit, and a bounded backlog for a client that stops reading. */
  private clientChannelOptions(): FramedChannelOptions {
    return { maxFrameBytes: this.broker.maxFrameBytes, maxBufferedBytes: untrustedPeerBacklog(this.broker.maxFrameBytes) };
  }

  private serveControl(socket: Socket, peer: PeerInfo): void {
    const protocol = loadProtocol(join(PACKAGE_ROOT, 'protocols'), CONTROL_SERVICE);
    const channel = new FramedChannel(socket, this.clientChannelOptions());
    const broker = this.broker;
    const handlers: Record<string, Handler> = {
      list: () => ({ services: broker.status(), daemon: { pid: process.pid, socketPath: this.socketPath, startedAt: this.startedAt } }),
      status: ({ name }: { name: string }) => broker.status(name),
      kickstart: async ({ name, restart }: { name: string; restart?: boolean }) => {
        const before = broker.status(name); // ERR_UNKNOWN_SERVICE before anything is logged
        this.log({ event: 'kickstart', service: name, by: peer.name, restart: restart === true });
        // "Start it now" includes a service whose crash-loop breaker tripped (launchctl kickstart does the same).
        if (before.state === 'failed') broker.reset(name);
        if (restart === true) await broker.stop(name);
        await broker.kickstart(name);
        return { pid: broker.status(name).pid };
      },
      stop: async ({ name }: { name: string }) => {
        const wasRunning = broker.status(name).pid !== null;
        this.log({ event: 'stop', service: name, by: peer.name });
        await broker.stop(name);
        return { stopped: wasRunning };
      },
      reload: () => this.reload(),
      logs: async ({ service, after, limit, waitMs, events }: { service?: string; after?: number; limit?: number; waitMs?: number; events?: boolean }, ctx) => {
        // ERR_UNKNOWN_SERVICE for a typo rather than silence (a removed service's lines are still kept).
        if (service !== undefined && !this.logs.knows(service)) broker.status(service);
        if (after !== undefined && waitMs !== undefined) await this.logs.wait(after, waitMs, service, ctx.signal);
        return this.logs.query({ service, after, limit, events });
      },
    };
    const session = {
      close: () => channel.destroy(),
    };
    this.sessions.add(session);
    this.broker.metricsRecorder.connected();
    new RpcServer(channel, protocol, handlers, {
      goodbye: () => channel.end('bye'),
      closed: () => {
        this.sessions.delete(session);
        this.broker.metricsRecorder.disconnected();
      },
    });
  }

  /**
   * A failed certificate check: what the client caused (ERR_AUTH_*, ERR_CERT_*) goes back to it;
   * anything else is the daemon's own fault (e.g. a corrupt revoked.json), logged in full here
   * and reported to the client as ERR_DAEMON_FAULT, without the daemon's paths or details.
   */
  private denyVerification(err: unknown, who: { name: string | undefined; service: string | undefined }): BulkheadError {
    if (isBulkheadError(err) && (err.code.startsWith('ERR_AUTH_') || err.code.startsWith('ERR_CERT_'))) return this.deny(err.code, err.message, who);
    this.log({ event: 'denied', code: isBulkheadError(err) ? err.code : 'ERR_DAEMON_FAULT', client: who.name ?? null, service: who.service ?? null, message: err instanceof Error ? err.message : String(err) });
    return bulkheadError('ERR_DAEMON_FAULT', 'The daemon could not verify your identity because of a fault on its side; its administrator will find the cause in `bulkhead logs`.', { client: who.name ?? null, service: who.service ?? null });
  }

  private deny(code: string, message: string, who: { name: string | undefined; service: string | undefined }): BulkheadError {
    this.broker.metricsRecorder.refused(code);
    this.log({ event: 'denied', code, client: who.name ?? null, service: who.service ?? null, message });
    return bulkheadError(isErrorCodeOr(code), message, { client: who.name ?? null, service: who.service ?? null });
  }
}

function isErrorCodeOr(code: string) {
  return (code.startsWith('ERR_') ? code : 'ERR_AUTH_FAILED') as Parameters<typeof bulkheadError>[0];
}

/** Creates `<stateDir>/identities/admin.*` on first start, for the local `bulkhead` CLI. */
function ensureAdminIdentity(ca: CertificateAuthority, stateDir: string, log: (entry: DaemonLogEntry) => void): void {
  const dir = join(stateDir, 'identities');
  if (existsSync(join(dir, 'admin.cert.pem'))) return;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeIdentity(dir, ca.issue('admin', { validDays: 3650 }));
  log({ event: 'identity-issued', name: 'admin', dir });
}

/**
 * Listens on a Unix socket that nobody but the owner (or the configured
 * group) can open. A stale socket from a dead daemon is removed; a live one
 * is an error.
 */
async function listenOwnerOnly(server: Server, settings: ResolvedDaemonSettings): Promise<void> {
  const path = settings.socketPath;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  if (existsSync(path)) {
    const alive = await new Promise<boolean>((resolve) => {
      const probe = createConnection(path);
      probe.once('connect', () => {
        probe.destroy();
        resolve(true);
      });
      probe.once('error', () => resolve(false));
    });
    if (alive) throw bulkheadError('ERR_INVALID_OPTION', `Another daemon is already listening on ${path}; stop it or choose another socketPath.`, { option: 'socketPath' });
    unlinkSync(path); // stale: its daemon died without cleaning up
  }
  // The socket file is created with the umask's mode: make it owner-only from the first instant.
  const previous = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(previous);
  }
  if (settings.socketGroup !== undefined) chownSync(path, -1, settings.socketGroup);
  chmodSync(path, settings.socketMode);
}
