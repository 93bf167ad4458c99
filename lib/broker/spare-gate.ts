/**
 * The rules a prewarmed spare lives by, as the broker enforces them on one
 * helper: until the broker's hello activates it, a spare may say its hello and
 * nothing else (anything else gets it refused). A spare can be activated early
 * (when the helper it stands in for lost its channel: the hello is then off the
 * relaunch's path) and serve later, once the supervisor made it the service's
 * helper; events it sends in between are held until then, so no client hears a
 * helper that is not yet the service's. A plain helper serves from the start.
 * Split from helper-process.ts: one small state machine of its own.
 * @module
 */
import type { Envelope } from '../wire/envelope.js';

/** Events a spare activated early may send before it serves; beyond that they are dropped. */
const MAX_HELD_EVENTS = 1024;

/** waiting: a spare before activation; early: activated, not yet the service's helper; serving. */
type SpareState = 'waiting' | 'early' | 'serving';

/** Where one helper stands with respect to the spare's rules. */
export class SpareGate {
  private state: SpareState;
  private readonly held: Array<() => void> = [];
  private refusedBecause: string | undefined;

  constructor(spare: boolean) {
    this.state = spare ? 'waiting' : 'serving';
  }

  /** True once the broker's hello was (or is being) sent: the helper may send anything. */
  get activated(): boolean {
    return this.state !== 'waiting';
  }

  /** False when a frame of this kind breaks the rules (a spare before activation sends only its hello). */
  admits(kind: Envelope['kind']): boolean {
    return this.state !== 'waiting' || kind === 'hello';
  }

  /** True once the helper is the service's: its events go to clients at once. */
  get serving(): boolean {
    return this.state === 'serving';
  }

  /** Runs `deliver` (an event for the service's clients) now, or once the helper serves. */
  deliver(deliver: () => void): void {
    if (this.state === 'serving') deliver();
    else if (this.held.length < MAX_HELD_EVENTS) this.held.push(deliver);
  }

  /** Why the spare was refused (it is being killed, never used), once it was. */
  get refused(): string | undefined {
    return this.refusedBecause;
  }

  /** Marks the spare refused for `why`; false when it already was. */
  refuse(why: string): boolean {
    if (this.refusedBecause !== undefined) return false;
    this.refusedBecause = why;
    return true;
  }

  /** Activates a waiting spare before it serves. True when the broker's hello must be sent now. */
  activateEarly(): boolean {
    if (this.state !== 'waiting') return false;
    this.state = 'early';
    return true;
  }

  /** The helper serves from now on; held events go out. True when the broker's hello must still be sent. */
  serve(): boolean {
    const helloDue = this.state === 'waiting';
    this.state = 'serving';
    for (const deliver of this.held.splice(0)) deliver();
    return helloDue;
  }
}
