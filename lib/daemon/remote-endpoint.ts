/**
 * The client side of one daemon-routed connection: a Unix socket to the
 * daemon, the challenge–response handshake, then an ordinary bulkhead
 * channel whose call ids stay inside the range the daemon assigned.
 * @module
 */
import { createConnection, type Socket } from 'node:net';
import { Connection, type ServiceEndpoint } from '../connection/connection.js';
import { RpcClient } from '../connection/rpc-client.js';
import { BulkheadError, bulkheadError, isErrorCode, type BulkheadErrorCode } from '../errors.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import type { ProtocolShape } from '../protocol/types.js';
import { FramedChannel } from '../wire/framed-channel.js';
import { proofPayload, signProof } from '../identity/proof-sign.js';
import { HandshakeReader, writeHandshake } from './handshake-io.js';
import { canReceiveHandoff, holdReads, receiveHandoffAnswer, resumeReads } from './handoff-receive.js';
import { DirectClient } from './direct-client.js';
import type { Endpoint } from '../protocol/endpoint-keyword.js';

/** An identity a client presents: its certificate, and the key that proves it owns it. */
export interface ClientIdentity {
  /** Identity name (the certificate's CN). */
  name: string;
  certPem: string;
  keyPem: string;
}

/** Why a daemon ends a direct channel for good (docs/wire.md 9.4); other codes leave the connection usable. */
const WITHDRAWN: ReadonlySet<string> = new Set(['ERR_INVALIDATED', 'ERR_CERT_REVOKED', 'ERR_NOT_PERMITTED', 'ERR_BAD_FRAME', 'ERR_CLOSED', 'ERR_ENDPOINT_DEAD']);

/** Codes a connection's `invalidated` event carries as they are (any other is wrapped in ERR_INVALIDATED with `data.cause`). */
const OWN_INVALIDATION: ReadonlySet<string> = new Set(['ERR_INVALIDATED', 'ERR_ENDPOINT_DEAD']);

/** How long the client waits for each handshake step, in ms. */
const CLIENT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** One routed connection's endpoint. */
export class RemoteEndpoint implements ServiceEndpoint {
  readonly callMeta = undefined;
  connection: Connection<ProtocolShape> | undefined;
  /** Called once when the endpoint detaches (its connection closed); the RemoteBroker forgets it. */
  onDetached: (() => void) | undefined;
  /** The endpoint (a service minted for this client) each handshake presents instead of relying on `clients`. */
  grant: Endpoint | undefined;
  private rpc: RpcClient | undefined;
  private connecting: Promise<RpcClient> | undefined;
  private socket: Socket | undefined;
  private direct: DirectClient | undefined;
  private ended = false;

  constructor(
    readonly service: string,
    readonly protocol: CompiledProtocol,
    private readonly socketPath: string,
    private readonly identity: ClientIdentity,
    /** The daemon id to insist on (its CA fingerprint); undefined: whatever the challenge names. */
    private readonly pinnedDaemonId?: string,
    /** Ask for a direct channel (hand-off) when this process can take a descriptor. */
    private readonly wantDirect = true,
  ) {}

  /** `"direct"` while a handed-off channel is open, `"routed"` while a daemon-routed one is, else null. */
  get path(): 'direct' | 'routed' | null {
    if (this.current() === undefined) return null;
    return this.direct !== undefined ? 'direct' : 'routed';
  }

  /** @inheritdoc */
  current(): RpcClient | undefined {
    return this.rpc?.usable ? this.rpc : undefined;
  }

  /** @inheritdoc */
  acquire(): Promise<RpcClient> {
    if (this.ended) return Promise.reject(bulkheadError('ERR_CLOSED', `Connection to ${this.service} is closed.`));
    const rpc = this.current();
    if (rpc !== undefined) return Promise.resolve(rpc);
    this.connecting ??= this.open().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /** @inheritdoc */
  detach(): void {
    this.ended = true;
    this.onDetached?.();
    this.onDetached = undefined;
    if (this.direct !== undefined) this.direct.close();
    else if (this.rpc !== undefined && this.rpc.channel.open) this.rpc.channel.end('client closing');
    else this.socket?.destroy();
  }

  private async open(): Promise<RpcClient> {
    const socket = createConnection(this.socketPath);
    this.socket = socket;
    const connected = new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', (err: NodeJS.ErrnoException) => reject(bulkheadError('ERR_INTERRUPTED', `Cannot reach the daemon at ${this.socketPath}: ${err.message}. Is \`bulkhead daemon\` running?`, { errno: err.code ?? null })));
    });
    await connected;
    const reader = new HandshakeReader(socket);
    let range: number;
    let handedOff: number | undefined;
    try {
      const challenge = await reader.next(CLIENT_HANDSHAKE_TIMEOUT_MS);
      const nonce = challenge['nonce'];
      const daemonId = challenge['daemon'];
      if (challenge['t'] !== 'challenge' || !(nonce instanceof Uint8Array) || typeof daemonId !== 'string') {
        throw bulkheadError('ERR_BAD_FRAME', 'The daemon did not send a challenge; is this a bulkhead daemon socket?');
      }
      if (this.pinnedDaemonId !== undefined && daemonId !== this.pinnedDaemonId) {
        throw bulkheadError('ERR_AUTH_FAILED', `The daemon at ${this.socketPath} is not the one pinned: its id (CA fingerprint) is ${daemonId.slice(0, 64)}, expected ${this.pinnedDaemonId}. Nothing was signed for it.`, { reason: 'daemon-mismatch' });
      }
      const payload = proofPayload(nonce, { socketPath: this.socketPath, daemonId, clientName: this.identity.name });
      // A client that can take a descriptor says so; the daemon then answers with a channel of our own.
      const direct = this.wantDirect && canReceiveHandoff(socket);
      if (direct) reader.release(); // the answer is read with recvmsg, not by libuv
      writeHandshake(socket, { t: 'auth', service: this.service, name: this.identity.name, cert: this.identity.certPem, sig: signProof(this.identity.keyPem, payload), ...(direct ? { direct: true } : {}), ...(this.grant === undefined ? {} : { endpoint: { service: this.grant.service, token: this.grant.token } }) });
      let answer: Record<string, unknown>;
      if (direct) {
        holdReads(socket); // before the event loop runs again: libuv must not read the answer
        const received = await receiveHandoffAnswer(socket, CLIENT_HANDSHAKE_TIMEOUT_MS);
        answer = received.message;
        handedOff = received.fd;
      } else {
        answer = await reader.next(CLIENT_HANDSHAKE_TIMEOUT_MS);
      }
      if (answer['t'] === 'error') throw daemonError(answer['error']);
      if (answer['t'] !== 'ok' || typeof answer['range'] !== 'number') throw bulkheadError('ERR_BAD_FRAME', 'Unexpected handshake answer from the daemon.');
      if (answer['direct'] === true && handedOff === undefined) throw bulkheadError('ERR_BAD_FRAME', 'The daemon announced a direct channel but passed no descriptor.');
      range = answer['range'];
      if (direct && handedOff === undefined) resumeReads(socket); // routed after all: libuv reads from here on
    } catch (err) {
      socket.destroy();
      throw err;
    }
    if (handedOff !== undefined) return this.openDirect(socket, handedOff);
    reader.release();
    const channel = new FramedChannel(socket);
    const rpc = new RpcClient(channel, this.protocol, {
      broadcast: (name, payload) => this.connection?.deliverEvent(name, payload),
      eventError: (error) => this.connection?.deliverError(error),
    }, { service: this.service, idRange: range, trustPeerCodes: true });
    channel.attach({
      envelope: (e, body) => {
        rpc.receive(e, body.length);
        // The daemon reports a helper's death per call; surface it like an embedded interruption.
        if (e.kind === 'error' && e.error.code === 'ERR_INTERRUPTED') this.connection?.notifyInterrupted(new BulkheadError('ERR_INTERRUPTED', e.error.message, e.error.data ?? {}));
      },
      closed: (error) => {
        const cause = error ?? rpc.peerError;
        const lost = cause ?? bulkheadError('ERR_INVALIDATED', `The daemon at ${this.socketPath} closed the connection to ${this.service}; open a new connection.`);
        rpc.interrupt(bulkheadError('ERR_INTERRUPTED', `Connection to the daemon lost while the call was in flight (${lost.code}).`, { cause: lost.code }));
        if (!this.ended) this.connection?.notifyInvalidated(OWN_INVALIDATION.has(lost.code) ? lost : bulkheadError('ERR_INVALIDATED', lost.message, { cause: lost.code }));
        this.rpc = undefined;
      },
    });
    // Our copy of the protocol goes along, so a daemon serving another compatible version can judge it.
    rpc.sendHello({ client: this.identity.name, document: this.protocol.document });
    this.rpc = rpc;
    await rpc.ready;
    return rpc;
  }

  /** The hand-off path: calls go to the helper on the channel the daemon passed (docs/wire.md, "Hand-off"). */
  private async openDirect(lifeline: Socket, fd: number): Promise<RpcClient> {
    const direct: DirectClient = new DirectClient(lifeline, fd, this.protocol, this.service, {
      broadcast: (name, payload) => this.connection?.deliverEvent(name, payload),
      eventError: (error) => this.connection?.deliverError(error),
      retiring: () => {
        // New calls re-broker (to the helper that replaces this one); this channel finishes its calls.
        if (this.direct === direct) {
          this.direct = undefined;
          this.rpc = undefined;
        }
      },
      ended: (error) => {
        if (this.direct === direct) {
          this.direct = undefined;
          this.rpc = undefined;
        }
        if (error === undefined || this.ended) return;
        // The helper went away: like an embedded interruption, and the next call re-brokers.
        if (error.code === 'ERR_INTERRUPTED') this.connection?.notifyInterrupted(error);
        // The daemon withdrew the client's right to the service (or is gone): the connection is over.
        else if (WITHDRAWN.has(error.code)) this.connection?.notifyInvalidated(OWN_INVALIDATION.has(error.code) ? error : bulkheadError('ERR_INVALIDATED', error.message, { ...error.data, cause: error.code }));
        // Anything else (the helper could not start, ...) failed the calls in flight; the next call tries again.
      },
    });
    this.direct = direct;
    this.rpc = direct.rpc;
    direct.rpc.sendHello({ client: this.identity.name, document: this.protocol.document });
    await direct.rpc.ready;
    return direct.rpc;
  }
}

function daemonError(value: unknown): BulkheadError {
  const e = (typeof value === 'object' && value !== null ? value : {}) as { code?: unknown; message?: unknown; data?: unknown };
  const code: BulkheadErrorCode = isErrorCode(e.code) ? e.code : 'ERR_AUTH_FAILED';
  return new BulkheadError(code, typeof e.message === 'string' ? e.message : 'The daemon refused the connection.', typeof e.data === 'object' && e.data !== null ? e.data as Record<string, unknown> : {});
}
