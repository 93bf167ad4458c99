/**
 * One authenticated daemon client connected to one service. The daemon
 * answers the client's hello itself (the helper already greeted the broker),
 * checks each call's envelope (id inside the client's range, declared method,
 * bounded in flight) and forwards the frame to the helper unchanged; answers
 * come back the same way.
 * @module
 */
import { bulkheadError, isBulkheadError, type BulkheadError } from '../errors.js';
import type { ServiceSupervisor } from '../broker/service-supervisor.js';
import type { RouteTarget } from '../broker/route.js';
import { fromWireError, isServiceCode } from '../connection/remote-error.js';
import { judgePeerHello } from '../protocol/hello-compat.js';
import { ID_RANGE_SIZE, type Envelope, type PeerInfo } from '../wire/envelope.js';
import type { FramedChannel } from '../wire/framed-channel.js';
import { stalledReaderError } from '../wire/backlog-watch.js';
import { SessionFlow } from './session-flow.js';
import { forDaemonClient } from './client-facing-error.js';

/** How a session holds back its helper while its client reads slowly (see session-flow.ts). */
export interface SessionFlowLimits {
  /** Backlog in bytes above which the helper is held back. */
  highWaterBytes: number;
  /** How long the backlog may stay above it before the client is cut off. */
  stallMs: number;
}

/** Calls one client may have in flight through the daemon. */
export const MAX_ROUTED_IN_FLIGHT = 1024;

/** A client's routed connection to one service. */
export class RoutedSession implements RouteTarget {
  readonly range: number;
  private readonly inFlight = new Set<number>();
  private helloSeen = false;
  private closed = false;
  private readonly flow: SessionFlow;

  constructor(
    private readonly channel: FramedChannel,
    private readonly supervisor: ServiceSupervisor,
    readonly peer: PeerInfo,
    private readonly onClose: (error: BulkheadError | undefined) => void,
    limits: SessionFlowLimits,
  ) {
    this.range = supervisor.openRoute(this);
    this.flow = new SessionFlow({
      channel,
      source: () => supervisor.process?.channel.stream,
      ...limits,
      stalled: (waiting, stallMs) => channel.fail(stalledReaderError(waiting, stallMs, limits.highWaterBytes)),
    });
    channel.attach({ envelope: (e, body) => this.fromClient(e, body), closed: (error) => this.close(error) });
  }

  /** @inheritdoc */
  deliver(envelope: Envelope, body: Buffer): void {
    if (envelope.kind === 'reply' || envelope.kind === 'error') {
      // An answer to a call the client already gave up on is dropped here, not sent.
      if (!this.inFlight.delete(envelope.id)) return;
    }
    if (envelope.kind === 'error' && !isServiceCode(envelope.error.code)) {
      // The client trusts codes from the daemon; a helper must not borrow broker codes.
      const relabelled = fromWireError(envelope.error, this.supervisor.service);
      try {
        this.channel.send({ kind: 'error', id: envelope.id, error: relabelled.toJSON() });
      } catch (err) {
        if (!isBulkheadError(err)) throw err;
        // Re-encoded, the helper's error outgrew the frame limit: pass on its code and the reason, not its data.
        this.channel.send({ kind: 'error', id: envelope.id, error: bulkheadError(relabelled.code, `${this.supervisor.service}'s error was too large to pass on (${err.message})`).toJSON() });
      }
      return;
    }
    this.channel.sendRaw(body);
  }

  /** @inheritdoc */
  get pendingCount(): number {
    return this.inFlight.size;
  }

  /** @inheritdoc */
  broadcast(body: Buffer): void {
    this.channel.sendRaw(body);
  }

  /** @inheritdoc */
  interrupted(error: BulkheadError, ids: readonly number[]): void {
    this.answer(error, ids);
  }

  /** Fails those of `ids` still in flight with `error`. */
  private answer(error: BulkheadError, ids: Iterable<number>): void {
    const wire = forDaemonClient(error, this.supervisor.service).toJSON();
    for (const id of [...ids]) {
      if (!this.inFlight.delete(id)) continue;
      this.channel.send({ kind: 'error', id, error: wire });
    }
  }

  /** @inheritdoc */
  invalidated(error: BulkheadError): void {
    // The service can never be reached again: calls waiting for a helper get this reason too.
    this.answer(error, this.inFlight);
    this.channel.fail(forDaemonClient(error, this.supervisor.service));
    this.close();
  }

  /** Ends the session; the helper cancels what it was doing for this client. `error` says why, if not a clean end. */
  close(error?: BulkheadError): void {
    if (this.closed) return;
    this.closed = true;
    this.flow.dispose();
    this.supervisor.closeRoute(this.range, this.inFlight);
    this.inFlight.clear();
    this.channel.destroy();
    this.onClose(error);
  }

  private fromClient(envelope: Envelope, body: Buffer): void {
    switch (envelope.kind) {
      case 'hello': {
        const p = this.supervisor.protocol;
        // The client may hold an older (or newer) copy of the protocol: compatible differences are fine.
        const verdict = judgePeerHello(p, 'service', envelope, `The daemon's ${this.supervisor.service} serves that protocol; evolve it compatibly (docs/protocols.md, "Versioning") or use the daemon's protocols/ file.`);
        if (!verdict.ok) {
          this.channel.fail(verdict.error);
          this.close();
          return;
        }
        this.helloSeen = true;
        // A client on another version judges compatibility too: it needs our document.
        const info = { service: this.supervisor.service, range: this.range, ...(verdict.evolved ? { document: p.document } : {}) };
        this.channel.send({ kind: 'hello', role: 'service', protocol: p.name, version: p.version, schemaHash: p.hash, info });
        return;
      }
      case 'call': {
        if (!this.helloSeen) return this.violation('a call arrived before hello');
        const { id, method } = envelope;
        if (Math.floor(id / ID_RANGE_SIZE) !== this.range) return this.violation(`call id ${id} is outside this client's range ${this.range}`);
        if (this.inFlight.has(id)) return this.violation(`call id ${id} is already in flight`);
        if (!this.supervisor.protocol.hasMethod(method)) {
          this.channel.send({ kind: 'error', id, error: bulkheadError('ERR_UNKNOWN_METHOD', `${this.supervisor.protocol.name} has no method "${method}".`, { method }).toJSON() });
          return;
        }
        if (this.inFlight.size >= MAX_ROUTED_IN_FLIGHT) {
          this.channel.send({ kind: 'error', id, error: bulkheadError('ERR_BACKPRESSURE', `More than ${MAX_ROUTED_IN_FLIGHT} calls in flight through the daemon; await earlier calls.`, { limit: MAX_ROUTED_IN_FLIGHT }).toJSON() });
          return;
        }
        this.inFlight.add(id);
        this.supervisor.forward(this.range, body, { id, method }).catch((err: unknown) => {
          if (!this.inFlight.delete(id)) return;
          const error = isBulkheadError(err) ? forDaemonClient(err, this.supervisor.service) : bulkheadError('ERR_LAUNCH_FAILED', `${this.supervisor.service} could not take the call because of a fault on the daemon's side; its administrator finds the cause in \`bulkhead logs\`.`);
          this.channel.send({ kind: 'error', id, error: error.toJSON() });
        });
        return;
      }
      case 'cancel':
        if (this.inFlight.delete(envelope.id)) this.supervisor.forward(this.range, body).catch(() => undefined);
        return;
      case 'item':
      case 'credit':
      case 'end':
        // Stream traffic of a call in flight passes untouched; the helper enforces the credit.
        if (!this.helloSeen) return this.violation(`a ${envelope.kind} arrived before hello`);
        if (this.inFlight.has(envelope.id)) this.supervisor.forward(this.range, body).catch(() => undefined);
        return;
      case 'goodbye':
        this.close();
        return;
      default:
        this.violation(`a client sent a "${envelope.kind}" message`);
    }
  }

  private violation(what: string): void {
    this.channel.fail(bulkheadError('ERR_BAD_FRAME', `Protocol violation: ${what}.`));
    this.close();
  }
}
