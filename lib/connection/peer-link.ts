/**
 * A helper's direct channel to a service it `connects` to (docs/wire.md,
 * "Helper-to-helper hand-off"): on first use the helper asks the broker on its
 * hand-off pipe (`{ bulkhead: "open", req, service }`); the broker checks the
 * manifest's `connects`, launches the target if needed, makes a socketpair and
 * hands one end to each helper (`outbound` here, `channel` there, with this
 * service as the verified peer). Calls then go straight to the target, which
 * validates them as always. When the channel closes (the target exited, was
 * stopped or removed, or a reload withdrew the right) its calls in flight fail
 * with ERR_INTERRUPTED and the next call asks the broker again. A broker that
 * answers `routed` (the target cannot take channels) sends this target's
 * calls through the broker from then on.
 * @module
 */
import { Socket } from 'node:net';
import { BulkheadError, bulkheadError, isErrorCode, type BulkheadErrorCode } from '../errors.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import { FramedChannel } from '../wire/framed-channel.js';
import type { ServiceEndpoint } from './connection.js';
import { onPipeMessage, sendOnPipe } from './helper-pipe.js';
import { RpcClient } from './rpc-client.js';

type Answer = { kind: 'channel'; id: number; socket: Socket } | { kind: 'routed' } | { kind: 'refused'; error: BulkheadError };

const waiting = new Map<number, (answer: Answer) => void>();
/** Open direct channels by broker channel id, for the broker's `close`. */
const open = new Map<number, PeerLink>();
let nextRequest = 1;
let listening = false;

function listen(): void {
  if (listening) return;
  listening = true;
  onPipeMessage('outbound', (m, handle) => {
    const resolve = requestOf(m);
    const id = m['id'];
    if (resolve === undefined || !(handle instanceof Socket) || typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) return false;
    resolve({ kind: 'channel', id, socket: handle });
    return true;
  });
  onPipeMessage('routed', (m) => {
    requestOf(m)?.({ kind: 'routed' });
    return false;
  });
  onPipeMessage('refused', (m) => {
    requestOf(m)?.({ kind: 'refused', error: refusal(m['error']) });
    return false;
  });
  onPipeMessage('close', (m) => {
    const id = m['id'];
    if (typeof id === 'number') open.get(id)?.closeChannel(id);
    return false;
  });
}

function requestOf(m: Record<string, unknown>): ((answer: Answer) => void) | undefined {
  const req = m['req'];
  if (typeof req !== 'number') return undefined;
  const resolve = waiting.get(req);
  waiting.delete(req);
  return resolve;
}

/** The broker's refusal as a typed error (an unknown code reads as ERR_NOT_PERMITTED). */
function refusal(value: unknown): BulkheadError {
  const e = (typeof value === 'object' && value !== null ? value : {}) as { code?: unknown; message?: unknown; data?: unknown };
  const code: BulkheadErrorCode = isErrorCode(e.code) ? e.code : 'ERR_NOT_PERMITTED';
  const data = typeof e.data === 'object' && e.data !== null ? e.data as Record<string, unknown> : {};
  return new BulkheadError(code, typeof e.message === 'string' ? e.message : 'The broker refused the channel.', data);
}

/**
 * Asks the broker for a channel to `service` on the hand-off pipe (which must
 * be open): its id and this helper's end, or `routed`.
 * @throws BulkheadError the broker's refusal (ERR_NOT_PERMITTED, ERR_UNKNOWN_SERVICE, the target's launch failure...)
 */
export async function requestPeerChannel(service: string): Promise<{ id: number; socket: Socket } | 'routed'> {
  listen();
  const req = nextRequest++;
  const answer = await new Promise<Answer>((resolve) => {
    waiting.set(req, resolve);
    sendOnPipe({ bulkhead: 'open', req, service });
  });
  if (answer.kind === 'refused') throw answer.error;
  return answer.kind === 'routed' ? 'routed' : answer;
}

/** One target service: its direct channel (made on first use), or the routed client as the fallback. */
export class PeerLink implements Pick<ServiceEndpoint, 'current' | 'acquire'> {
  private rpc: RpcClient | undefined;
  private channelId: number | undefined;
  private opening: Promise<RpcClient> | undefined;
  private routedOnly = false;

  /**
   * @param routed - the broker-routed client for this target (fd 4), used when the broker says so
   */
  constructor(readonly service: string, readonly protocol: CompiledProtocol, private readonly routed: () => RpcClient) {
    listen();
  }

  /** `"direct"` while a direct channel is open, `"routed"` once the broker routes this target, else null. */
  get path(): 'direct' | 'routed' | null {
    if (this.routedOnly) return 'routed';
    return this.rpc?.usable === true ? 'direct' : null;
  }

  /** @inheritdoc */
  current(): RpcClient | undefined {
    if (this.routedOnly) return this.routed();
    return this.rpc?.usable === true ? this.rpc : undefined;
  }

  /** @inheritdoc */
  acquire(): Promise<RpcClient> {
    const rpc = this.current();
    if (rpc !== undefined) return Promise.resolve(rpc);
    this.opening ??= this.open().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  /** The broker ordered channel `id` closed: it fails like any closed channel. */
  closeChannel(id: number): void {
    if (this.channelId === id) this.rpc?.channel.destroy();
  }

  private async open(): Promise<RpcClient> {
    const answer = await requestPeerChannel(this.service);
    if (answer === 'routed') {
      this.routedOnly = true;
      return this.routed();
    }
    const { id, socket } = answer;
    // The helper's life is fd 3's business: an idle channel must not keep it running.
    socket.unref();
    const channel = new FramedChannel(socket);
    let retired = false;
    const rpc = new RpcClient(channel, this.protocol, {
      broadcast: () => {},
      eventError: () => {},
      activity: (busy) => {
        if (!busy && retired) channel.end('client closing');
      },
    }, { service: this.service });
    const forget = (): void => {
      if (this.rpc !== rpc) return;
      this.rpc = undefined;
      this.channelId = undefined;
    };
    channel.attach({
      envelope: (e, body) => {
        rpc.receive(e, body.length);
        if (e.kind === 'goodbye') {
          // The target is stopping: new calls ask the broker again; this channel closes once idle.
          retired = true;
          forget();
          if (!rpc.isBusy) channel.end('client closing');
        }
      },
      closed: (error) => {
        forget();
        open.delete(id);
        sendOnPipe({ bulkhead: 'closed', id });
        rpc.interrupt(bulkheadError('ERR_INTERRUPTED', `The direct channel to ${this.service} closed while the call was in flight (${error?.code ?? rpc.peerError?.code ?? 'the service went away or the broker withdrew the channel'}); the next call connects again.`, { service: this.service }));
      },
    });
    this.rpc = rpc;
    this.channelId = id;
    open.set(id, this);
    rpc.sendHello({ document: this.protocol.document });
    await rpc.ready;
    return rpc;
  }
}
