/**
 * TypeScript types for a protocol file, as `bulkhead types` writes them: one
 * interface compatible with `ProtocolShape` (`methods` → params/result,
 * `events` → payload) plus a named type for every params, result and event
 * schema, generated with json-schema-to-typescript.
 *
 * Objects: a schema that lists `properties` but says nothing about
 * `additionalProperties` gets no index signature (only its declared fields are
 * typed; reading any other field is a compile error), unless
 * {@link TypegenOptions.looseObjects} is set. An object schema with no
 * `properties` at all is an open record (`{ [k: string]: unknown }`). An
 * explicit `additionalProperties` always wins.
 *
 * Endpoints: a schema `{ "x-bulkhead-endpoint": "S" }` becomes the branded
 * `BulkheadEndpoint<'S'>` (bulkhead's `Endpoint`, imported by the module).
 * @module
 */
import { escapePointer } from '../protocol/ajv-pointer.js';
import { compile } from 'json-schema-to-typescript';
import { bulkheadError } from '../errors.js';
import { CompiledProtocol } from '../protocol/compiled-protocol.js';
import type { ProtocolDocument } from '../protocol/document.js';
import { ENDPOINT_KEYWORD } from '../protocol/endpoint-keyword.js';
import { SUBSCHEMA_ARRAY_KEYWORDS, SUBSCHEMA_KEYWORDS, SUBSCHEMA_MAP_KEYWORDS } from '../protocol/schema-keywords.js';

/** Options of {@link generateProtocolTypes}. */
export interface TypegenOptions {
  /**
   * Label of the document for messages and the generated header (e.g. its file path).
   * @default the protocol's name
   */
  source?: string;
  /**
   * Give object schemas that do not set `additionalProperties` an index
   * signature (`[k: string]: unknown`), as JSON Schema itself would allow
   * extra fields. Off by default: typed code then only sees declared fields.
   * @default false
   */
  looseObjects?: boolean;
}

/** Names of the types generated for one protocol. */
export interface ProtocolTypeNames {
  /** The `ProtocolShape`-compatible interface, e.g. `ComExampleEchoProtocol`. */
  protocol: string;
  /** Union of the protocol's declared error codes, e.g. `ComExampleEchoErrorCode` (only emitted when it declares `errors`). */
  errorCode: string;
  /** Per method: its params and result type names, and its stream items' (`yields`, `accepts`) when it declares them. */
  methods: Record<string, { params: string; result: string; yields?: string; accepts?: string }>;
  /** Per event: its payload type name. */
  events: Record<string, string>;
}

/** The name generated modules import bulkhead's `Endpoint` under (a protocol may have its own `Endpoint` type). */
const ENDPOINT_TYPE = 'BulkheadEndpoint';

/**
 * A TypeScript identifier in PascalCase from a protocol, method, event or
 * title string. This is json-schema-to-typescript's own folding (its
 * `toSafeString`, minus accent folding), so the names we pick come out of
 * the generator unchanged.
 */
export function typeNameOf(name: string): string {
  const safe = name
    .replace(/(^\s*[^a-zA-Z_$])|([^a-zA-Z_$\d])/g, ' ')
    .replace(/^_[a-z]/g, (m) => m.toUpperCase())
    .replace(/_[a-z]/g, (m) => m.slice(1).toUpperCase())
    .replace(/([\d$]+[a-zA-Z])/g, (m) => m.toUpperCase())
    .replace(/\s+([a-zA-Z])/g, (m) => m.trim().toUpperCase())
    .replace(/\s/g, '')
    .replace(/^\d+/, '');
  return safe === '' ? 'Unnamed' : safe.charAt(0).toUpperCase() + safe.slice(1);
}

/**
 * Picks a unique type name for every part of the protocol, deterministically
 * (declaration order), so two methods such as `get_item` and `getItem` get
 * `GetItemParams` and `GetItemParams2` rather than whatever order the
 * generator happens to visit them in.
 */
export function protocolTypeNames(document: ProtocolDocument): ProtocolTypeNames {
  const used = new Set<string>();
  const claim = (base: string): string => {
    let name = base;
    for (let n = 2; used.has(name); n++) name = `${base}${n}`;
    used.add(name);
    return name;
  };
  const stem = typeNameOf(document.name);
  const protocol = claim(`${stem}Protocol`);
  const errorCode = claim(`${stem}ErrorCode`);
  // fromEntries defines own properties, so a method named "__proto__" stays a method.
  const methods = Object.fromEntries(Object.keys(document.methods).map((method) => {
    const base = typeNameOf(method);
    const spec = document.methods[method]!;
    return [method, {
      params: claim(`${base}Params`),
      result: claim(`${base}Result`),
      ...(spec.yields === undefined ? {} : { yields: claim(`${base}Item`) }),
      ...(spec.accepts === undefined ? {} : { accepts: claim(`${base}Input`) }),
    }];
  }));
  const events = Object.fromEntries(Object.keys(document.events ?? {}).map((event) => [event, claim(`${typeNameOf(event)}Event`)]));
  return { protocol, errorCode, methods, events };
}

/**
 * Generates the TypeScript module for one protocol document.
 * The document is checked first (as the broker would load it), so a bad
 * schema fails here with `ERR_INVALID_PROTOCOL` rather than as odd types.
 * @example
 * ```ts
 * const source = await generateProtocolTypes(JSON.parse(readFileSync('protocols/com.example.echo.json', 'utf8')));
 * // export interface ComExampleEchoProtocol { methods: { echo: { params: EchoParams; result: EchoResult } }; events: {} }
 * ```
 * @returns the module's source text (formatted, ends with a newline)
 * @throws BulkheadError `ERR_INVALID_PROTOCOL`
 */
export async function generateProtocolTypes(document: unknown, options: TypegenOptions = {}): Promise<string> {
  const compiled = CompiledProtocol.from(document, options.source ?? describeSource(document));
  const doc = compiled.document;
  const names = protocolTypeNames(doc);
  const reserved = new Set<string>([names.protocol, names.errorCode, ...Object.values(names.methods).flatMap((m) => [m.params, m.result, ...(m.yields === undefined ? [] : [m.yields]), ...(m.accepts === undefined ? [] : [m.accepts])]), ...Object.values(names.events)]);
  const loose = options.looseObjects === true;

  // Object.fromEntries throughout: protocol names become own properties, never prototype setters.
  const methods = Object.fromEntries(Object.entries(doc.methods).map(([method, spec]) => {
    const at = `/properties/methods/properties/${method}/properties`;
    const typeNames = names.methods[method]!;
    const streamParts = (['yields', 'accepts'] as const).filter((part) => spec[part] !== undefined);
    return [method, withDescription({
      type: 'object',
      additionalProperties: false,
      required: ['params', 'result', ...streamParts],
      properties: {
        params: rootSchema(spec.params, typeNames.params, `${at}/params`, reserved, loose),
        // A stream method without a result ends with null.
        result: rootSchema(spec.result ?? { type: 'null' }, typeNames.result, `${at}/result`, reserved, loose),
        ...Object.fromEntries(streamParts.map((part) => [part, rootSchema(spec[part]!, typeNames[part]!, `${at}/${part}`, reserved, loose)])),
      },
    }, spec.description)];
  }));
  const events = Object.fromEntries(Object.entries(doc.events ?? {}).map(([event, spec]) => [
    event,
    withDescription(rootSchema(spec.payload, names.events[event]!, `/properties/events/properties/${escapePointer(event)}`, reserved, loose), spec.description),
  ]));
  const shape = {
    title: names.protocol,
    description: `Type of protocol ${doc.name} ${doc.version}: pass it to \`broker.connect<${names.protocol}>()\` and \`serve<${names.protocol}>()\`.${doc.description === undefined ? '' : `\n\n${doc.description}`}`,
    type: 'object',
    additionalProperties: false,
    required: ['methods', 'events'],
    properties: {
      methods: { type: 'object', additionalProperties: false, required: Object.keys(methods), properties: methods },
      events: { type: 'object', additionalProperties: false, required: Object.keys(events), properties: events },
    },
  };

  let body: string;
  try {
    body = await compile(shape as Parameters<typeof compile>[0], names.protocol, {
      bannerComment: '',
      additionalProperties: loose,
      strictIndexSignatures: false,
      unknownAny: true,
      format: true,
      // Every $ref is local (ajv resolved it when the protocol loaded); never fetch anything.
      $refOptions: { resolve: { external: false } },
    });
  } catch (err) {
    throw bulkheadError('ERR_INVALID_PROTOCOL', `Cannot generate types for protocol ${doc.name}: ${(err as Error).message}. Simplify the schema, or report it if ajv accepts it.`, { source: options.source ?? doc.name, pointer: '/' }, err);
  }
  for (const name of reserved) {
    if (name === names.errorCode) continue;
    if (!new RegExp(`^export (?:interface|type) ${name.replace(/\$/g, '\\$')}\\b`, 'm').test(body)) {
      // The generator renamed one of ours (a clash we did not foresee); fail loudly rather than ship surprising names.
      throw new Error(`bulkhead types: generated code for ${doc.name} lacks type ${name}.`);
    }
  }
  const errorCodes = Object.keys(doc.errors ?? {});
  const errorUnion = errorCodes.length === 0
    ? ''
    : `\n/** Error codes the ${comment(doc.name)} service's handlers declare (as \`error.data.remoteCode\` on the client). */\nexport type ${names.errorCode} = ${errorCodes.map((c) => JSON.stringify(c)).join(' | ')};\n`;
  const imports = body.includes(`${ENDPOINT_TYPE}<`) ? `import type { Endpoint as ${ENDPOINT_TYPE} } from 'bulkhead';\n\n` : '';
  const header = [
    '/**',
    ` * Generated by \`bulkhead types\` from protocol ${doc.name} ${comment(doc.version)}`,
    ` * (schema hash ${compiled.hash}).`,
    ' * Do not edit: change the protocol file and run `bulkhead types` again.',
    ' */',
    '',
  ].join('\n');
  return `${header}${imports}${body.replace(/^\s*\n/, '')}${errorUnion}`;
}

function describeSource(document: unknown): string {
  const name = (document as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? `protocol ${name}` : 'protocol document';
}

function withDescription(schema: Record<string, unknown>, description: string | undefined): Record<string, unknown> {
  return description === undefined ? schema : { ...schema, description };
}

/** A params/result/payload schema, named and rewritten for the generator. */
function rootSchema(schema: object | boolean, title: string, pointer: string, reserved: ReadonlySet<string>, loose: boolean): Record<string, unknown> {
  const converted = convert(schema, pointer, reserved, loose);
  // Its own $id would make the generator treat it as a separate document; refs were rewritten to pointers already.
  delete converted['$id'];
  delete converted['$schema'];
  return { ...converted, title };
}

/**
 * Rewrites one (sub)schema for json-schema-to-typescript, which speaks
 * draft-04-ish JSON Schema and sees every schema of the protocol inside one
 * combined document, in which the params/result/payload schema that `schema`
 * belongs to sits at pointer `base`:
 * - local `$ref`s (`#/...`, relative to that schema's root) are re-rooted at `base`;
 * - boolean schemas become `unknown` / `never`;
 * - `prefixItems` (2020-12 tuples) become draft-04 `items` + `additionalItems`;
 * - object schemas without `properties` become open records;
 * - a nested `title` that would take one of our reserved type names is dropped.
 */
function convert(schema: unknown, base: string, reserved: ReadonlySet<string>, loose: boolean): Record<string, unknown> {
  if (schema === true) return { tsType: 'unknown' };
  if (schema === false) return { tsType: 'never' };
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return { tsType: 'unknown' };
  const source = schema as Record<string, unknown>;
  const endpoint = source[ENDPOINT_KEYWORD];
  // The protocol check made sure it names a service (letters, digits, . _ -): safe inside quotes.
  if (typeof endpoint === 'string') return { tsType: `${ENDPOINT_TYPE}<'${endpoint}'>`, ...(typeof source['description'] === 'string' ? { description: source['description'] } : {}) };
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(source)) {
    if (key === '__proto__') continue; // not a JSON Schema keyword; keeps `out` a plain object
    // `items` is in both lists (schema-keywords.ts): an object is one subschema, an array a draft-04 tuple.
    if (SUBSCHEMA_KEYWORDS.has(key) && typeof value === 'object' && value !== null && !Array.isArray(value)) {
      out[key] = convert(value, base, reserved, loose);
    } else if (SUBSCHEMA_ARRAY_KEYWORDS.has(key) && Array.isArray(value)) {
      out[key] = value.map((v) => convert(v, base, reserved, loose));
    } else if (SUBSCHEMA_MAP_KEYWORDS.has(key) && typeof value === 'object' && value !== null) {
      out[key] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, convert(v, base, reserved, loose)]));
    } else if (key === '$ref' && typeof value === 'string' && value.startsWith('#')) {
      out[key] = value === '#' ? `#${base}` : value.startsWith('#/') ? `#${base}${value.slice(1)}` : value;
    } else {
      out[key] = value;
    }
  }
  if (Array.isArray(out['prefixItems'])) {
    // Draft-04 tuple form: the generator understands it, and 2020-12 `items` after a tuple means "the rest".
    const rest = out['items'];
    out['items'] = out['prefixItems'];
    out['additionalItems'] = rest === undefined ? true : rest;
    delete out['prefixItems'];
  }
  const types = Array.isArray(out['type']) ? out['type'] : [out['type']];
  if (types.includes('object') && !('additionalProperties' in out)) {
    if (out['properties'] === undefined && out['patternProperties'] === undefined) out['additionalProperties'] = true;
    // `unevaluatedProperties: false` closes the object as far as types can tell.
    else if (out['unevaluatedProperties'] === false) out['additionalProperties'] = false;
  }
  if (typeof out['title'] === 'string' && reserved.has(typeNameOf(out['title']))) delete out['title'];
  return out;
}


/** Makes text safe inside a block comment. */
function comment(text: string): string {
  return text.replace(/\*\//g, '* /');
}
