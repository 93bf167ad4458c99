/**
 * The routes of one service: daemon clients and calling services, each with
 * an id range on the helper's channel. Answers from the helper go to the
 * route that owns their id; broadcasts go to every route.
 * @module
 */
import { bulkheadError, type BulkheadError } from '../errors.js';
import { ID_RANGE_SIZE, KIND, type Envelope } from '../wire/envelope.js';
import { keptBody } from '../wire/shared-read-buffers.js';
import type { HelperProcess } from './helper-process.js';
import type { RouteTarget } from './route.js';

/** Id ranges per helper channel: range 0 is the broker's own, the rest are for routed clients. */
const MAX_ROUTES = 2 ** 32 / ID_RANGE_SIZE;

/** Routes by id range. */
export class RouteTable {
  private readonly routes = new Map<number, RouteTarget>();

  constructor(private readonly service: string) {}

  /**
   * Adds a route; returns its id range.
   * @throws BulkheadError ERR_BACKPRESSURE when every range is taken
   */
  open(target: RouteTarget): number {
    for (let range = 1; range < MAX_ROUTES; range++) {
      if (this.routes.has(range)) continue;
      this.routes.set(range, target);
      return range;
    }
    throw bulkheadError('ERR_BACKPRESSURE', `${this.service} already has ${MAX_ROUTES - 1} routed clients; close some connections.`);
  }

  /**
   * Closes a route: its calls still in `helper` are cancelled and the peer
   * binding removed there.
   */
  close(range: number, pendingIds: Iterable<number>, helper: HelperProcess | undefined): void {
    if (!this.routes.delete(range)) return;
    if (helper === undefined || !helper.boundRoutes.has(range)) return;
    for (const id of pendingIds) helper.channel.send({ kind: 'cancel', id, reason: 'cancelled' });
    helper.channel.send({ kind: 'peer', range, peer: null });
    helper.boundRoutes.delete(range);
  }

  /**
   * Sends a route's call or cancel frame body to `helper` byte for byte,
   * binding the route's peer there first.
   * @throws BulkheadError ERR_BACKPRESSURE when more than `maxQueuedBytes` already wait for the helper to read them
   */
  send(range: number, body: Buffer, helper: HelperProcess, maxQueuedBytes: number): void {
    const target = this.routes.get(range);
    if (target === undefined) return;
    const waiting = helper.channel.writableLength;
    if (waiting > maxQueuedBytes) {
      throw bulkheadError('ERR_BACKPRESSURE', `${this.service}: ${waiting} bytes are already waiting for the service to read them (limit ${maxQueuedBytes}); it is slow or stuck. Retry later.`, { buffered: waiting, maxQueuedBytes });
    }
    if (!helper.boundRoutes.has(range)) {
      helper.channel.send({ kind: 'peer', range, peer: target.peer });
      helper.boundRoutes.add(range);
    }
    // Which calls this helper holds: if a restart retires it and it is killed before it answers, they still fail.
    const head = peekKindAndId(body);
    if (head?.kind === KIND.call) helper.routedCalls.add(head.id);
    else if (head?.kind === KIND.cancel) helper.routedCalls.delete(head.id);
    helper.channel.sendRaw(body);
  }

  /**
   * `helper` exited: each route hears which of its calls that helper held and
   * never answered (they fail with `error`). Calls still waiting for a launch
   * are not among them: their forward() settles them with the launch's outcome.
   * `everyRoute`: routes without such calls hear it too (the service's current
   * helper went; a retired one's exit concerns only the calls it still held).
   */
  interruptCallsOf(helper: HelperProcess, error: BulkheadError, everyRoute: boolean): void {
    const held = new Map<number, number[]>();
    for (const id of helper.routedCalls) {
      const range = Math.floor(id / ID_RANGE_SIZE);
      const ids = held.get(range);
      if (ids === undefined) held.set(range, [id]);
      else ids.push(id);
    }
    helper.routedCalls.clear();
    for (const [range, target] of [...this.routes]) {
      const ids = held.get(range);
      if (ids !== undefined || everyRoute) target.interrupted(error, ids ?? []);
    }
  }

  /** Removes a route; false when it was not open. */
  delete(range: number): boolean {
    return this.routes.delete(range);
  }

  /** The route of a range, if open. */
  get(range: number): RouteTarget | undefined {
    return this.routes.get(range);
  }

  /** True while a range is open. */
  has(range: number): boolean {
    return this.routes.has(range);
  }

  /** Calls of every route sent to the helper and not yet answered. */
  get pendingCount(): number {
    let n = 0;
    for (const route of this.routes.values()) n += route.pendingCount;
    return n;
  }

  /**
   * Sends a frame from the helper to the route that owns it.
   * @returns false when it is the broker's own (range 0, a broadcast, or another kind)
   */
  deliver(envelope: Envelope, body: Buffer): boolean {
    if (this.routes.size === 0) return false;
    let id: number;
    if (envelope.kind === 'reply' || envelope.kind === 'error' || envelope.kind === 'item' || envelope.kind === 'credit') id = envelope.id;
    else if (envelope.kind === 'event') {
      if (envelope.callId === 0) {
        // One copy for every route when the body lies in a shared read buffer (each sendRaw then keeps it as is).
        const kept = keptBody(body);
        for (const target of this.routes.values()) target.broadcast(kept);
        return false; // the broker's own connections hear broadcasts too
      }
      id = envelope.callId;
    } else return false;
    const range = Math.floor(id / ID_RANGE_SIZE);
    if (range === 0) return false;
    this.routes.get(range)?.deliver(envelope, body);
    return true;
  }

  /** The service can never be reached: every route hears it. `clear` also forgets them. */
  invalidateAll(error: BulkheadError, clear = false): void {
    for (const target of [...this.routes.values()]) target.invalidated(error);
    if (clear) this.routes.clear();
  }
}

/**
 * The kind and id of an envelope's frame body (`[kind, id, ...]`, a definite
 * CBOR array as docs/wire.md specifies), read without decoding the rest;
 * undefined for any other shape.
 */
function peekKindAndId(body: Buffer): { kind: number; id: number } | undefined {
  const head = body[0];
  let pos: number;
  if (head !== undefined && head >= 0x82 && head <= 0x97) pos = 1;
  else if (head === 0x98) pos = 2;
  else return undefined;
  const kind = body[pos];
  if (kind === undefined || kind > 0x17) return undefined;
  pos++;
  const first = body[pos];
  if (first === undefined) return undefined;
  if (first <= 0x17) return { kind, id: first };
  if (first === 0x18 && body.length >= pos + 2) return { kind, id: body.readUInt8(pos + 1) };
  if (first === 0x19 && body.length >= pos + 3) return { kind, id: body.readUInt16BE(pos + 1) };
  if (first === 0x1a && body.length >= pos + 5) return { kind, id: body.readUInt32BE(pos + 1) };
  return undefined;
}
