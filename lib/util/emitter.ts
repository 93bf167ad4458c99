/**
 * The one event style of bulkhead: typed listeners, and `on()` returns a
 * {@link Disposable} that removes the listener (usable with `using`).
 * A throwing listener never breaks the emitter or other listeners.
 * @module
 */

/** Something that can be undone once; `dispose()` is idempotent. */
export interface Disposable {
  dispose(): void;
  [Symbol.dispose](): void;
}

/** Wraps a function as a {@link Disposable}. */
export function disposable(fn: () => void): Disposable {
  let done = false;
  const dispose = () => {
    if (done) return;
    done = true;
    fn();
  };
  return { dispose, [Symbol.dispose]: dispose };
}

/**
 * Event name → listener argument tuple. Written as a mapped constraint (not an
 * index signature) so an interface of known names satisfies it and an unknown
 * name does not compile.
 */
export type EventMap<E> = { [K in keyof E]: unknown[] };

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- one store for listeners of every event: `(name: string) => void` is not assignable to `(...args: unknown[]) => void`
type AnyListener = (...args: any[]) => void;

/** Minimal typed event emitter. */
export class Emitter<E extends EventMap<E>> {
  /** Listener lists are replaced, never changed in place: emit() iterates the list it found without copying it. */
  private listeners = new Map<keyof E, ReadonlyArray<AnyListener>>();

  /** Adds a listener; dispose the result to remove it. */
  on<K extends keyof E>(event: K, listener: (...args: E[K]) => void): Disposable {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener as AnyListener]);
    return disposable(() => {
      const current = this.listeners.get(event);
      if (current === undefined) return;
      const index = current.indexOf(listener as AnyListener);
      if (index >= 0) this.listeners.set(event, current.filter((_, i) => i !== index));
    });
  }

  /** Adds a listener that runs at most once. */
  once<K extends keyof E>(event: K, listener: (...args: E[K]) => void): Disposable {
    const sub = this.on(event, (...args) => {
      sub.dispose();
      listener(...args);
    });
    return sub;
  }

  /** Number of listeners for an event. */
  listenerCount(event: keyof E): number {
    return this.listeners.get(event)?.length ?? 0;
  }

  /** Calls every listener of `event`; returns whether there was any. */
  protected emit<K extends keyof E>(event: K, ...args: E[K]): boolean {
    const list = this.listeners.get(event);
    if (list === undefined || list.length === 0) return false;
    // A listener added or removed meanwhile replaces the list: this one stays as it was.
    for (const listener of list) {
      try {
        listener(...(args as unknown[]));
      } catch (err) {
        // A listener's bug must not break delivery to others or the caller.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    return true;
  }

  /** Removes every listener. */
  protected removeAllListeners(): void {
    this.listeners.clear();
  }
}
