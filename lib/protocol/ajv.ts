/**
 * The ajv instances: JSON Schema draft 2020-12, strict mode, standard formats.
 * Validation stops at the first error (allErrors off) so a hostile payload
 * cannot make validation cost grow with its number of faults.
 *
 * ajv is loaded on first use, not at import: a helper that receives
 * precompiled validators from its broker never loads it at all (it is most
 * of a helper's start-up time).
 * @module
 */
import type { Ajv2020 } from 'ajv/dist/2020.js';
import { lazyRequire } from '../util/lazy-require.js';
import { addEndpointKeyword } from './endpoint-keyword.js';

// Made at first use (lib/util/lazy-require.ts): precompiled validators spare a helper ajv altogether.
const ownRequire = lazyRequire(import.meta.url);
const require = (id: string): unknown => ownRequire()(id);

/** The options every bulkhead ajv instance is built with. */
export const AJV_OPTIONS = { strict: true, allowUnionTypes: true, allErrors: false, coerceTypes: false, useDefaults: false, validateFormats: true } as const;

let shared: Ajv2020 | undefined;

/** Creates an ajv instance with bulkhead's options, formats and endpoint keyword (plus `extra` options). */
export function createAjv(extra: Record<string, unknown> = {}): Ajv2020 {
  const { Ajv2020: AjvClass } = require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js');
  // ajv-formats is CommonJS: its export is the function itself.
  const addFormats = require('ajv-formats') as (ajv: Ajv2020) => Ajv2020;
  const ajv = addFormats(new AjvClass({ ...AJV_OPTIONS, ...extra }));
  addEndpointKeyword(ajv); // endpoint-typed fields (x-bulkhead-endpoint)
  return ajv;
}

/** Returns the process-wide ajv instance, creating it on first use. */
export function sharedAjv(): Ajv2020 {
  shared ??= createAjv();
  return shared;
}
