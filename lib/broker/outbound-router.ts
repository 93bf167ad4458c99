/**
 * A helper calling other services (its manifest's `connects`) through the
 * broker: the fallback where no direct channel can be handed over (see
 * peer-links.ts; the caller or the target takes no channels, or the broker
 * runs with `directConnects: false`). Calls arrive on
 * the helper's outbound channel (fd 4) naming their target in `meta.service`.
 * The broker checks the target is allowed, then routes the call like a daemon
 * client's, on a route of its own (so the target's handler sees the calling
 * service as `ctx.peer`). Ids are rewritten into that route's range, so these
 * envelopes are re-encoded — unlike daemon-client frames, which pass untouched.
 * @module
 */
import { bulkheadError, type BulkheadError } from '../errors.js';
import { checkItem } from '../wire/codec.js';
import { encodeEnvelope, ID_RANGE_SIZE, type CallEnvelope, type Envelope, type PeerInfo } from '../wire/envelope.js';
import { FRAME_HEADER_BYTES } from '../wire/frame-decoder.js';
import type { FramedChannel } from '../wire/framed-channel.js';
import { BROKER_TARGET } from '../protocol/endpoint-keyword.js';
import { EndpointGrants } from './endpoint-grants.js';
import { notInConnects, type RoutableService, type RouteTarget } from './route.js';

/** Who is calling out. */
export interface OutboundCaller {
  service: string;
  pid: number | undefined;
  connects: readonly string[];
}

/** What the router needs from the broker. */
export interface OutboundContext {
  lookup(service: string): RoutableService | undefined;
  denied(caller: string, target: string): void;
  /** A route to `target` was opened (status shows the path). Optional. */
  routing?(target: string): void;
  /** A request to the broker itself (`meta.service` = BROKER_TARGET, broker-endpoints.ts); throws a BulkheadError to refuse. */
  brokerRequest?(caller: string, connects: readonly string[], method: string, params: unknown, grants: EndpointGrants): unknown;
}

/** One target service's route for this caller. */
class OutboundRoute implements RouteTarget {
  readonly range: number;
  /** Route id → the caller's own id. */
  readonly toCaller = new Map<number, number>();
  /** The caller's id → route id. */
  readonly toRoute = new Map<number, number>();
  private seq = 0;

  constructor(readonly supervisor: RoutableService, readonly peer: PeerInfo, private readonly channel: FramedChannel) {
    this.range = supervisor.openRoute(this);
  }

  /** A route id for the caller's id. */
  map(callerId: number): number {
    let routeId: number;
    do {
      this.seq = this.seq >= ID_RANGE_SIZE - 1 ? 1 : this.seq + 1;
      routeId = this.range * ID_RANGE_SIZE + this.seq;
    } while (this.toCaller.has(routeId));
    this.toCaller.set(routeId, callerId);
    this.toRoute.set(callerId, routeId);
    return routeId;
  }

  forget(routeId: number): number | undefined {
    const callerId = this.toCaller.get(routeId);
    if (callerId === undefined) return undefined;
    this.toCaller.delete(routeId);
    this.toRoute.delete(callerId);
    return callerId;
  }

  deliver(envelope: Envelope): void {
    if (envelope.kind === 'reply' || envelope.kind === 'error') {
      const callerId = this.forget(envelope.id);
      if (callerId !== undefined) this.sendToCaller({ ...envelope, id: callerId }, callerId);
    } else if (envelope.kind === 'item' || envelope.kind === 'credit') {
      const callerId = this.toCaller.get(envelope.id);
      if (callerId !== undefined) this.sendToCaller({ ...envelope, id: callerId }, callerId);
    } else if (envelope.kind === 'event') {
      const callerId = this.toCaller.get(envelope.callId);
      if (callerId !== undefined && !this.sendToCaller({ ...envelope, callId: callerId }, callerId)) this.forget(envelope.callId);
    }
  }

  /**
   * Re-encoded with the caller's id, an answer can outgrow the frame limit (the
   * callee chose a compact encoding): then that call alone fails, with the reason.
   */
  private sendToCaller(envelope: Envelope, callerId: number): boolean {
    const refuse = (error: BulkheadError): false => {
      this.channel.send({ kind: 'error', id: callerId, error: error.toJSON() });
      return false;
    };
    const frame = encodeEnvelope(envelope);
    const frameBody = frame.subarray(FRAME_HEADER_BYTES);
    if (frameBody.length > this.channel.maxFrameBytes) {
      return refuse(bulkheadError('ERR_FRAME_TOO_LARGE', `${this.supervisor.service}'s answer cannot be passed on: re-encoded it is ${frameBody.length} bytes; the frame limit is ${this.channel.maxFrameBytes}.`, { declared: frameBody.length, limit: this.channel.maxFrameBytes }));
    }
    // Shortest-form re-encoding can shrink a body below what its object count needs (docs/wire.md).
    const problem = checkItem(frameBody);
    if (problem !== undefined) {
      return refuse(bulkheadError('ERR_INVALID_RESULT', `${this.supervisor.service}'s answer cannot be passed on: re-encoded it breaks the wire's rules (${problem}).`, { service: this.supervisor.service }));
    }
    this.channel.sendFrame(frame);
    return true;
  }

  get pendingCount(): number {
    return this.toCaller.size;
  }

  broadcast(): void {
    // Broadcast events are for the service's clients, not for services calling it.
  }

  interrupted(error: BulkheadError, ids: readonly number[]): void {
    for (const routeId of ids) {
      const callerId = this.forget(routeId);
      if (callerId !== undefined) this.channel.send({ kind: 'error', id: callerId, error: error.toJSON() });
    }
  }

  invalidated(error: BulkheadError): void {
    // The service can never be reached again: calls waiting for a launch hear it too.
    for (const callerId of this.toCaller.values()) this.channel.send({ kind: 'error', id: callerId, error: error.toJSON() });
    this.toCaller.clear();
    this.toRoute.clear();
  }

  close(): void {
    this.supervisor.closeRoute(this.range, this.toCaller.keys());
  }
}

/** Routes one helper's outbound calls. */
export class OutboundRouter {
  private readonly routes = new Map<string, OutboundRoute>();
  /** Services reachable through endpoints this helper opened (beyond its connects). */
  private readonly grants = new EndpointGrants((service, error) => this.revoke(service, error));

  constructor(private readonly channel: FramedChannel, private readonly caller: OutboundCaller, private readonly ctx: OutboundContext) {
    channel.attach({ envelope: (e) => this.receive(e), closed: () => this.close() });
  }

  /** Closes every route (the calling helper is gone). */
  close(): void {
    for (const route of this.routes.values()) route.close();
    this.routes.clear();
    this.grants.close();
  }

  /** An endpoint grant died: calls in flight to a service outside connects fail with its error. */
  private revoke(service: string, error: BulkheadError): void {
    if (this.caller.connects.includes(service)) return;
    const route = this.routes.get(service);
    if (route === undefined) return;
    this.routes.delete(service);
    route.close(); // cancels the calls in the target helper first
    route.invalidated(error);
  }

  private receive(envelope: Envelope): void {
    if (envelope.kind === 'call') this.call(envelope);
    else if (envelope.kind === 'item' || envelope.kind === 'credit' || envelope.kind === 'end') {
      // Stream traffic of a call in flight: into the call's route, with the route's id.
      for (const route of this.routes.values()) {
        const routeId = route.toRoute.get(envelope.id);
        if (routeId !== undefined) route.supervisor.forward(route.range, body({ ...envelope, id: routeId })).catch(() => undefined);
      }
    } else if (envelope.kind === 'cancel') {
      for (const route of this.routes.values()) {
        const routeId = route.toRoute.get(envelope.id);
        if (routeId === undefined) continue;
        route.forget(routeId);
        route.supervisor.forward(route.range, body({ kind: 'cancel', id: routeId, reason: envelope.reason })).catch(() => undefined);
      }
    }
    // Anything else from a helper's outbound side is ignored: it has no other use.
  }

  private call(envelope: CallEnvelope): void {
    const target = envelope.meta?.service;
    const fail = (error: BulkheadError): void => {
      this.channel.send({ kind: 'error', id: envelope.id, error: error.toJSON() });
    };
    if (target === undefined) return fail(bulkheadError('ERR_BAD_FRAME', 'An outbound call must name its target service in meta.service.'));
    if (target === BROKER_TARGET && this.ctx.brokerRequest !== undefined) {
      try {
        this.channel.send({ kind: 'reply', id: envelope.id, result: this.ctx.brokerRequest(this.caller.service, this.caller.connects, envelope.method, envelope.params, this.grants) });
      } catch (err) {
        fail(err as BulkheadError);
      }
      return;
    }
    if (!this.caller.connects.includes(target) && !this.grants.allows(target)) {
      const dead = this.grants.refusal(target);
      if (dead !== undefined) return fail(dead);
      this.ctx.denied(this.caller.service, target);
      return fail(notInConnects(this.caller.service, target));
    }
    let route = this.routes.get(target);
    const current = this.ctx.lookup(target);
    if (route !== undefined && route.supervisor !== current) {
      // The target was unregistered or registered anew (a daemon reload): its old route is dead.
      this.routes.delete(target);
      route = undefined;
    }
    if (route === undefined) {
      const supervisor = current;
      if (supervisor === undefined) return fail(bulkheadError('ERR_UNKNOWN_SERVICE', `No service named "${target}" is registered.`, { service: target }));
      try {
        route = new OutboundRoute(supervisor, { name: this.caller.service, ...(this.caller.pid === undefined ? {} : { pid: this.caller.pid }) }, this.channel);
      } catch (err) {
        return fail(err as BulkheadError);
      }
      this.routes.set(target, route);
      this.ctx.routing?.(target);
    }
    const routeId = route.map(envelope.id);
    // The deadline and the trace travel on to the target; the routing field stays here.
    const meta = envelope.meta?.timeoutMs === undefined && envelope.meta?.traceparent === undefined ? null : {
      ...(envelope.meta.timeoutMs === undefined ? {} : { timeoutMs: envelope.meta.timeoutMs }),
      ...(envelope.meta.traceparent === undefined ? {} : { traceparent: envelope.meta.traceparent }),
    };
    const chosen = route;
    chosen.supervisor.forward(chosen.range, body({ kind: 'call', id: routeId, method: envelope.method, params: envelope.params, meta }), { id: routeId, method: envelope.method }).catch((err: unknown) => {
      if (chosen.forget(routeId) !== undefined) fail(err as BulkheadError);
    });
  }
}

/** Encodes an envelope as a frame body (no length prefix), for forward(). */
function body(envelope: Envelope): Buffer {
  return encodeEnvelope(envelope).subarray(FRAME_HEADER_BYTES);
}
