/**
 * The JSON Schema keywords whose values are subschemas, by the shape of the
 * value: what a walk over every subschema of a schema visits (endpoint-keyword.ts
 * finds endpoint fields with it; `bulkhead types` rewrites schemas with it).
 *
 * `items` is in two lists: its 2020-12 form is one subschema (the items after
 * `prefixItems`, or all of them), its draft-04 form an array of them (a tuple).
 * A walker tells the two apart by the value's shape: an array goes with
 * {@link SUBSCHEMA_ARRAY_KEYWORDS}, an object with {@link SUBSCHEMA_KEYWORDS}.
 * @module
 */

/** Keywords whose value is one subschema. */
export const SUBSCHEMA_KEYWORDS: ReadonlySet<string> = new Set(['additionalProperties', 'unevaluatedProperties', 'items', 'contains', 'not', 'if', 'then', 'else', 'propertyNames', 'additionalItems', 'unevaluatedItems', 'contentSchema']);

/** Keywords whose value is an array of subschemas (`items` in its draft-04 tuple form). */
export const SUBSCHEMA_ARRAY_KEYWORDS: ReadonlySet<string> = new Set(['allOf', 'anyOf', 'oneOf', 'prefixItems', 'items']);

/** Keywords whose value maps names to subschemas. */
export const SUBSCHEMA_MAP_KEYWORDS: ReadonlySet<string> = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']);
