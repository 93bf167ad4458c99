/**
 * Shared paths for the test suite. Tests are compiled to dist/test; fixtures
 * (plain JS helpers, protocols, profiles) stay in test/fixtures.
 */
import { fileURLToPath } from 'node:url';

/** Absolute path of test/fixtures (a broker root: protocols/, sandbox-profiles/, *.js helpers). */
export const FIXTURES = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));

/** Absolute path of the repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

import { isBulkheadError, type BulkheadError } from 'bulkhead';

/** Awaits a promise that must reject with a bulkhead error, and returns that error. */
export async function rejection(promise: Promise<unknown>): Promise<BulkheadError> {
  try {
    await promise;
  } catch (err) {
    if (isBulkheadError(err)) return err;
    throw err;
  }
  throw new Error('expected the promise to reject');
}
