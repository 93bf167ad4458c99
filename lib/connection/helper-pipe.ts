/**
 * The helper's end of its hand-off pipe (docs/wire.md, "Hand-off"), opened
 * once per process and shared: the direct channels the helper serves
 * (direct-server.ts) and the ones it opens to services it `connects` to
 * (peer-link.ts) both arrive on it. Messages are dispatched by their
 * `bulkhead` field; a passed socket nobody claims is closed at once.
 *
 * The pipe is Node's own IPC channel (`child_process` framing, opened on the
 * fd the broker names), so a helper needs no FFI to receive descriptors.
 * @module
 */
import { Socket } from 'node:net';

/** Handles one kind of pipe message; returns true when it took the passed handle (if any). */
export type PipeHandler = (message: Record<string, unknown>, handle: unknown) => boolean;

const handlers = new Map<string, PipeHandler[]>();
let state: 'unopened' | 'open' | 'unavailable' = 'unopened';
/** The broker said calls are observed (`{"bulkhead":"observe"}`, sent once): kept, since it may come before anyone listens. */
let observed = false;

/** True once the broker said on the pipe that calls are observed, whether or not a handler was registered then. */
export function callsObserved(): boolean {
  return observed;
}

/**
 * Opens the hand-off pipe on `fd` (idempotent).
 * @returns false when this Node cannot open an IPC pipe there (then the broker routes instead)
 */
export function openHelperPipe(fd: number): boolean {
  if (state !== 'unopened') return state === 'open';
  // The same call Node makes at start-up for NODE_CHANNEL_FD; made here so no wrapper process
  // between the broker and this node (bubblewrap, the Landlock step) can take the pipe first.
  // node:child_process is loaded here, not imported: most helpers have no pipe, and its module costs ~0.5–0.9 ms of start-up.
  const forkChild = (process.getBuiltinModule('node:child_process') as unknown as { _forkChild?: (fd: number, mode: string) => void })._forkChild;
  if (!Number.isInteger(fd) || fd <= 2 || typeof forkChild !== 'function' || process.channel !== undefined) {
    state = 'unavailable';
    return false;
  }
  forkChild(fd, 'json');
  // One listener for every kind: each 'message' listener would take a reference on the channel again.
  process.on('message', dispatch);
  // The broker channel (fd 3) decides how long the helper lives, not this pipe.
  (process.channel as { unref?: () => void } | undefined)?.unref?.();
  state = 'open';
  return true;
}

/** Adds a handler for pipe messages whose `bulkhead` field is `kind`. */
export function onPipeMessage(kind: string, handler: PipeHandler): void {
  const list = handlers.get(kind);
  if (list === undefined) handlers.set(kind, [handler]);
  else list.push(handler);
}

/** Sends a report to the broker on the pipe; a lost report is harmless (the broker may be gone). */
export function sendOnPipe(message: Record<string, unknown>): void {
  try {
    process.send?.(message, undefined, {}, () => undefined); // a callback takes the error instead of an 'error' event
  } catch {
    // The pipe is closed.
  }
}

function dispatch(message: unknown, handle: unknown): void {
  let taken = false;
  if (typeof message === 'object' && message !== null) {
    const m = message as Record<string, unknown>;
    const kind = m['bulkhead'];
    if (kind === 'observe') observed = true;
    if (typeof kind === 'string') for (const handler of handlers.get(kind) ?? []) taken = handler(m, handle) || taken;
  }
  if (!taken && handle instanceof Socket) handle.destroy();
}
