/**
 * A service's life-cycle states and the moves between them, as a small state
 * machine with compare-and-set transitions (grpc-js's `transitionToState`): a
 * move names the states it expects to leave, and does nothing when another
 * path already moved the service on. A move the table forbids is a bug and throws.
 * @module
 */

/** Life-cycle state of a service. */
export type ServiceState = 'idle' | 'launching' | 'running' | 'stopping' | 'throttled' | 'failed';

/** Moves the table allows, from each state. */
const ALLOWED: Record<ServiceState, readonly ServiceState[]> = {
  idle: ['launching', 'throttled', 'failed'],
  throttled: ['launching', 'idle', 'failed'],
  launching: ['running', 'idle', 'failed'],
  running: ['stopping', 'idle', 'failed'],
  stopping: ['idle', 'failed'],
  failed: ['idle'],
};

/** The state of one service. */
export class ServiceStateMachine {
  private state: ServiceState = 'idle';

  /**
   * @param service - for messages
   * @param changed - told of every move, after it happened
   */
  constructor(private readonly service: string, private readonly changed: (state: ServiceState, previous: ServiceState) => void) {}

  /** The current state. */
  get current(): ServiceState {
    return this.state;
  }

  /** True when the current state is one of `states`. */
  is(...states: ServiceState[]): boolean {
    return states.includes(this.state);
  }

  /**
   * Moves to `to` if the current state is one of `from` (compare-and-set).
   * @returns true when it moved (or already was `to`), false when the state was not one of `from`
   * @throws Error when the table forbids the move (a bulkhead bug, not a user error)
   */
  transition(from: readonly ServiceState[], to: ServiceState): boolean {
    const previous = this.state;
    if (previous === to) return true;
    if (!from.includes(previous)) return false;
    if (!ALLOWED[previous].includes(to)) throw new Error(`bulkhead internal error: ${this.service} cannot go from ${previous} to ${to}`);
    this.state = to;
    this.changed(to, previous);
    return true;
  }
}
