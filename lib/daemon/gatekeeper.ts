/**
 * The daemon's door: every accepted socket passes here before it may speak
 * the handshake. The gatekeeper reads the peer's kernel credentials, applies
 * the unauthenticated-connection caps, starts one deadline for the whole
 * handshake, and owns the only way out for a connection that does not make it:
 * {@link PendingConnection.refuse} stops reading at once, writes a typed
 * `error` message if the socket can still take it, and destroys the socket.
 * Every refusal and every disconnect is logged with its code and the peer's
 * uid/gid/pid, and counted per code and reason.
 * @module
 */
import type { Socket } from 'node:net';
import { bulkheadError, isBulkheadError, type BulkheadError } from '../errors.js';
import { encodeItem } from '../wire/codec.js';
import { encodeFrame } from '../wire/frame-decoder.js';
import { AdmissionGate } from './admission.js';
import { HandshakeReader } from './handshake-io.js';
import { closePeerPidfd, peerCredentials, type PeerCredentials } from './peer-credentials.js';

/** How long a socket may take from accept to a refusal being flushed before it is destroyed anyway, in ms. */
const REFUSAL_FLUSH_MS = 100;

/** Refusals of one uid within {@link STRIKE_WINDOW_MS} after which its new connections are held. */
const STRIKES_BEFORE_HOLD = 8;
const STRIKE_WINDOW_MS = 1000;
/** How long a held connection waits, unread and unchallenged, before its handshake starts (at most half the handshake timeout). */
const HOLD_MS = 1000;

/** Refusals that are the peer's doing (not a cap's or the daemon's): they count as strikes against its uid. */
const NOT_A_STRIKE = new Set(['per-uid-limit', 'total-limit', 'daemon-stopping']);

/** Limits the gatekeeper enforces. */
export interface GatekeeperLimits {
  /** From accept to the end of the handshake, in ms. */
  handshakeTimeoutMs: number;
  /** Unauthenticated connections from one uid. */
  maxUnauthenticatedPerUid: number;
  /** Unauthenticated connections in all. */
  maxUnauthenticated: number;
}

/** A connection between accept and the end of its handshake. */
export interface PendingConnection {
  readonly socket: Socket;
  /** Resolves when the handshake may start (at once, unless the peer's uid is being held). */
  readonly ready: Promise<void>;
  /** The handshake reader; created (and the socket read) on first use, after {@link ready}. */
  readonly reader: HandshakeReader;
  /** The kernel's word on the peer; `pidfd` is closed when the socket closes. */
  readonly credentials: PeerCredentials;
  /** True once refused or admitted. */
  readonly settled: boolean;
  /** Refuses: logs, counts, writes `{ t: "error", error }` if it can, and destroys the socket. Idempotent. */
  refuse(error: BulkheadError, who?: { client?: string | null; service?: string | null }): void;
  /** The handshake succeeded: the caps and the deadline no longer apply. */
  admitted(): void;
}

/** Counters kept per refusal and disconnect reason (`CODE` or `CODE:reason`). */
export type ReasonCounts = Record<string, number>;

/** Admits sockets into the handshake; see the module comment. */
export class Gatekeeper {
  private readonly gate: AdmissionGate<Pending>;
  /** Refusals per `CODE[:reason]`. */
  readonly refusals: ReasonCounts = {};
  /** Ends of authenticated connections per `CODE` (`"clean"` for an orderly end). */
  readonly disconnects: ReasonCounts = {};
  /** Connections held (tarpitted) because their uid kept being refused. */
  held = 0;
  /** Recent refusals per uid: a uid that keeps being refused gets its new connections held. */
  private readonly strikes = new Map<number, { count: number; since: number }>();

  constructor(
    readonly limits: GatekeeperLimits,
    private readonly log: (entry: Record<string, unknown> & { event: string }) => void,
    /** Also told of each refusal's code (the broker's metrics count them). */
    private readonly onRefused: (code: string) => void = () => {},
  ) {
    this.gate = new AdmissionGate({ perUid: limits.maxUnauthenticatedPerUid, total: limits.maxUnauthenticated });
  }

  /** Unauthenticated connections held now. */
  get pending(): number {
    return this.gate.size;
  }

  /**
   * Takes an accepted socket. Returns the pending connection, or undefined
   * when it was refused on the spot (no kernel credentials).
   */
  open(socket: Socket): PendingConnection | undefined {
    socket.on('error', () => socket.destroy());
    let credentials: PeerCredentials;
    try {
      credentials = peerCredentials(socket);
    } catch (err) {
      const error = isBulkheadError(err) ? err : bulkheadError('ERR_AUTH_FAILED', String(err), { reason: 'no-peer-credentials' });
      this.record(error, undefined, {});
      socket.destroy();
      return undefined;
    }
    socket.once('close', () => closePeerPidfd(credentials.pidfd));
    const holdMs = this.struckOut(credentials.uid) ? Math.min(HOLD_MS, Math.floor(this.limits.handshakeTimeoutMs / 2)) : 0;
    if (holdMs > 0) this.held++;
    const pending = new Pending(this, socket, credentials, holdMs);
    for (const { conn, reason } of this.gate.admit(pending, credentials.uid)) {
      const limit = reason === 'per-uid-limit' ? this.limits.maxUnauthenticatedPerUid : this.limits.maxUnauthenticated;
      conn.refuse(bulkheadError('ERR_TOO_MANY_CONNECTIONS', `Too many connections are still authenticating (${reason === 'per-uid-limit' ? `uid ${conn.credentials.uid} holds` : 'the daemon holds'} ${limit}); this oldest one was closed. Authenticate promptly after connecting.`, { reason, limit }));
    }
    return pending;
  }

  /** Refuses every connection still authenticating (the daemon is stopping). */
  closeAll(): void {
    for (const pending of this.gate.all()) pending.refuse(bulkheadError('ERR_CLOSED', 'The daemon is stopping.', { reason: 'daemon-stopping' }));
  }

  /** Logs and counts an authenticated connection's end. */
  disconnected(credentials: PeerCredentials, who: { client: string; service: string }, error: BulkheadError | undefined): void {
    const key = error?.code ?? 'clean';
    this.disconnects[key] = (this.disconnects[key] ?? 0) + 1;
    this.log({ event: 'disconnect', code: error?.code ?? null, ...(error === undefined ? {} : { message: error.message }), ...who, ...peerFields(credentials) });
  }

  /** @internal Called by a pending connection once it is settled. */
  release(pending: Pending): void {
    this.gate.release(pending);
  }

  /** @internal Logs and counts one refusal. */
  record(error: BulkheadError, credentials: PeerCredentials | undefined, who: { client?: string | null; service?: string | null }): void {
    const reason = typeof error.data['reason'] === 'string' ? error.data['reason'] : undefined;
    const key = reason === undefined ? error.code : `${error.code}:${reason}`;
    this.refusals[key] = (this.refusals[key] ?? 0) + 1;
    this.onRefused(error.code);
    if (credentials !== undefined && !NOT_A_STRIKE.has(reason ?? '')) this.strike(credentials.uid);
    this.log({
      event: 'refused', code: error.code, reason: reason ?? null, client: who.client ?? null, service: who.service ?? null,
      ...(credentials === undefined ? { uid: null, gid: null, pid: null } : peerFields(credentials)), message: error.message,
    });
  }

  /**
   * A uid refused {@link STRIKES_BEFORE_HOLD} times within {@link STRIKE_WINDOW_MS}
   * has its next connections held: accepted, but neither challenged nor read
   * for a while. A client that reconnects in a loop to spray garbage then
   * waits on its own full socket buffer instead of costing the daemon a
   * handshake per loop; an honest client of that uid is only slower.
   */
  private struckOut(uid: number): boolean {
    const s = this.strikes.get(uid);
    if (s === undefined) return false;
    if (Date.now() - s.since > STRIKE_WINDOW_MS) {
      this.strikes.delete(uid);
      return false;
    }
    return s.count >= STRIKES_BEFORE_HOLD;
  }

  private strike(uid: number): void {
    const now = Date.now();
    const s = this.strikes.get(uid);
    if (s === undefined || now - s.since > STRIKE_WINDOW_MS) this.strikes.set(uid, { count: 1, since: now });
    else s.count++;
  }
}

/** The peer fields every connection log entry carries. `peerPid`, not `pid`: `pid` names a helper in the log store. */
export function peerFields(c: PeerCredentials): { uid: number; gid: number; peerPid: number } {
  return { uid: c.uid, gid: c.gid, peerPid: c.pid };
}

class Pending implements PendingConnection {
  private readerInstance: HandshakeReader | undefined;
  settled = false;
  readonly ready: Promise<void>;
  private readonly deadline: NodeJS.Timeout;

  constructor(private readonly keeper: Gatekeeper, readonly socket: Socket, readonly credentials: PeerCredentials, holdMs: number) {
    if (holdMs > 0) {
      socket.pause();
      this.ready = new Promise((resolve) => setTimeout(resolve, holdMs).unref());
    } else {
      this.ready = Promise.resolve();
    }
    const ms = keeper.limits.handshakeTimeoutMs;
    this.deadline = setTimeout(() => this.refuse(bulkheadError('ERR_AUTH_FAILED', `The handshake did not finish within ${ms} ms of connecting.`, { reason: 'timeout', timeoutMs: ms })), ms);
    // A peer that goes away mid-handshake is a refusal too (reason "closed"), logged and counted.
    socket.once('close', () => this.refuse(this.readerInstance?.failed ?? bulkheadError('ERR_AUTH_FAILED', 'The peer closed the connection during the handshake.', { reason: 'closed' })));
  }

  refuse(error: BulkheadError, who: { client?: string | null; service?: string | null } = {}): void {
    if (this.settled) return;
    this.settle();
    if (this.readerInstance !== undefined) this.readerInstance.fail(error); // stops reading now: nothing more from this peer is buffered
    else this.socket.pause();
    this.keeper.record(error, this.credentials, who);
    const socket = this.socket;
    if (socket.destroyed) return;
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const fallback = setTimeout(() => socket.destroy(), REFUSAL_FLUSH_MS);
    fallback.unref();
    socket.end(encodeFrame(encodeItem({ t: 'error', error: error.toJSON() })), () => {
      clearTimeout(fallback);
      socket.destroy();
    });
  }

  get reader(): HandshakeReader {
    this.readerInstance ??= new HandshakeReader(this.socket);
    return this.readerInstance;
  }

  admitted(): void {
    if (this.settled) return;
    this.settle();
  }

  private settle(): void {
    this.settled = true;
    clearTimeout(this.deadline);
    this.keeper.release(this);
  }
}
