/**
 * Turns the first ajv error of a document check (protocol, manifest, profile,
 * config) into what a newcomer needs to fix it: the JSON pointer of the field
 * itself, the closest valid name for a typo ("did you mean `params`?"), the
 * valid choices when they are few, and an example of a valid value for format
 * errors. Also locates an unknown keyword inside a JSON Schema that ajv's
 * strict mode refused (`requried`, a nested `minimun`), which ajv reports
 * without any path.
 * @module
 */
import type { ErrorObject } from 'ajv';
import { choiceList, closestName, didYouMean } from '../util/suggest.js';
import { escapePointer, fieldPointer } from './ajv-pointer.js';

/** What {@link explainAjvError} found: where, and what to say. */
export interface Explanation {
  /** JSON pointer of the field to fix (`/` for the document). */
  pointer: string;
  /** Sentence fragment that follows the pointer: "is not a known property. Did you mean "params"?" */
  detail: string;
}

type SchemaNode = Record<string, unknown>;

/**
 * Explains one ajv error.
 * @param error - the first error of a failed validation
 * @param rootSchema - the schema that was compiled (to find allowed names and `examples`)
 * @param value - the value that was checked (to find near-miss keys next to a missing one)
 */
export function explainAjvError(error: ErrorObject | undefined, rootSchema: unknown, value: unknown): Explanation {
  if (error === undefined) return { pointer: '/', detail: 'is invalid' };
  const pointer = fieldPointer(error);
  const holder = schemaAt(rootSchema, error.schemaPath, 1);
  const params = error.params as Record<string, unknown>;
  const allowed = holder !== undefined && isNode(holder['properties']) ? Object.keys(holder['properties']).filter((k) => k !== '$schema') : [];
  // A bad property name: ajv reports the inner keyword (pattern) with `propertyName` set.
  const badName = (error as { propertyName?: unknown }).propertyName;
  if (typeof badName === 'string') {
    return { pointer: `${error.instancePath}/${escapePointer(badName)}`, detail: `is not a valid name here${describePattern(holder)}.` };
  }
  switch (error.keyword) {
    case 'additionalProperties': {
      const name = String(params['additionalProperty']);
      const hint = didYouMean(name, allowed);
      const list = hint === '' ? choiceList(allowed, 12) : undefined;
      return { pointer, detail: `is not a known property.${hint}${list !== undefined ? ` Known properties: ${list}.` : ''}` };
    }
    case 'required': {
      const missing = String(params['missingProperty']);
      const here = valueAt(value, error.instancePath);
      const strays = isNode(here) ? Object.keys(here).filter((k) => !allowed.includes(k)) : [];
      const near = closestName(missing, strays);
      return { pointer, detail: near === undefined ? 'is required but missing.' : `is required but missing; found "${near}" instead. Did you mean "${missing}"?` };
    }
    case 'enum': {
      const list = choiceList(params['allowedValues'] as unknown[], 12);
      const actual = valueAt(value, error.instancePath);
      const hint = typeof actual === 'string' ? didYouMean(actual, (params['allowedValues'] as unknown[]).filter((v): v is string => typeof v === 'string')) : '';
      return { pointer, detail: `must be one of ${list ?? 'the values the schema lists'}, got ${shortJson(actual)}.${hint}` };
    }
    default: {
      const example = exampleOf(holder);
      const actual = valueAt(value, error.instancePath);
      const got = error.keyword === 'type' || error.keyword === 'pattern' || error.keyword === 'format' ? `, got ${shortJson(actual)}` : '';
      return { pointer, detail: `${error.message ?? 'is invalid'}${got}${example !== undefined ? `; for example ${JSON.stringify(example)}` : ''}.` };
    }
  }
}

/** JSON Schema (2020-12) keywords ajv knows, for "did you mean" on a misspelt one. */
const SCHEMA_KEYWORDS = [
  'type', 'enum', 'const', 'properties', 'required', 'additionalProperties', 'patternProperties', 'propertyNames',
  'items', 'prefixItems', 'contains', 'minContains', 'maxContains', 'minItems', 'maxItems', 'uniqueItems',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'minLength', 'maxLength', 'pattern',
  'format', 'minProperties', 'maxProperties', 'dependentRequired', 'dependentSchemas', 'allOf', 'anyOf', 'oneOf', 'not',
  'if', 'then', 'else', 'unevaluatedProperties', 'unevaluatedItems', 'description', 'title', 'default', 'examples',
  'deprecated', 'readOnly', 'writeOnly', '$ref', '$defs', '$id', '$schema', '$comment', 'nullable', 'discriminator',
];

/**
 * Explains why a schema did not compile. For ajv's strict-mode "unknown
 * keyword" it finds where the keyword sits inside the schema.
 * @param schema - the schema that failed to compile
 * @param base - JSON pointer of that schema in its file (`/methods/list/params`)
 * @returns the pointer of the fault and a sentence to show
 */
export function explainSchemaCompileError(err: unknown, schema: unknown, base: string): Explanation {
  const message = err instanceof Error ? err.message : String(err);
  const unknown = /unknown keyword: "([^"]+)"/.exec(message);
  if (unknown !== null) {
    const keyword = unknown[1]!;
    const path = findKey(schema, keyword, '');
    const where = path === undefined ? base : `${base}${path}`;
    return { pointer: where, detail: `"${keyword}" is not a JSON Schema keyword (ajv runs in strict mode, so a typo is an error, not a silent no-op).${didYouMean(keyword, SCHEMA_KEYWORDS)}` };
  }
  return { pointer: base, detail: `does not compile: ${message}` };
}

/** Pointer (relative to `node`) of the first object key named `key`, depth first. */
function findKey(node: unknown, key: string, at: string): string | undefined {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const found = findKey(node[i], key, `${at}/${i}`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (!isNode(node)) return undefined;
  if (Object.hasOwn(node, key)) return `${at}/${escapePointer(key)}`;
  for (const [name, child] of Object.entries(node)) {
    const found = findKey(child, key, `${at}/${escapePointer(name)}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The schema object `drop` segments above the end of an ajv `schemaPath` (`#/properties/a/type`). */
function schemaAt(root: unknown, schemaPath: string, drop: number): SchemaNode | undefined {
  const parts = schemaPath.replace(/^#\/?/, '').split('/').filter((p) => p !== '').map(unescapePointer);
  let node: unknown = root;
  for (const part of parts.slice(0, parts.length - drop)) {
    if (!isNode(node) && !Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return isNode(node) ? node : undefined;
}

function valueAt(value: unknown, instancePath: string): unknown {
  let node = value;
  for (const part of instancePath.split('/').slice(1).map(unescapePointer)) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, part)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function exampleOf(node: SchemaNode | undefined): unknown {
  const examples = node?.['examples'];
  return Array.isArray(examples) && examples.length > 0 ? examples[0] : undefined;
}

function describePattern(node: SchemaNode | undefined): string {
  const pattern = node?.['pattern'];
  return typeof pattern === 'string' ? ` (names must match ${pattern})` : '';
}

function shortJson(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function isNode(value: unknown): value is SchemaNode {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}
