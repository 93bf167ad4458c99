/**
 * `bulkhead daemon`: the broker alone, as a launch daemon or agent. It listens
 * on a Unix socket created owner-only (or group-only), authenticates every
 * client with a certificate from its CA and a signature over a fresh nonce,
 * authorises it against the service's `clients`, and then routes its frames
 * to the helper unchanged. `bulkhead.control` is served by the daemon itself.
 * Its parts: client-auth.ts (who the client is), control-handlers.ts (the
 * control protocol), socket-listen.ts (the owner-only socket), daemon-log.ts
 * (what it logs of itself and its broker).
 * @module
 */
import { existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { Broker, readBrokerConfig, type ReloadResult } from '../broker/broker.js';
import { RpcServer } from '../connection/rpc-server.js';
import { bulkheadError, isBulkheadError, type BulkheadError } from '../errors.js';
import { CertificateAuthority, verifyServiceDir, writeIdentity } from '../identity/index.js';
import type { PeerInfo } from '../wire/envelope.js';
import { FramedChannel, untrustedPeerBacklog, type FramedChannelOptions } from '../wire/framed-channel.js';
import { CONTROL_SERVICE, loadControlProtocol } from './control.js';
import { DAEMON_LIMIT_DEFAULTS, resolveDaemonSettings, type DaemonSettings, type ResolvedDaemonSettings } from './daemon-settings.js';
import { admits } from './client-policy.js';
import { Gatekeeper, peerFields, type PendingConnection } from './gatekeeper.js';
import { writeHandshake } from './handshake-io.js';
import { authenticateClient, refusal, type HandshakeNames } from './client-auth.js';
import { controlHandlers } from './control-handlers.js';
import { listenOwnerOnly } from './socket-listen.js';
import { loadPeerCredentials, peerAlive, type PeerCredentials } from './peer-credentials.js';
import { LogStore } from './log-store.js';
import { daemonLog, logBrokerEvents, stderrSink, type DaemonLogEntry } from './daemon-log.js';
import { RoutedSession, type SessionFlowLimits } from './routed-session.js';
import { CLIENT_STALL_MS, clientHighWater } from '../wire/backlog-watch.js';
import { listenOnPassedFd } from './systemd-activation.js';
import { announceWithdrawals, clientsInConfig, recheckClients, watchRevocations, type ClientRecord } from './client-authority.js';
import { admitDirect, mayHandOff, type DirectAdmissionContext } from './direct-admission.js';
import { CA_FILES } from '../identity/ca-directory.js';
import { admitEndpoint, ClientRecords } from './endpoint-admission.js';

export { CONTROL_SERVICE } from './control.js';

/** How long a client has to authenticate, in ms, unless `daemon.handshakeTimeoutMs` says otherwise. */
export const HANDSHAKE_TIMEOUT_MS = DAEMON_LIMIT_DEFAULTS.handshakeTimeoutMs;

/** Options of {@link Daemon.start}. */
export interface DaemonOptions {
  /** Path of the config file (`{ root?, services, daemon? }`). */
  config: string;
  /** Overrides of the config's `daemon` section (e.g. from the command line). @default none: the config's section as written */
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

/** What {@link Daemon.connectionStatus} reports. */
export interface DaemonConnectionStatus {
  /** The daemon id clients sign over (its CA's SHA-256 fingerprint). */
  id: string;
  /** Connections accepted and not yet authenticated. */
  pendingHandshakes: number;
  /** Connections held (accepted, not read for a while) since start, because their uid kept being refused. */
  held: number;
  /** Refused connections per `CODE` or `CODE:reason` since start. */
  refusals: Record<string, number>;
  /** Ended authenticated connections per code (`"clean"` for an orderly end) since start. */
  disconnects: Record<string, number>;
  /** Authenticated connections now. */
  clients: Array<{ service: string; name: string; uid: number; gid: number; pid: number; since: number; alive: boolean | null; path: 'direct' | 'routed' }>;
}

export type { DaemonLogEntry } from './daemon-log.js';

/** A running daemon. */
export class Daemon {
  /**
   * The daemon's id, bound into every client's proof: the SHA-256 fingerprint
   * of its CA certificate (64 lowercase hex digits), the same across restarts,
   * so a client can pin it (`bulkhead identity issue` prints it).
   */
  readonly id: string;
  readonly startedAt = Date.now();
  private readonly sessions = new Set<{ close(): void }>();
  /** Authenticated client connections. */
  private readonly connections: ClientRecords;
  /** What a hand-off joins (direct-admission.ts). */
  private readonly direct: DirectAdmissionContext;
  private stopWatchingRevocations: () => void = () => undefined;
  private readonly gatekeeper: Gatekeeper;
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
  ) {
    this.id = ca.fingerprint;
    this.connections = new ClientRecords(broker);
    this.gatekeeper = new Gatekeeper(settings, log, (code) => broker.metricsRecorder.refused(code));
    this.direct = { broker, gatekeeper: this.gatekeeper, sessions: this.sessions, connections: this.connections, routedOnly: new Set(), enabled: settings.direct, log };
  }

  /** Absolute socket path. */
  get socketPath(): string {
    return this.settings.socketPath;
  }

  /**
   * Loads the config, the CA (created on first start), registers every
   * service and starts listening.
   * @throws BulkheadError for a bad config, or ERR_DAEMON_RUNNING when another daemon already listens on the socket
   */
  static async start(options: DaemonOptions): Promise<Daemon> {
    const { file, config } = readBrokerConfig(options.config);
    const settings = resolveDaemonSettings(config.daemon, dirname(file), options.settings, file);
    const write = options.log ?? stderrSink;
    const logs = new LogStore();
    const log = daemonLog(logs, write);
    loadPeerCredentials(); // fail at start, not at the first client, when the kernel's word cannot be read
    // The whole config first: a typo must not leave a fresh CA and admin key behind.
    Broker.checkConfig(file);
    mkdirSync(settings.stateDir, { recursive: true, mode: 0o700 });
    const ca = await CertificateAuthority.loadOrCreate(join(settings.stateDir, 'ca'));
    ensureAdminIdentity(ca, settings.stateDir, log);
    const broker = Broker.fromConfig(file, {
      mode: 'daemon',
      stateDir: join(settings.stateDir, 'schedules'),
      verifyCode: (dir, requirement) => {
        verifyServiceDir(dir, requirement, ca);
      },
    });
    logBrokerEvents(broker, log, logs, write);
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
    daemon.stopWatchingRevocations = watchRevocations(ca.dir, CA_FILES.revoked, () => daemon.recheckClients());
    log({ event: 'listening', socketPath: settings.socketPath, pid: process.pid, services: broker.serviceNames(), ...(daemon.socketActivated ? { activated: true } : {}) });
    return daemon;
  }

  /** Stops listening, ends every client session and stops every helper. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // server.close() waits for open connections, so end the sessions before awaiting it.
      const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.stopWatchingRevocations();
      for (const session of [...this.sessions]) session.close();
      this.gatekeeper.closeAll();
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

  /**
   * The daemon's side of `bulkhead ps`: its id, the connections still
   * authenticating, refusals and disconnects counted per code (and reason),
   * and every authenticated client with the uid/gid/pid the kernel reported.
   * `alive` is false once that pid no longer names the client's process
   * (checked through its pidfd where the kernel gives one; null where it does not).
   */
  connectionStatus(): DaemonConnectionStatus {
    return {
      id: this.id,
      pendingHandshakes: this.gatekeeper.pending,
      held: this.gatekeeper.held,
      refusals: { ...this.gatekeeper.refusals },
      disconnects: { ...this.gatekeeper.disconnects },
      clients: [...this.connections].map(({ service, peer, credentials, since, path }) => ({
        service, name: peer.name, uid: credentials.uid, gid: credentials.gid, pid: credentials.pid, since, path,
        alive: credentials.pidfd === undefined ? null : peerAlive(credentials.pidfd, credentials.pid),
      })),
    };
  }

  /**
   * Re-reads the config atomically (Broker.reload): checks every service first,
   * then adds new ones, removes deleted ones and restarts changed ones (their
   * manifest, or their profile file edited in place) without downtime. A bad config changes nothing; the failure is logged with its reason.
   */
  async reload(): Promise<ReloadResult> {
    let announced: ClientRecord[] = [];
    try {
      // A changed manifest restarts its helper: direct clients the new config drops learn that reason, not the restart.
      announced = announceWithdrawals(this.connections, this.ca, clientsInConfig(readBrokerConfig(this.configPath).config.services));
      const result = await this.broker.reload(this.configPath);
      this.log({ event: 'reload', ...result });
      this.recheckClients();
      return result;
    } catch (err) {
      for (const record of announced) record.announce?.(undefined);
      const error = isBulkheadError(err) ? err : bulkheadError('ERR_INVALID_MANIFEST', `Cannot reload ${this.configPath}: ${(err as Error).message}`, {}, err);
      this.log({ event: 'reload-failed', code: error.code, message: error.message });
      throw error;
    }
  }

  /**
   * Re-checks every admitted connection against the revocation list and the
   * services' `clients` (after a reload, or when revoked.json changed): a
   * client that would now be refused loses its connection at once.
   */
  recheckClients(): void {
    const clientsOf = (service: string): readonly string[] | undefined => (this.broker.serviceNames().includes(service) ? this.broker.manifest(service).clients ?? [] : undefined);
    try {
      for (const { record, error } of recheckClients([...this.connections], CONTROL_SERVICE, this.ca, clientsOf)) {
        this.log({ event: 'withdrawn', code: error.code, service: record.service, client: record.peer.name, path: record.path });
      }
    } catch (err) {
      // An unreadable revocation list: the next handshake reports it; live connections are not guessed at.
      this.log({ event: 'recheck-failed', message: (err as Error).message });
    }
  }

  private accept(socket: Socket): void {
    const conn = this.gatekeeper.open(socket);
    if (conn === undefined) return;
    const who: HandshakeNames = {};
    void this.handshake(conn, who).then(
      () => conn.admitted(),
      (err: unknown) => conn.refuse(isBulkheadError(err) ? err : this.daemonFault(err, who), who),
    );
  }

  /** Challenge → auth (client-auth.ts) → ok, then hands the socket to a session. Throws the refusal; `who` learns the names as they are known. */
  private async handshake(conn: PendingConnection, who: HandshakeNames): Promise<void> {
    await conn.ready;
    if (conn.settled) return; // refused while held (evicted, timed out, gone)
    const { socket, reader, credentials } = conn;
    const { service, identity, direct, endpoint } = await authenticateClient(conn, who, {
      ca: this.ca, daemonId: this.id, socketPath: this.socketPath, handshakeTimeoutMs: this.settings.handshakeTimeoutMs,
      fault: (err, names) => this.daemonFault(err, names),
    });
    const peer: PeerInfo = { name: identity.name, uid: credentials.uid, gid: credentials.gid, pid: credentials.pid };
    const verified = { name: identity.name, uid: credentials.uid, gid: credentials.gid };
    if (service === CONTROL_SERVICE) {
      if (!admits(this.settings.controlClients, verified)) {
        throw refusal('ERR_NOT_PERMITTED', `Identity "${identity.name}" (uid ${credentials.uid}) may not use the control protocol; add it to daemon.controlClients.`, { reason: 'not-in-clients', name: identity.name, service });
      }
      reader.release();
      conn.admitted();
      writeHandshake(socket, { t: 'ok', peer, range: 0 });
      this.serveControl(socket, peer, credentials);
      return;
    }
    if (!this.broker.serviceNames().includes(service)) {
      throw refusal('ERR_UNKNOWN_SERVICE', `This daemon has no service named "${service}".`, { reason: 'unknown-service', name: identity.name, service });
    }
    // An endpoint a service minted for this client admits it instead of the service's clients.
    const token = endpoint === undefined ? undefined : admitEndpoint(this.broker, endpoint, service, verified);
    const clients = this.broker.manifest(service).clients ?? [];
    if (token === undefined && !admits(clients, verified)) {
      throw refusal('ERR_NOT_PERMITTED', `Identity "${identity.name}" (uid ${credentials.uid}, gid ${credentials.gid}) may not connect to ${service}; add it to the service's clients.`, { reason: 'not-in-clients', name: identity.name, service });
    }
    reader.release();
    // A client that can take a descriptor gets a channel of its own to the helper (docs/wire.md, "Hand-off").
    if (direct && mayHandOff(this.direct, service) && admitDirect(this.direct, conn, service, peer, identity.serial, token)) return;
    const channel = new FramedChannel(socket, this.clientChannelOptions());
    let session: RoutedSession;
    try {
      session = new RoutedSession(channel, this.broker.supervisorOf(service), peer, (error) => {
        this.sessions.delete(session);
        this.connections.delete(record);
        this.gatekeeper.disconnected(credentials, { client: identity.name, service }, error);
        this.broker.metricsRecorder.disconnected();
      }, this.sessionFlowLimits());
    } catch (err) {
      throw refusal(isBulkheadError(err) ? err.code : 'ERR_INVALIDATED', (err as Error).message, { reason: 'no-route', name: identity.name, service });
    }
    conn.admitted();
    const record: ClientRecord = { service, peer, credentials, since: Date.now(), path: 'routed', serial: identity.serial, ...(token === undefined ? {} : { endpoint: token }), withdraw: (error) => session.invalidated(error) };
    this.sessions.add(session);
    this.connections.add(record);
    // Written before anything the session sends: channel writes wait for the next tick.
    writeHandshake(socket, { t: 'ok', peer, range: session.range });
    this.broker.metricsRecorder.connected();
    this.log({ event: 'connect', service, client: identity.name, range: session.range, path: 'routed', ...peerFields(credentials) });
  }

  /** A client's channel: the broker's frame limit, and a bounded backlog for a client that stops reading. */
  private sessionFlowLimits(): SessionFlowLimits {
    return { highWaterBytes: clientHighWater(this.broker.maxFrameBytes), stallMs: CLIENT_STALL_MS };
  }

  private clientChannelOptions(): FramedChannelOptions {
    return { maxFrameBytes: this.broker.maxFrameBytes, maxBufferedBytes: untrustedPeerBacklog(this.broker.maxFrameBytes) };
  }

  private serveControl(socket: Socket, peer: PeerInfo, credentials: PeerCredentials): void {
    const protocol = loadControlProtocol();
    const channel = new FramedChannel(socket, this.clientChannelOptions());
    const handlers = controlHandlers({
      broker: this.broker, logs: this.logs, log: this.log, reload: () => this.reload(),
      describe: () => ({ pid: process.pid, socketPath: this.socketPath, startedAt: this.startedAt, ...this.connectionStatus() }),
    }, peer);
    const session = {
      close: () => channel.destroy(),
    };
    const record: ClientRecord = { service: CONTROL_SERVICE, peer, credentials, since: Date.now(), path: 'routed', serial: '', withdraw: () => session.close() };
    this.sessions.add(session);
    this.connections.add(record);
    this.broker.metricsRecorder.connected();
    this.log({ event: 'connect', service: CONTROL_SERVICE, client: peer.name, range: 0, ...peerFields(credentials) });
    new RpcServer(channel, protocol, handlers, {
      goodbye: () => channel.end('bye'),
      closed: (error) => {
        this.sessions.delete(session);
        this.connections.delete(record);
        this.broker.metricsRecorder.disconnected();
        this.gatekeeper.disconnected(credentials, { client: peer.name, service: CONTROL_SERVICE }, error);
      },
    });
  }

  /**
   * A fault on the daemon's side during a handshake (a corrupt revoked.json, a bug): the details,
   * paths included, go to the daemon's log; the client gets ERR_DAEMON_FAULT saying only that.
   */
  private daemonFault(err: unknown, who: HandshakeNames): BulkheadError {
    this.log({ event: 'denied', code: isBulkheadError(err) ? err.code : 'ERR_DAEMON_FAULT', client: who.client ?? null, service: who.service ?? null, message: err instanceof Error ? err.message : String(err) });
    return bulkheadError('ERR_DAEMON_FAULT', 'The daemon could not complete the handshake because of a fault on its side; its administrator will find the cause in `bulkhead logs`.', { reason: 'daemon-fault', client: who.client ?? null, service: who.service ?? null });
  }
}

/** Creates `<stateDir>/identities/admin.*` on first start, for the local `bulkhead` CLI. */
function ensureAdminIdentity(ca: CertificateAuthority, stateDir: string, log: (entry: DaemonLogEntry) => void): void {
  const dir = join(stateDir, 'identities');
  if (existsSync(join(dir, 'admin.cert.pem'))) return;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeIdentity(dir, ca.issue('admin', { validDays: 3650 }));
  log({ event: 'identity-issued', name: 'admin', dir });
}
