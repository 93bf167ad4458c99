/**
 * Compile-time tests of typed error data (ErrorDataMap): each code's `data` has its
 * fields typed once the code is known (by construction or by isBulkheadError(err, code)),
 * wrong data fails to compile, and unnamed keys still read as `unknown`. Every
 * `@ts-expect-error` must meet an error, so `npm run build` fails if the typing regresses.
 */
import t from 'tap';
import { BulkheadError, isBulkheadError, type ErrorData } from 'bulkhead';
import { bulkheadError } from '../lib/errors.js';

/** Exact type equality. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
function assertType<T extends true>(): T | undefined {
  return undefined;
}

t.test('data is typed per code', async (t) => {
  const tooLarge = bulkheadError('ERR_FRAME_TOO_LARGE', 'too large', { limit: 4096, size: 5000 });
  assertType<Equal<typeof tooLarge.data.limit, number | undefined>>();
  // @ts-expect-error limit is a number
  bulkheadError('ERR_FRAME_TOO_LARGE', 'too large', { limit: '4096' });
  // @ts-expect-error ERR_UNSAFE_PERMISSIONS always names the file and its mode
  bulkheadError('ERR_UNSAFE_PERMISSIONS', 'open to others', { file: '/k.pem' });
  const perms = bulkheadError('ERR_UNSAFE_PERMISSIONS', 'open to others', { file: '/k.pem', mode: 0o644 });
  assertType<Equal<typeof perms.data.mode, number>>();
  // @ts-expect-error ERR_INVALID_PARAMS's part is 'params'
  new BulkheadError('ERR_INVALID_PARAMS', 'bad', { part: 'result' });

  const caught: unknown = new BulkheadError('ERR_SERVICE_ERROR', 'handler threw', { remoteCode: 'E_MINE' });
  if (isBulkheadError(caught, 'ERR_SERVICE_ERROR')) {
    assertType<Equal<typeof caught.data.remoteCode, string | undefined>>();
    t.equal(caught.data.remoteCode, 'E_MINE');
  }
  if (isBulkheadError(caught)) {
    // Any code: a key no code names reads as unknown, as data from the wire may hold anything.
    assertType<Equal<typeof caught.data['whatever'], unknown>>();
  }
  assertType<Equal<ErrorData<'ERR_DEADLINE'>['timeoutMs'], number | undefined>>();
  t.equal(tooLarge.data.limit, 4096);
  t.equal(perms.toJSON().data?.['mode'], 0o644, 'data still serialises as plain data');
});
