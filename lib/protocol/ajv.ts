/**
 * The one ajv instance per process: JSON Schema draft 2020-12, strict mode,
 * standard formats. Validation stops at the first error (allErrors off) so a
 * hostile payload cannot make validation cost grow with its number of faults.
 * @module
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

let shared: Ajv2020 | undefined;

/** Returns the process-wide ajv instance, creating it on first use. */
export function sharedAjv(): Ajv2020 {
  shared ??= addFormats(new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: false, coerceTypes: false, useDefaults: false, validateFormats: true }));
  return shared;
}
