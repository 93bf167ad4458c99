/**
 * The stream half of the RpcClient: items the service yields (validated on
 * receipt, refused without credit) and the caller's input items (pumped as
 * the service grants credit, then `end`). Split from rpc-client.ts so the
 * call table there stays about calls; these functions reach the client only
 * through the small {@link StreamPort} it hands them.
 * @module
 */
import { bulkheadError, type BulkheadError } from '../errors.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import { describeNonPlain } from '../wire/codec.js';
import type { FramedChannel } from '../wire/framed-channel.js';
import { isCoded, type PendingCall } from './pending-call.js';
import { refusalText } from './stream-flow.js';

/** What the stream functions may do to the client that owns the call. */
export interface StreamPort {
  readonly channel: FramedChannel;
  readonly protocol: CompiledProtocol;
  /** True while `call` is still the live call under its id. */
  isLive(call: PendingCall): boolean;
  /** Settles `call` with `error` and tells the service to cancel it. */
  cancel(call: PendingCall, error: BulkheadError): void;
}

/** One item the service yielded for `call` in a frame body of `bodyBytes`: validated, then queued for the caller. */
export function receiveStreamItem(port: StreamPort, call: PendingCall, value: unknown, bodyBytes: number): void {
  const { protocol } = port;
  const inbox = call.inbox;
  if (inbox === undefined) {
    port.cancel(call, bulkheadError('ERR_INVALID_RESULT', `${protocol.name}.${call.method} sent a stream item, but the method does not declare "yields".`, { part: 'yields', method: call.method }));
    return;
  }
  const index = inbox.received;
  const invalid = protocol.check('yields', call.method, value);
  if (invalid !== undefined) {
    const error = bulkheadError('ERR_INVALID_RESULT', invalid.message.replace('an item of', `item ${index} of`), { ...invalid.data, index });
    // The items before it were valid: the consumer gets them, then this error.
    inbox.finish(error);
    port.cancel(call, error);
    return;
  }
  const refused = inbox.push(value, bodyBytes);
  if (refused !== undefined) {
    port.channel.fail(bulkheadError('ERR_BAD_FRAME', `${protocol.name}.${call.method}: the service sent a stream item ${refusalText(refused)}; it ignores flow control (docs/wire.md, "Streams").`));
  }
}

/** Sends the caller's input items as credit allows, then `end`. */
export async function pumpStreamInput(port: StreamPort, call: PendingCall): Promise<void> {
  const { channel, protocol } = port;
  const gate = call.gate!;
  const id = call.id;
  const iterator = call.input![Symbol.asyncIterator]();
  let finished = false;
  let index = 0;
  try {
    for (;;) {
      if (!gate.canSend) await gate.ready();
      if (!port.isLive(call)) return;
      const next = await iterator.next();
      if (!port.isLive(call)) return;
      if (next.done === true) {
        finished = true;
        channel.send({ kind: 'end', id });
        return;
      }
      const problem = describeNonPlain(next.value);
      if (problem !== undefined) {
        port.cancel(call, bulkheadError('ERR_INVALID_PARAMS', `${protocol.name}.${call.method}: input item ${index} holds ${problem}; send JSON-like data or byte strings.`, { method: call.method, part: 'accepts', index }));
        return;
      }
      gate.sent(channel.sendSized({ kind: 'item', id, value: next.value }));
      index++;
    }
  } catch (err) {
    const error = isCoded(err) ? err : bulkheadError('ERR_CANCELLED', `${protocol.name}.${call.method}: the input iterable threw (${err instanceof Error ? err.message : String(err)}); the call was cancelled.`, { method: call.method, index }, err);
    port.cancel(call, error);
  } finally {
    if (!finished) void Promise.resolve(iterator.return?.()).catch(() => undefined);
  }
}
