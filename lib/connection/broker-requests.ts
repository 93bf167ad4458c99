/**
 * A helper's requests to its broker itself, on its outbound channel (fd 4):
 * calls whose `meta.service` is the reserved BROKER_TARGET, with ids in a
 * range of their own ({@link BROKER_REQUEST_RANGE}) so their answers are not
 * taken for a target service's. Today the one request is `mintEndpoint`.
 * @module
 */
import { bulkheadError, type BulkheadError } from '../errors.js';
import { BROKER_TARGET } from '../protocol/endpoint-keyword.js';
import { ID_RANGE_SIZE, type Envelope } from '../wire/envelope.js';
import type { FramedChannel } from '../wire/framed-channel.js';
import { fromWireError } from './remote-error.js';

/** The id range of broker requests on the outbound channel (the last one; target services use 1, 2, ...). */
export const BROKER_REQUEST_RANGE = 2 ** 32 / ID_RANGE_SIZE - 1;

/** How long a broker request may take before it fails with ERR_DEADLINE, in ms. */
const REQUEST_TIMEOUT_MS = 10_000;

/** Request/reply bookkeeping for broker requests. */
export class BrokerRequests {
  private readonly pending = new Map<number, { resolve(result: unknown): void; reject(error: BulkheadError): void; timer: NodeJS.Timeout }>();
  private seq = 0;

  constructor(private readonly channel: FramedChannel) {}

  /** Sends one request; resolves with the broker's result, rejects with its coded error. */
  request(method: string, params: unknown): Promise<unknown> {
    if (!this.channel.open) return Promise.reject(bulkheadError('ERR_INTERRUPTED', 'The broker connection closed.'));
    this.seq = this.seq >= ID_RANGE_SIZE - 1 ? 1 : this.seq + 1;
    const id = BROKER_REQUEST_RANGE * ID_RANGE_SIZE + this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(bulkheadError('ERR_DEADLINE', `The broker did not answer ${method} within ${REQUEST_TIMEOUT_MS} ms.`, { method, timeoutMs: REQUEST_TIMEOUT_MS }));
      }, REQUEST_TIMEOUT_MS);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer });
      this.channel.send({ kind: 'call', id, method, params, meta: { service: BROKER_TARGET } });
    });
  }

  /** An answer from the broker (reply or error) in this range. */
  receive(envelope: Envelope): void {
    if (envelope.kind !== 'reply' && envelope.kind !== 'error') return;
    const waiter = this.pending.get(envelope.id);
    if (waiter === undefined) return;
    this.pending.delete(envelope.id);
    clearTimeout(waiter.timer);
    if (envelope.kind === 'reply') waiter.resolve(envelope.result);
    // The broker's own word: its codes are trusted as they are.
    else waiter.reject(fromWireError(envelope.error, BROKER_TARGET, true));
  }

  /** The channel closed: every request fails with `error`. */
  interrupt(error: BulkheadError): void {
    for (const waiter of this.pending.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.pending.clear();
  }
}
