/**
 * Checks of an options object at an API boundary (piscina's style): JavaScript
 * callers may pass anything, so each check says which option is wrong and what
 * it should be, and an unknown key (usually a typo) is refused, not ignored.
 * @module
 */
import { bulkheadError } from '../errors.js';
import { didYouMean } from './suggest.js';

/**
 * The options object itself: `undefined` becomes `{}`; anything but a plain
 * object, or a key not in `known`, is refused with ERR_INVALID_OPTION naming it.
 * @param where - the call, for messages: `new Broker(options)`
 */
export function checkOptionsObject<T extends object>(options: T | undefined, known: readonly (keyof T & string)[], where: string): T {
  if (options === undefined) return {} as T;
  const value: unknown = options; // JS callers may pass anything
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bulkheadError('ERR_INVALID_OPTION', `${where}: options must be an object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}.`, { option: 'options' });
  }
  for (const key of Object.keys(options)) {
    if (!(known as readonly string[]).includes(key)) {
      throw bulkheadError('ERR_INVALID_OPTION', `${where}: unknown option "${key}".${didYouMean(key, known)} Known options: ${known.join(', ')}.`, { option: key });
    }
  }
  return options;
}

/** A string option that, when given, is not empty. */
export function checkStringOption(value: unknown, option: string, where: string, what = 'a non-empty string'): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw bulkheadError('ERR_INVALID_OPTION', `${where}: ${option} must be ${what}, got ${typeof value === 'string' ? '""' : typeof value}.`, { option });
  return value;
}

/** A function option, when given. */
export function checkFunctionOption<F>(value: F | undefined, option: string, where: string): F | undefined {
  if (value !== undefined && typeof value !== 'function') throw bulkheadError('ERR_INVALID_OPTION', `${where}: ${option} must be a function, got ${typeof value}.`, { option });
  return value;
}
