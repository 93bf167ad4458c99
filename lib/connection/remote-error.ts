/**
 * Turns an error envelope's body back into a {@link BulkheadError}. Only the
 * codes a service may legitimately send keep their code; anything else a
 * service sends (including a handler's own codes) becomes `ERR_SERVICE_ERROR`
 * with the original code in `data.remoteCode`, so a helper cannot make a
 * caller believe, say, that its call was interrupted by the broker.
 * @module
 */
import { BulkheadError, isErrorCode, type BulkheadErrorCode, type SerializedError } from '../errors.js';

/** Codes a service-side runtime sends on its own behalf. */
const SERVICE_CODES: ReadonlySet<string> = new Set<BulkheadErrorCode>([
  'ERR_UNKNOWN_METHOD',
  'ERR_INVALID_PARAMS',
  'ERR_SERVICE_ERROR',
  'ERR_CANCELLED',
  'ERR_DEADLINE',
  'ERR_NOT_PERMITTED',
  'ERR_PROTOCOL_MISMATCH',
  'ERR_FRAME_TOO_LARGE',
  'ERR_BAD_FRAME',
  // The helper's call gate (call-gate.ts) and a direct channel's own bound refuse with it.
  'ERR_BACKPRESSURE',
]);

/** True when a service may send this code on its own behalf. */
export function isServiceCode(code: string): boolean {
  return SERVICE_CODES.has(code);
}

/**
 * Rebuilds a wire error as a BulkheadError.
 * @param trusted - the sender is a broker (daemon), which may send any known code
 */
export function fromWireError(error: SerializedError, service: string, trusted = false): BulkheadError {
  const data = error.data ?? {};
  if (SERVICE_CODES.has(error.code) || (trusted && isErrorCode(error.code))) {
    return new BulkheadError(error.code as BulkheadErrorCode, error.message, { ...data, service });
  }
  return new BulkheadError('ERR_SERVICE_ERROR', error.message, { ...data, remoteCode: error.code, service });
}
