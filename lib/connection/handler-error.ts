/**
 * How a handler's throw crosses the wire: always ERR_SERVICE_ERROR (a
 * service cannot forge the broker's codes), with its own code and data kept
 * as `remoteCode` / `remoteData`, made plain so the frame stays decodable.
 * Split from rpc-server.ts: a pure function, tested through it.
 * @module
 */
import type { SerializedError } from '../errors.js';
import { describeNonPlain } from '../wire/codec.js';

/** A handler's throw (or rejection) as the error envelope sent to its caller; the stack only when `exposeStacks`. */
export function serializeHandlerError(error: unknown, exposeStacks: boolean): SerializedError {
  const err = error instanceof Error ? error : new Error(String(error));
  const data: Record<string, unknown> = {};
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') data['remoteCode'] = code;
  const remoteData = (err as { data?: unknown }).data;
  if (remoteData !== undefined) {
    try {
      // A JSON round trip keeps only plain data, so the frame stays decodable.
      const plain = JSON.parse(JSON.stringify(remoteData)) as unknown;
      // Too deep (or otherwise unsendable) data would make the peer drop the whole connection.
      data['remoteData'] = describeNonPlain(plain) === undefined ? plain : '[unserializable]';
    } catch {
      data['remoteData'] = '[unserializable]';
    }
  }
  if (exposeStacks && err.stack !== undefined) data['stack'] = err.stack;
  return { code: 'ERR_SERVICE_ERROR', message: err.message, data };
}
