/**
 * Endpoint-typed fields in a protocol: `{ "x-bulkhead-endpoint": "<service>" }`
 * declares that a value is an endpoint for that service (a passable right to
 * open a connection to it, see docs/protocols.md and docs/wire.md). ajv
 * expands the keyword into the endpoint's wire shape, so the receiver
 * validates it like any other field; the protocol check refuses a malformed
 * declaration at load time with `ERR_INVALID_PROTOCOL` and its pointer.
 * @module
 */
import type { Ajv2020 } from 'ajv/dist/2020.js';
import { bulkheadError } from '../errors.js';
import { escapePointer } from './ajv-pointer.js';
import { SUBSCHEMA_ARRAY_KEYWORDS, SUBSCHEMA_KEYWORDS, SUBSCHEMA_MAP_KEYWORDS } from './schema-keywords.js';

/** The keyword that marks a schema as an endpoint for the service it names. */
export const ENDPOINT_KEYWORD = 'x-bulkhead-endpoint';

/**
 * The reserved target a helper names in `meta.service` on its outbound
 * channel (fd 4) to ask the broker itself, e.g. to mint an endpoint (it cannot
 * be a service's name: those start with a letter or digit).
 */
export const BROKER_TARGET = '@bulkhead';

/** An endpoint's token: 32 random bytes, base64url without padding (43 characters). */
export const ENDPOINT_TOKEN_PATTERN = '^[A-Za-z0-9_-]{43}$';

/** Service names (the same rule as document.ts's NAME_PATTERN, kept here so the two files do not import each other). */
const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Keywords allowed beside the endpoint keyword: annotations only (the keyword fixes the shape). */
const ANNOTATIONS: ReadonlySet<string> = new Set(['description', 'title', '$comment', 'examples', 'deprecated', 'readOnly', 'writeOnly']);

declare const endpointBrand: unique symbol;

/**
 * A right to open one connection to service `S`, bound to the receiver it was
 * minted for (a helper's `mintEndpoint()`); open it with
 * `broker.connectEndpoint(ep)` or `daemon.connectEndpoint(ep)`. Branded: only
 * what the broker minted (or a validated field typed `Endpoint<'S'>`) has this
 * type, so a plain object does not compile where an endpoint is expected.
 * On the wire it is the map `{ service, token }` (docs/wire.md, "Endpoints").
 */
export interface Endpoint<S extends string = string> {
  /** The service it opens. */
  readonly service: S;
  /** The broker's unguessable token (43 base64url characters). */
  readonly token: string;
  /** @internal Type-level brand; absent at run time. */
  readonly [endpointBrand]: S;
}

/** The schema the keyword expands to: exactly `{ service: <S>, token: <43 base64url chars> }`. */
export function endpointSchema(service: string): Record<string, unknown> {
  return {
    type: 'object',
    required: ['service', 'token'],
    additionalProperties: false,
    properties: { service: { const: service }, token: { type: 'string', pattern: ENDPOINT_TOKEN_PATTERN } },
  };
}

/** Teaches an ajv instance the endpoint keyword (every bulkhead ajv has it; see ajv.ts). */
export function addEndpointKeyword(ajv: Ajv2020): void {
  ajv.addKeyword({
    keyword: ENDPOINT_KEYWORD,
    macro: (service: string) => endpointSchema(service),
    metaSchema: { type: 'string', pattern: SERVICE_NAME.source },
  });
}

/** True when `value` has an endpoint's wire shape (for the service `service`, when given). */
export function isEndpoint(value: unknown, service?: string): value is Endpoint {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  const { service: s, token } = value as { service?: unknown; token?: unknown };
  return keys.length === 2 && typeof s === 'string' && SERVICE_NAME.test(s) && (service === undefined || s === service)
    && typeof token === 'string' && new RegExp(ENDPOINT_TOKEN_PATTERN).test(token);
}

/** What to do with a malformed declaration: throw (it never returns). */
export type DeclarationFault = (pointer: string, detail: string) => never;

/**
 * The services a schema's endpoint fields name, by JSON pointer; a malformed
 * declaration goes to `fault`.
 */
export function endpointFields(schema: unknown, pointer: string, fault: DeclarationFault, found: Map<string, string> = new Map()): Map<string, string> {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return found;
  const s = schema as Record<string, unknown>;
  if (Object.hasOwn(s, ENDPOINT_KEYWORD)) {
    const at = `${pointer}/${ENDPOINT_KEYWORD}`;
    const service = s[ENDPOINT_KEYWORD];
    if (typeof service !== 'string' || !SERVICE_NAME.test(service)) {
      fault(at, `must name one service (a string matching ${SERVICE_NAME.source}), e.g. "${ENDPOINT_KEYWORD}": "com.example.store"`);
    }
    const other = Object.keys(s).find((k) => k !== ENDPOINT_KEYWORD && !ANNOTATIONS.has(k));
    if (other !== undefined) {
      fault(`${pointer}/${escapePointer(other)}`, `cannot stand beside "${ENDPOINT_KEYWORD}": an endpoint's shape is fixed (docs/wire.md); keep only annotations (${[...ANNOTATIONS].join(', ')})`);
    }
    found.set(pointer, service);
    return found;
  }
  for (const [key, value] of Object.entries(s)) {
    const at = `${pointer}/${escapePointer(key)}`;
    if (SUBSCHEMA_KEYWORDS.has(key) && !Array.isArray(value)) endpointFields(value, at, fault, found);
    else if (SUBSCHEMA_ARRAY_KEYWORDS.has(key) && Array.isArray(value)) value.forEach((v, i) => endpointFields(v, `${at}/${i}`, fault, found));
    else if (SUBSCHEMA_MAP_KEYWORDS.has(key) && typeof value === 'object' && value !== null) {
      for (const [name, sub] of Object.entries(value)) endpointFields(sub, `${at}/${escapePointer(name)}`, fault, found);
    }
  }
  return found;
}

/**
 * Checks every endpoint declaration of a protocol document (params, result,
 * stream items and event payloads).
 * @param source - file path or label, for messages
 * @throws BulkheadError `ERR_INVALID_PROTOCOL` with `data.pointer` at the malformed declaration
 */
export function checkEndpointDeclarations(document: { methods: Record<string, Record<string, unknown>>; events?: Record<string, Record<string, unknown>> }, source: string): void {
  const fault: DeclarationFault = (pointer, detail) => {
    throw bulkheadError('ERR_INVALID_PROTOCOL', `Protocol ${source}: ${pointer} ${detail}. See docs/protocols.md, "Endpoints".`, { source, pointer, errors: [] });
  };
  for (const [name, method] of Object.entries(document.methods)) {
    for (const part of ['params', 'result', 'yields', 'accepts']) endpointFields(method[part], `/methods/${escapePointer(name)}/${part}`, fault);
  }
  for (const [name, event] of Object.entries(document.events ?? {})) endpointFields(event['payload'], `/events/${escapePointer(name)}/payload`, fault);
}
