/**
 * The precompiled validators module handed over by value: where a launch was
 * given none of the broker's caches of code (lib/sandbox/cache-trust.ts: on a
 * host where a helper could have planted code in them, or this helper can write
 * them), the broker puts the module's text, generated in its own process, in
 * the helper's environment instead of the file's path. The helper compiles those
 * bytes: nothing on disk is read, and no other process can change a process's
 * environment once it is exec'd, so there is no window between a check and the
 * load. Without it such a helper loads ajv and compiles its schemas itself
 * (measured: +75 ms of the helper's CPU to its first reply, Node 20 and 24;
 * by value, withholding the caches costs +6 to +9 ms: bench/README.md).
 * @module
 */
import { HELPER_ENV } from '../wire/helper-env.js';
import type { ValidatorCache } from './helper-environment.js';

/**
 * The largest module passed (bytes): Linux refuses one environment string over 128 KiB (MAX_ARG_STRLEN) at exec,
 * which would fail the launch; a larger module is not passed, and the helper compiles its schemas itself.
 */
export const MAX_VALIDATORS_SOURCE_BYTES = 120 * 1024;

/** When `plan` withholds the caches, puts the text of the launch's validators module in its env (see the module comment). */
export function passValidatorsByValue(plan: { env: Record<string, string>; withholdCaches?: boolean }, validators: ValidatorCache): void {
  if (plan.withholdCaches !== true) return;
  const source = validators.source();
  if (source !== undefined && source.length <= MAX_VALIDATORS_SOURCE_BYTES) plan.env[HELPER_ENV.validatorsSource] = source.toString('utf8');
}
