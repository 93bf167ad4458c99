/**
 * What a channel reports when decoding what its peer sent failed.
 * @module
 */
import { bulkheadError, isBulkheadError, type BulkheadError } from '../errors.js';

/**
 * Decoding throws only BulkheadErrors by contract; anything else is a decoder
 * bug, which must still close this one connection rather than escape from a
 * 'data' listener and crash the process.
 */
export function asFrameError(err: unknown): BulkheadError {
  if (isBulkheadError(err) && typeof (err as { toJSON?: unknown }).toJSON === 'function') return err;
  return bulkheadError('ERR_BAD_FRAME', `Frame could not be decoded: ${err instanceof Error ? err.message : 'unknown failure'}.`, {}, err);
}
