/**
 * The broker's direct helper-to-helper channels (`connects`): it answers a
 * helper's request for a channel (authorization checked once, here, against
 * the caller's manifest as registered now), keeps every channel it made, and
 * ends those a reload withdrew (the target left the caller's `connects`, or
 * the target was removed or registered anew). docs/wire.md, "Helper-to-helper
 * hand-off".
 * @module
 */
import { bulkheadError } from '../errors.js';
import type { HandoffPipe } from './handoff-pipe.js';
import { PeerChannel, type PeerHelper, type PeerHost } from './peer-channel.js';
import { notInConnects } from './route.js';

/** What peer links need from the broker. */
export interface PeerLinksContext {
  /** The registered service of that name. */
  lookup(service: string): PeerHost | undefined;
  /** The `connects` of a registered service's current manifest; undefined when it is not registered. */
  connectsOf(service: string): readonly string[] | undefined;
  /** A helper was refused a call to another service. */
  denied(caller: string, target: string): void;
  /** False: every request is answered `routed` (the broker's `directConnects` option). */
  readonly direct: boolean;
}

/** A helper asking for channels: who it is and the pipe to answer on. */
export interface PeerCaller {
  service: string;
  helper: PeerHelper;
  pipe: HandoffPipe;
}

/** Live channels one calling helper may hold (each costs the target a route and two descriptors). */
export const MAX_PEER_CHANNELS_PER_HELPER = 64;

/** Direct channels between helpers, for one broker. */
export class PeerLinks {
  private readonly channels = new Set<PeerChannel>();

  constructor(private readonly ctx: PeerLinksContext) {}

  /** Whether `service`'s helpers need a hand-off pipe: it calls out, or another registered service calls it. */
  wantsPipe(service: string, connects: readonly string[], registered: Iterable<string>): boolean {
    if (!this.ctx.direct) return false;
    if (connects.length > 0) return true;
    for (const name of registered) if (this.ctx.connectsOf(name)?.includes(service) === true) return true;
    return false;
  }

  /** Answers a helper's `open` request `req` for a channel to `target`. */
  open(caller: PeerCaller, req: number, target: string): void {
    if (!this.ctx.direct) return caller.pipe.routed(req, target);
    if (this.ctx.connectsOf(caller.service)?.includes(target) !== true) {
      this.ctx.denied(caller.service, target);
      return caller.pipe.refuse(req, target, notInConnects(caller.service, target));
    }
    let held = 0;
    for (const channel of this.channels) if (channel.caller.helper === caller.helper) held++;
    if (held >= MAX_PEER_CHANNELS_PER_HELPER) {
      return caller.pipe.refuse(req, target, bulkheadError('ERR_BACKPRESSURE', `Service ${caller.service} already holds ${held} direct channels; a helper needs one per service it calls.`, { limit: MAX_PEER_CHANNELS_PER_HELPER }));
    }
    const host = this.ctx.lookup(target);
    if (host === undefined) return caller.pipe.refuse(req, target, bulkheadError('ERR_UNKNOWN_SERVICE', `No service named "${target}" is registered.`, { service: target }));
    let channel: PeerChannel;
    try {
      channel = new PeerChannel(host, target, caller, (ended) => this.channels.delete(ended));
    } catch (err) {
      return caller.pipe.refuse(req, target, err as Parameters<HandoffPipe['refuse']>[2]);
    }
    this.channels.add(channel);
    void channel.open(req);
  }

  /**
   * After a reload: ends at once every channel whose caller may no longer call
   * its target, or whose target is now another registration (or none).
   */
  recheck(): void {
    for (const channel of [...this.channels]) {
      const allowed = this.ctx.connectsOf(channel.caller.service)?.includes(channel.target) === true;
      if (!allowed || this.ctx.lookup(channel.target) !== channel.host) channel.end();
    }
  }

  /** The targets `helper` has a live direct channel to. */
  targetsOf(helper: PeerHelper): string[] {
    const targets = new Set<string>();
    for (const channel of this.channels) if (channel.caller.helper === helper && channel.live) targets.add(channel.target);
    return [...targets];
  }
}
