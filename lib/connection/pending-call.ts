/**
 * One call as the RpcClient tracks it, from queued to settled, and the small
 * pure helpers around it: making one, disarming its deadline and signal,
 * ending a stream call's items when it settles, and the error an aborted
 * signal stands for. No channel, no table: rpc-client.ts owns those.
 * @module
 */
import { bulkheadError, type BulkheadError } from '../errors.js';
import type { CallMeta } from '../wire/envelope.js';
import type { CallOwner, RpcCallOptions } from './rpc-client-options.js';
import type { CreditGate, ItemInbox } from './stream-flow.js';

/** A call from the moment it is made until it settles. */
export interface PendingCall {
  id: number;
  method: string;
  params: unknown;
  meta: CallMeta | undefined;
  /** The params hold no large byte string (see RpcCallOptions.noLargeBytes). */
  noLargeBytes: boolean;
  resolve: (value: unknown) => void;
  reject: (error: BulkheadError) => void;
  owner: CallOwner | undefined;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** False while waiting in the queue. */
  sent: boolean;
  /** Items the service yields (a `yields` method). */
  inbox: ItemInbox | undefined;
  /** Credit for the caller's input items (an `accepts` method). */
  gate: CreditGate | undefined;
  /** The caller's input items, pumped once the call is sent. */
  input: AsyncIterable<unknown> | undefined;
}

/** A call not yet queued or sent (id 0 until it goes out). */
export function newPendingCall(
  method: string,
  params: unknown,
  options: RpcCallOptions,
  resolve: (value: unknown) => void,
  reject: (error: BulkheadError) => void,
): PendingCall {
  return {
    id: 0, method, params, meta: options.meta, noLargeBytes: options.noLargeBytes === true, resolve, reject,
    owner: options.owner, timer: undefined, signal: options.signal, onAbort: undefined, sent: false,
    inbox: undefined, gate: undefined, input: undefined,
  };
}

/** Clears the call's deadline timer and removes its abort listener. */
export function disarm(call: PendingCall): void {
  if (call.timer !== undefined) clearTimeout(call.timer);
  if (call.onAbort !== undefined) call.signal!.removeEventListener('abort', call.onAbort);
  call.timer = undefined;
  call.onAbort = undefined;
}

/**
 * Wraps a stream call's resolve/reject so that settling also ends its items:
 * the iterator finishes after the queued items (or throws the error), and the
 * input pump stops.
 */
export function endStreamOnSettle(call: PendingCall): PendingCall {
  const { resolve, reject } = call;
  return {
    ...call,
    resolve: (value) => {
      call.inbox?.finish();
      call.gate?.close();
      resolve(value ?? null);
    },
    reject: (error) => {
      call.inbox?.finish(error);
      call.gate?.close();
      reject(error);
    },
  };
}

/** True for a BulkheadError (brand-checked by name and code, as errors cross processes). */
export function isCoded(err: unknown): err is BulkheadError {
  return typeof err === 'object' && err !== null && (err as Error).name === 'BulkheadError' && typeof (err as { code?: unknown }).code === 'string';
}

/** An iterable (sync or async) as an async iterable. */
export function toAsyncIterable(input: AsyncIterable<unknown> | Iterable<unknown>): AsyncIterable<unknown> {
  if (typeof (input as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') return input as AsyncIterable<unknown>;
  if (typeof (input as Iterable<unknown>)[Symbol.iterator] === 'function') {
    const iterable = input as Iterable<unknown>;
    return {
      [Symbol.asyncIterator]: () => {
        const iterator = iterable[Symbol.iterator]();
        return {
          next: () => Promise.resolve(iterator.next()),
          return: () => Promise.resolve(iterator.return?.() ?? { value: undefined, done: true }),
        };
      },
    };
  }
  throw bulkheadError('ERR_INVALID_OPTION', 'options.input must be an iterable or async iterable of items.', { option: 'input' });
}

/** The error for an aborted signal: its reason when that is already a BulkheadError, else ERR_CANCELLED. */
export function abortError(signal: AbortSignal, method: string, service: string): BulkheadError {
  const reason: unknown = signal.reason;
  if (typeof reason === 'object' && reason !== null && typeof (reason as { code?: unknown }).code === 'string' && (reason as Error).name === 'BulkheadError') {
    return reason as BulkheadError;
  }
  return bulkheadError('ERR_CANCELLED', `${service}.${method} was cancelled by the caller's AbortSignal.`, { method });
}
