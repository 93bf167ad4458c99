/**
 * What a protocol file (`protocols/<name>.json`) must look like, and the
 * check that turns a parsed file into a {@link ProtocolDocument} or an
 * `ERR_INVALID_PROTOCOL` naming the JSON pointer at fault.
 * @module
 */
import { bulkheadError } from '../errors.js';
import { sharedAjv } from './ajv.js';
import { explainAjvError } from './explain.js';
import { checkEndpointDeclarations } from './endpoint-keyword.js';

/** Names of protocols, services and methods: no path separators, no dot-dot tricks. */
export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$';

/**
 * One method: JSON Schemas for its params and result, and for a stream
 * method the items it `yields` (service → caller) and/or `accepts`
 * (caller → service). `result` may be left out only by a stream method
 * (its final value is then `null`).
 */
export interface MethodDocument {
  description?: string;
  params: object | boolean;
  result?: object | boolean;
  yields?: object | boolean;
  accepts?: object | boolean;
}

/** One event the service may emit: JSON Schema of its payload. */
export interface EventDocument {
  description?: string;
  payload: object | boolean;
}

/** A parsed, checked protocol file. */
export interface ProtocolDocument {
  name: string;
  version: string;
  description?: string;
  methods: Record<string, MethodDocument>;
  events?: Record<string, EventDocument>;
  /** Codes the service's handlers may throw, with what they mean. */
  errors?: Record<string, { description?: string }>;
}

/**
 * The JSON Schema every protocol file is checked against, made on first need (memoised): a helper's protocol is
 * trusted (its broker checked it) and never needs it, and the object is ~4 KB of young objects at a cold helper's
 * start (bench/README.md, "Round eleven: Node 20 cold launch"). Exported as `PROTOCOL_DOCUMENT_SCHEMA` from
 * lib/protocol/document-schema.ts.
 */
export function protocolDocumentSchema(): DocumentSchema {
  return documentSchema ??= buildDocumentSchema();
}

type DocumentSchema = ReturnType<typeof buildDocumentSchema>;
let documentSchema: DocumentSchema | undefined;

function buildDocumentSchema() {
  const schemaOrBool = { type: ['object', 'boolean'] };
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    required: ['name', 'version', 'methods'],
    additionalProperties: false,
    properties: {
      $schema: { type: 'string' },
      name: { type: 'string', pattern: NAME_PATTERN },
      version: { type: 'string', pattern: '^\\d+\\.\\d+\\.\\d+([-+].*)?$', examples: ['1.0.0'] },
      description: { type: 'string' },
      methods: {
        type: 'object',
        propertyNames: { pattern: '^[A-Za-z_$][A-Za-z0-9_$]{0,127}$' },
        additionalProperties: {
          type: 'object',
          required: ['params'],
          additionalProperties: false,
          properties: { description: { type: 'string' }, params: schemaOrBool, result: schemaOrBool, yields: schemaOrBool, accepts: schemaOrBool },
        },
      },
      events: {
        type: 'object',
        propertyNames: { pattern: '^[A-Za-z_$][A-Za-z0-9_$.:-]{0,127}$' },
        additionalProperties: {
          type: 'object',
          required: ['payload'],
          additionalProperties: false,
          properties: { description: { type: 'string' }, payload: schemaOrBool },
        },
      },
      errors: {
        type: 'object',
        propertyNames: { pattern: '^[A-Z][A-Z0-9_]{0,127}$' },
        additionalProperties: { type: 'object', additionalProperties: false, properties: { description: { type: 'string' } } },
      },
    },
  } as const;
}

let validateDocument: ReturnType<ReturnType<typeof sharedAjv>['compile']> | undefined;

/**
 * Checks a parsed protocol file.
 * @param source - file path or label, for messages
 * @throws BulkheadError `ERR_INVALID_PROTOCOL` with `data.pointer` at the first fault
 */
export function checkProtocolDocument(value: unknown, source: string): ProtocolDocument {
  validateDocument ??= sharedAjv().compile(protocolDocumentSchema());
  if (!validateDocument(value)) {
    const { pointer, detail } = explainAjvError(validateDocument.errors?.[0], protocolDocumentSchema(), value);
    throw bulkheadError('ERR_INVALID_PROTOCOL', `Protocol ${source}: ${pointer} ${detail} See docs/protocols.md for the format.`, {
      source,
      pointer,
      errors: validateDocument.errors ?? [],
    });
  }
  const document = value as ProtocolDocument;
  for (const [name, method] of Object.entries(document.methods)) {
    if (method.result === undefined && method.yields === undefined && method.accepts === undefined) {
      const pointer = `/methods/${name}/result`;
      throw bulkheadError('ERR_INVALID_PROTOCOL', `Protocol ${source}: ${pointer} is required but missing (only a stream method, with "yields" or "accepts", may leave it out). See docs/protocols.md for the format.`, { source, pointer, errors: [] });
    }
  }
  checkEndpointDeclarations(document as unknown as Parameters<typeof checkEndpointDeclarations>[0], source);
  return document;
}
