/**
 * A protocol ready for use: its document, its schema hash, and ajv validators
 * compiled once per schema, on first use (so a helper pays only for the
 * methods it is actually called with).
 * @module
 */
import type { ErrorObject, ValidateFunction } from 'ajv';
import { bulkheadError, type BulkheadError, type ValidationIssue } from '../errors.js';
import { sharedAjv } from './ajv.js';
import { checkProtocolDocument, type ProtocolDocument } from './document.js';
import { explainSchemaCompileError } from './explain.js';
import { canonicalEquals, schemaHash } from './hash.js';

/** Options of {@link CompiledProtocol.from}. */
export interface CompileOptions {
  /** Compile every schema now, so a bad schema fails at load; a helper passes false to start faster. @default true */
  eager?: boolean;
  /** Skip the protocol-document check (the broker already did it; the hello compares hashes). @default false */
  trusted?: boolean;
  /**
   * The hash of one document as the broker computed it (its precompiled module): taken when this document's
   * canonical JSON is exactly `canonical`, instead of hashing again; any other document is hashed.
   * @default none: the hash is computed
   */
  known?: KnownHash;
  /** Precompiled validators by key (`params:<method>`, ...): used instead of compiling with ajv. @default none: compiled with ajv */
  validators?: Record<string, ValidateFunction>;
}

/** A document's canonical JSON (`canonical`) and its schema hash (`hash`), as the broker computed them (see {@link CompileOptions.known}). */
export interface KnownHash {
  canonical: string;
  hash: string;
}

/** Which part of a message a validation concerns: `yields`/`accepts` are stream items. */
export type ValidationPart = 'params' | 'result' | 'event' | 'yields' | 'accepts';

/** The result schema of a stream method that declares none: the final value is null. */
const NULL_RESULT = { type: 'null' } as const;

/** Parts validated per method, in the order validator keys are listed. */
const METHOD_PARTS = ['params', 'result', 'yields', 'accepts'] as const;

export type { ValidationIssue } from '../errors.js';

/** A compiled protocol. Create with {@link CompiledProtocol.from}. */
export class CompiledProtocol {
  readonly name: string;
  readonly version: string;
  readonly hash: string;
  readonly document: ProtocolDocument;
  /**
   * Validators by part, then by method or event name. Looked up by the name alone: a `${part}:${name}`
   * key built per check was a string concatenation and a hash of the new string on every call and event.
   */
  private readonly validators: Record<ValidationPart, Map<string, ValidateFunction>> = {
    params: new Map(), result: new Map(), event: new Map(), yields: new Map(), accepts: new Map(),
  };
  /** The declared event names, for {@link CompiledProtocol.hasEvent}: a Set lookup, where a property lookup with a decoded name internalized it first. */
  private readonly eventNames: ReadonlySet<string>;

  private constructor(document: ProtocolDocument, known?: KnownHash) {
    this.document = document;
    this.name = document.name;
    this.version = document.version;
    // Comparing with the broker's canonical JSON costs far less than SHA-256 on a cold helper start; a changed document
    // is hashed. Compared by walking the string against the document (canonicalEquals), neither building this document's
    // canonical string nor parsing the broker's: ~1 KB of young objects instead of ~49 or ~14 (bench/README.md,
    // "Round eleven: Node 20 cold launch").
    this.hash = known !== undefined && canonicalEquals(document, known.canonical) ? known.hash : schemaHash(document);
    this.eventNames = new Set(Object.keys(document.events ?? {}));
  }

  /**
   * Checks a parsed protocol document and wraps it.
   * @throws BulkheadError `ERR_INVALID_PROTOCOL`
   */
  static from(value: unknown, source: string, options: CompileOptions = {}): CompiledProtocol {
    // A trusted document (its broker checked it, and the hello compares hashes) skips the meta-check, which needs ajv.
    const protocol = new CompiledProtocol(options.trusted === true ? value as ProtocolDocument : checkProtocolDocument(value, source), options.known);
    if (options.validators !== undefined) {
      for (const [key, validate] of Object.entries(options.validators)) {
        // `<part>:<name>`: the part has no colon, a name may.
        const colon = key.indexOf(':');
        const part = key.slice(0, colon);
        if (colon > 0 && Object.hasOwn(protocol.validators, part)) protocol.validators[part as ValidationPart].set(key.slice(colon + 1), validate);
      }
    }
    if (options.eager !== false) protocol.compileAll(source);
    return protocol;
  }

  /** Every validator key (`params:<method>`, `result:<method>`, `event:<name>`) with its schema. */
  schemas(): Array<{ key: string; schema: object | boolean }> {
    return [
      ...this.methodNames().flatMap((m) => this.partsOf(m).map((part) => ({ key: `${part}:${m}`, schema: this.schemaOf(part, m) }))),
      ...Object.entries(this.document.events ?? {}).map(([e, d]) => ({ key: `event:${e}`, schema: d.payload })),
    ];
  }

  /** True when the protocol declares `method`. */
  hasMethod(method: string): boolean {
    return Object.hasOwn(this.document.methods, method);
  }

  /** What a method streams: items it yields to the caller, items it accepts from the caller. */
  streamOf(method: string): { yields: boolean; accepts: boolean } {
    const m = this.document.methods[method]!;
    return { yields: m.yields !== undefined, accepts: m.accepts !== undefined };
  }

  /** True when `method` declares `yields` or `accepts` (it is called with stream(), not call()). */
  isStream(method: string): boolean {
    const m = this.document.methods[method]!;
    return m.yields !== undefined || m.accepts !== undefined;
  }

  /** The validated parts a method has. */
  private partsOf(method: string): ValidationPart[] {
    const m = this.document.methods[method]!;
    return METHOD_PARTS.filter((part) => part === 'params' || part === 'result' || m[part] !== undefined);
  }

  /** True when the protocol declares event `name`. */
  hasEvent(name: string): boolean {
    return this.eventNames.has(name);
  }

  /** Declared method names. */
  methodNames(): string[] {
    return Object.keys(this.document.methods);
  }

  /**
   * Validates one value against a declared schema.
   * Returns undefined when valid, otherwise the error to raise:
   * `ERR_INVALID_PARAMS` for params, `ERR_INVALID_RESULT` for results and events.
   * The caller must check the method/event exists first.
   */
  check(part: 'params' | 'accepts', name: string, value: unknown): BulkheadError<'ERR_INVALID_PARAMS'> | undefined;
  check(part: 'result' | 'event' | 'yields', name: string, value: unknown): BulkheadError<'ERR_INVALID_RESULT'> | undefined;
  check(part: ValidationPart, name: string, value: unknown): BulkheadError<'ERR_INVALID_PARAMS' | 'ERR_INVALID_RESULT'> | undefined;
  check(part: ValidationPart, name: string, value: unknown): BulkheadError<'ERR_INVALID_PARAMS' | 'ERR_INVALID_RESULT'> | undefined {
    const validate = this.validator(part, name);
    if (validate(value)) return undefined;
    const issues = (validate.errors ?? []).map(toIssue);
    const first = issues[0];
    const where = first === undefined || first.instancePath === '' ? part : `${part}${first.instancePath}`;
    const what = first?.message ?? 'is invalid';
    if (part === 'params' || part === 'accepts') {
      const fix = part === 'params' ? 'Fix the call\'s params' : 'Fix the input items';
      return bulkheadError('ERR_INVALID_PARAMS', `${this.name}.${name}: ${where} ${what}. ${fix} to match the protocol.`, { part, method: name, errors: issues });
    }
    const subject = part === 'result' ? `result of ${name}` : part === 'yields' ? `an item of ${name}` : `event ${name}`;
    return bulkheadError('ERR_INVALID_RESULT', `${this.name}: ${subject} failed its schema: ${where} ${what}. The service sent data its protocol does not allow.`, part === 'event' ? { part, event: name, errors: issues } : { part, method: name, errors: issues });
  }

  // The last result and params validator looked up, by name: a caller's calls mostly go to one method, and the
  // per-part Map lookup (a keyed load on the part, a hash lookup on the name) was ~2% of the broker's instructions per
  // pipelined call (bench/README.md, "Round thirteen: broker CPU per call").
  // One object per part, of one class, so that the look-up below stays one code path for both.
  private readonly lastResult = new LastValidator();
  private readonly lastParams = new LastValidator();

  private validator(part: ValidationPart, name: string): ValidateFunction {
    const last = part === 'result' ? this.lastResult : part === 'params' ? this.lastParams : undefined;
    if (last === undefined) return this.lookUp(part, name);
    if (name === last.name) return last.validate!;
    const validate = this.lookUp(part, name);
    last.name = name;
    last.validate = validate;
    return validate;
  }

  private lookUp(part: ValidationPart, name: string): ValidateFunction {
    const validators = this.validators[part];
    let validate = validators.get(name);
    if (validate === undefined) {
      validate = sharedAjv().compile(this.schemaOf(part, name));
      validators.set(name, validate);
    }
    return validate;
  }

  private schemaOf(part: ValidationPart, name: string): object | boolean {
    if (part === 'event') return this.document.events![name]!.payload;
    const method = this.document.methods[name]!;
    if (part === 'result') return method.result ?? NULL_RESULT;
    return method[part] ?? true;
  }

  /** Compiles every schema now, so a bad schema fails at load, not at the first call. */
  private compileAll(source: string): void {
    const parts: Array<[ValidationPart, string]> = [
      ...this.methodNames().flatMap((m): Array<[ValidationPart, string]> => this.partsOf(m).map((part) => [part, m])),
      ...Object.keys(this.document.events ?? {}).map((e): [ValidationPart, string] => ['event', e]),
    ];
    for (const [part, name] of parts) {
      try {
        this.validator(part, name);
      } catch (err) {
        const base = part === 'event' ? `/events/${name}/payload` : `/methods/${name}/${part}`;
        const { pointer, detail } = explainSchemaCompileError(err, this.schemaOf(part, name), base);
        throw bulkheadError('ERR_INVALID_PROTOCOL', `Protocol ${source}: ${pointer}: ${detail}`, { source, pointer }, err);
      }
    }
  }
}

function toIssue(e: ErrorObject): ValidationIssue {
  return { instancePath: e.instancePath, schemaPath: e.schemaPath, keyword: e.keyword, message: e.message ?? '', params: { ...e.params } };
}

/** The last validator {@link CompiledProtocol} looked up for one part, by name. */
class LastValidator {
  name: string | undefined = undefined;
  validate: ValidateFunction | undefined = undefined;
}
