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
import { proofPayload, signProof } from '../identity/proof.js';
import { HandshakeReader, writeHandshake } from './handshake-io.js';

/** An identity a client presents: its certificate, and the key that proves it owns it. */
export interface ClientIdentity {
  /** Identity name (the certificate's CN). */
  name: string;
  certPem: string;
  keyPem: string;
}

/** How long the client waits for each handshake step, in ms. */
const CLIENT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** One routed connection's endpoint. */
export class RemoteEndpoint implements ServiceEndpoint {
  readonly callMeta = undefined;
  connection: Connection<ProtocolShape> | undefined;
  /** Called once when the endpoint detaches (its connection closed); the RemoteBroker forgets it. */
  onDetached: (() => void) | undefined;
  private rpc: RpcClient | undefined;
  private connecting: Promise<RpcClient> | undefined;
  private socket: Socket | undefined;
  private ended = false;

  constructor(
    readonly service: string,
    readonly protocol: CompiledProtocol,
    private readonly socketPath: string,
    private readonly identity: ClientIdentity,
    /** The daemon id to insist on (its CA fingerprint); undefined: whatever the challenge names. */
    private readonly pinnedDaemonId?: string,
  ) {}

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
    if (this.rpc !== undefined && this.rpc.channel.open) this.rpc.channel.end('client closing');
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
      writeHandshake(socket, { t: 'auth', service: this.service, name: this.identity.name, cert: this.identity.certPem, sig: signProof(this.identity.keyPem, payload) });
      const answer = await reader.next(CLIENT_HANDSHAKE_TIMEOUT_MS);
      if (answer['t'] === 'error') throw daemonError(answer['error']);
      if (answer['t'] !== 'ok' || typeof answer['range'] !== 'number') throw bulkheadError('ERR_BAD_FRAME', 'Unexpected handshake answer from the daemon.');
      range = answer['range'];
    } catch (err) {
      socket.destroy();
      throw err;
    }
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
        if (!this.ended) this.connection?.notifyInvalidated(lost.code === 'ERR_INVALIDATED' ? lost : bulkheadError('ERR_INVALIDATED', lost.message, { cause: lost.code }));
        this.rpc = undefined;
      },
    });
    // Our copy of the protocol goes along, so a daemon serving another compatible version can judge it.
    rpc.sendHello({ client: this.identity.name, document: this.protocol.document });
    this.rpc = rpc;
    await rpc.ready;
    return rpc;
  }
}

function daemonError(value: unknown): BulkheadError {
  const e = (typeof value === 'object' && value !== null ? value : {}) as { code?: unknown; message?: unknown; data?: unknown };
  const code: BulkheadErrorCode = isErrorCode(e.code) ? e.code : 'ERR_AUTH_FAILED';
  return new BulkheadError(code, typeof e.message === 'string' ? e.message : 'The daemon refused the connection.', typeof e.data === 'object' && e.data !== null ? e.data as Record<string, unknown> : {});
}
