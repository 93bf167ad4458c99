/**
 * Comparing two JSON Schemas for compatible evolution, as buf does for proto
 * files: judged from the schemas themselves, never from version numbers.
 *
 * The question is always one inclusion: does the *wider* schema accept every
 * value the *narrower* one accepts? What a receiver gets from a peer built
 * with another version must pass the receiver's schema, so:
 * - for what the **service receives** (params, `accepts` items), the newer
 *   schema must be the wider one (it may only widen);
 * - for what the **client receives** (results, events, `yields` items), the
 *   older schema must be the wider one (the newer may only narrow).
 *
 * The check is structural and conservative: a change it cannot prove safe is
 * breaking. One convention, protobuf's: a property an object schema does not
 * declare is taken as never sent (so adding an optional property to params,
 * or a property to a result, is compatible) unless the schema says
 * `additionalProperties: false`, which promises that no other property comes.
 * @module
 */
import { canonicalJson } from './hash.js';
import { escapePointer } from './ajv-pointer.js';

/** One difference between two schemas. */
export interface SchemaChange {
  /** JSON pointer, in the protocol document, of the schema (or keyword) that changed. */
  pointer: string;
  /** What changed, in words. */
  change: string;
  /** True when a peer on the other version could now send something the receiver rejects. */
  breaking: boolean;
}

/** Which version must be the wider one. */
export type Direction = 'widen' | 'narrow';

type Schema = Record<string, unknown> | boolean;

/** Keywords that only document: a change to them is compatible. */
const ANNOTATIONS = new Set(['title', 'description', 'examples', 'default', '$comment', 'deprecated', 'readOnly', 'writeOnly', '$schema', '$id']);
/** Keywords this module compares; any other keyword must be unchanged. */
const UNDERSTOOD = new Set([
  'type', 'enum', 'const', 'properties', 'required', 'additionalProperties', 'items',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf',
  'minLength', 'maxLength', 'pattern', 'format', 'minItems', 'maxItems', 'uniqueItems',
  'minProperties', 'maxProperties', 'anyOf', 'oneOf',
]);

/**
 * Compares `oldSchema` to `newSchema` at `pointer`. With `widen`, the new
 * schema must accept everything the old one did; with `narrow`, the old one
 * must accept everything the new one does. Returns every change found.
 */
export function compareSchemas(oldSchema: unknown, newSchema: unknown, pointer: string, direction: Direction): SchemaChange[] {
  const out: SchemaChange[] = [];
  const [wide, narrow] = direction === 'widen' ? [newSchema, oldSchema] : [oldSchema, newSchema];
  covers(wide as Schema, narrow as Schema, pointer, new Context(direction, out));
  return out;
}

/** Collects changes, phrasing them from old to new. */
class Context {
  constructor(readonly direction: Direction, readonly out: SchemaChange[]) {}

  /** Records a change; `safe` says whether the wider side still covers the narrower there. */
  report(pointer: string, change: string, safe: boolean): void {
    this.out.push({ pointer, change, breaking: !safe });
  }

  /** The old and new value of something seen as (wide, narrow). */
  oldNew<T>(wide: T, narrow: T): [T, T] {
    return this.direction === 'widen' ? [narrow, wide] : [wide, narrow];
  }
}

function same(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

function show(v: unknown): string {
  return v === undefined ? 'none' : JSON.stringify(v);
}

/** Does `wide` accept every value `narrow` accepts? Reports what changed on the way. */
function covers(wide: Schema | undefined, narrow: Schema | undefined, at: string, ctx: Context): void {
  const w = wide ?? true;
  const n = narrow ?? true;
  if (same(w, n)) return;
  if (typeof w === 'boolean' || typeof n === 'boolean') {
    const [o, nw] = ctx.oldNew(w, n);
    // true accepts everything; false accepts nothing.
    const safe = w === true || n === false || (typeof w === 'object' && Object.keys(w).every((k) => ANNOTATIONS.has(k)));
    ctx.report(at, `schema changed from ${describe(o)} to ${describe(nw)}`, safe);
    return;
  }
  const keys = new Set([...Object.keys(w), ...Object.keys(n)]);
  for (const key of keys) {
    if (ANNOTATIONS.has(key) || UNDERSTOOD.has(key)) continue;
    if (!same(w[key], n[key])) {
      const [o, nw] = ctx.oldNew(w[key], n[key]);
      ctx.report(`${at}/${escapePointer(key)}`, `"${key}" changed (${show(o)} → ${show(nw)}); bulkhead cannot prove that compatible`, false);
    }
  }
  for (const key of keys) {
    if (ANNOTATIONS.has(key) && !same(w[key], n[key])) ctx.report(`${at}/${escapePointer(key)}`, `"${key}" changed`, true);
  }
  if (w['anyOf'] !== undefined || w['oneOf'] !== undefined || n['anyOf'] !== undefined || n['oneOf'] !== undefined) {
    coversUnion(w, n, at, ctx);
    return;
  }
  coversType(w, n, at, ctx);
  coversValues(w, n, at, ctx);
  coversBounds(w, n, at, ctx);
  coversObject(w, n, at, ctx);
  if (w['items'] !== undefined || n['items'] !== undefined) covers(w['items'] as Schema | undefined, n['items'] as Schema | undefined, `${at}/items`, ctx);
}

function describe(s: Schema): string {
  if (s === true) return 'true (anything)';
  if (s === false) return 'false (nothing)';
  return 'a schema';
}

/** anyOf/oneOf: every branch of the narrower must be covered by the wider (or one of its branches). */
function coversUnion(w: Record<string, unknown>, n: Record<string, unknown>, at: string, ctx: Context): void {
  const branches = (s: Record<string, unknown>): Schema[] | undefined => (s['anyOf'] ?? s['oneOf']) as Schema[] | undefined;
  const withoutUnion = (s: Record<string, unknown>) => Object.fromEntries(Object.entries(s).filter(([k]) => k !== 'anyOf' && k !== 'oneOf'));
  const wRest = withoutUnion(w);
  const nRest = withoutUnion(n);
  const wBranches = branches(w);
  const nBranches = branches(n) ?? [n];
  const keyword = w['anyOf'] !== undefined || n['anyOf'] !== undefined ? 'anyOf' : 'oneOf';
  if (Object.keys(wRest).some((k) => !ANNOTATIONS.has(k)) && wBranches !== undefined) {
    // Sibling keywords next to a union: compare them too, but only if equal on both sides.
    if (!same(wRest, nRest)) ctx.report(at, `keywords beside "${keyword}" changed; bulkhead cannot prove that compatible`, false);
  }
  nBranches.forEach((branch, i) => {
    const candidates = wBranches ?? [w];
    // Silent trial: a branch is covered when some candidate covers it without a breaking change.
    const covered = candidates.some((c) => {
      const trial = new Context(ctx.direction, []);
      covers(c, branch, at, trial);
      return trial.out.every((change) => !change.breaking);
    });
    const where = branches(n) !== undefined ? `${at}/${keyword}/${i}` : at;
    if (!covered) {
      ctx.report(where, ctx.direction === 'widen' ? 'an alternative the old schema accepted is no longer accepted' : 'an alternative the old schema did not accept may now be sent', false);
    }
  });
  const wn = wBranches?.length ?? 1;
  const nn = nBranches.length;
  if (wn !== nn || !same(w, n)) {
    const [o, nw] = ctx.oldNew(wn, nn);
    if (o !== nw) ctx.report(`${at}/${keyword}`, `alternatives: ${o} → ${nw}`, true);
  }
}

const INTEGER_IN_NUMBER = (types: Set<string>, t: string): boolean => types.has(t) || (t === 'integer' && types.has('number'));

function typesOf(s: Record<string, unknown>): Set<string> | undefined {
  const t = s['type'];
  if (t === undefined) return undefined;
  return new Set(Array.isArray(t) ? t as string[] : [t as string]);
}

function coversType(w: Record<string, unknown>, n: Record<string, unknown>, at: string, ctx: Context): void {
  const wt = typesOf(w);
  const nt = typesOf(n);
  if (same(w['type'], n['type'])) return;
  const [o, nw] = ctx.oldNew(w['type'], n['type']);
  // An enum or const on the narrower side pins its values: check those instead of its type.
  const pinned = n['enum'] !== undefined || n['const'] !== undefined;
  const safe = wt === undefined || (nt !== undefined && [...nt].every((t) => INTEGER_IN_NUMBER(wt, t))) || (pinned && valuesOf(n)!.every((v) => matchesType(v, wt)));
  ctx.report(`${at}/type`, `type ${show(o)} → ${show(nw)}`, safe);
}

function matchesType(value: unknown, types: Set<string>): boolean {
  if (value === null) return types.has('null');
  if (Array.isArray(value)) return types.has('array');
  if (typeof value === 'number') return types.has('number') || (Number.isInteger(value) && types.has('integer'));
  return types.has(typeof value);
}

function valuesOf(s: Record<string, unknown>): unknown[] | undefined {
  if (s['const'] !== undefined) return [s['const']];
  if (Array.isArray(s['enum'])) return s['enum'] as unknown[];
  return undefined;
}

/** enum/const: the narrower's values must all be among the wider's. */
function coversValues(w: Record<string, unknown>, n: Record<string, unknown>, at: string, ctx: Context): void {
  const wv = valuesOf(w);
  const nv = valuesOf(n);
  if (same(wv, nv)) return;
  const key = w['enum'] !== undefined || n['enum'] !== undefined ? 'enum' : 'const';
  if (wv === undefined) {
    const [o] = ctx.oldNew('values', 'none');
    ctx.report(`${at}/${key}`, o === 'none' ? `${key} removed (any value of the type now)` : `${key} added`, true);
    return;
  }
  if (nv === undefined) {
    const [o] = ctx.oldNew('values', 'none');
    ctx.report(`${at}/${key}`, o === 'none' ? `${key} added: values are now restricted` : `${key} removed: any value of the type may now be sent`, false);
    return;
  }
  const wset = new Set(wv.map((v) => canonicalJson(v)));
  const nset = new Set(nv.map((v) => canonicalJson(v)));
  const missing = nv.filter((v) => !wset.has(canonicalJson(v)));
  const extra = wv.filter((v) => !nset.has(canonicalJson(v)));
  const [added, removed] = ctx.direction === 'widen' ? [extra, missing] : [missing, extra];
  if (added.length > 0) ctx.report(`${at}/${key}`, `${key} gained ${added.map(show).join(', ')}`, ctx.direction === 'widen');
  if (removed.length > 0) ctx.report(`${at}/${key}`, `${key} lost ${removed.map(show).join(', ')}`, ctx.direction === 'narrow');
}

/** Lower bounds: the wider's may not be higher; upper bounds: not lower; equality keywords: unchanged. */
function coversBounds(w: Record<string, unknown>, n: Record<string, unknown>, at: string, ctx: Context): void {
  const lower = ['minimum', 'exclusiveMinimum', 'minLength', 'minItems', 'minProperties'];
  const upper = ['maximum', 'exclusiveMaximum', 'maxLength', 'maxItems', 'maxProperties'];
  for (const key of [...lower, ...upper]) {
    const wv = w[key] as number | undefined;
    const nv = n[key] as number | undefined;
    if (wv === nv) continue;
    const isLower = lower.includes(key);
    const safe = wv === undefined || (nv !== undefined && (isLower ? wv <= nv : wv >= nv));
    const [o, nw] = ctx.oldNew(wv, nv);
    ctx.report(`${at}/${key}`, `${key} ${show(o)} → ${show(nw)}`, safe);
  }
  for (const key of ['multipleOf', 'pattern', 'format', 'uniqueItems']) {
    if (same(w[key], n[key])) continue;
    const [o, nw] = ctx.oldNew(w[key], n[key]);
    // Dropping the constraint from the wider side is always safe; anything else cannot be proven.
    ctx.report(`${at}/${key}`, `${key} ${show(o)} → ${show(nw)}`, w[key] === undefined || (key === 'uniqueItems' && w[key] === false));
  }
}

function coversObject(w: Record<string, unknown>, n: Record<string, unknown>, at: string, ctx: Context): void {
  const wp = (w['properties'] ?? {}) as Record<string, Schema>;
  const np = (n['properties'] ?? {}) as Record<string, Schema>;
  const wreq = new Set((w['required'] ?? []) as string[]);
  const nreq = new Set((n['required'] ?? []) as string[]);
  // The wider may not require what the narrower leaves optional.
  for (const name of wreq) {
    if (nreq.has(name)) continue;
    const [oldRequires] = ctx.oldNew(true, false);
    ctx.report(`${at}/required`, oldRequires ? `property "${name}" is no longer required` : `property "${name}" is now required`, false);
  }
  for (const name of nreq) {
    if (wreq.has(name)) continue;
    const [oldRequires] = ctx.oldNew(false, true);
    ctx.report(`${at}/required`, oldRequires ? `property "${name}" is no longer required` : `property "${name}" is now required`, true);
  }
  const names = new Set([...Object.keys(wp), ...Object.keys(np)]);
  for (const name of names) {
    const pointer = `${at}/properties/${escapePointer(name)}`;
    if (Object.hasOwn(wp, name) && Object.hasOwn(np, name)) {
      covers(wp[name], np[name], pointer, ctx);
      continue;
    }
    const [inOld] = ctx.oldNew(Object.hasOwn(wp, name), Object.hasOwn(np, name));
    if (Object.hasOwn(np, name)) {
      // The narrower side may send it; the wider side does not declare it.
      const extra = w['additionalProperties'];
      const safe = extra === undefined || extra === true;
      if (safe || extra === false) ctx.report(pointer, inOld ? `property "${name}" removed` : `property "${name}" added`, safe);
      else covers(extra as Schema, np[name], pointer, ctx);
    } else {
      // Declared only by the wider side: the narrower never sends it unless it allows extras.
      const extra = n['additionalProperties'];
      if (extra === undefined || extra === false) ctx.report(pointer, inOld ? `property "${name}" removed` : `property "${name}" added`, true);
      else covers(wp[name], extra as Schema, pointer, ctx);
    }
  }
  const wx = w['additionalProperties'];
  const nx = n['additionalProperties'];
  if (!same(wx, nx)) {
    const [o, nw] = ctx.oldNew(wx, nx);
    // Extras the narrower allows must be allowed by the wider; a narrower with none is always covered.
    const safe = nx === undefined || nx === false || wx === undefined || wx === true;
    if (safe || typeof wx !== 'object' || typeof nx !== 'object') ctx.report(`${at}/additionalProperties`, `additionalProperties ${show(o)} → ${show(nw)}`, safe);
    else covers(wx as Schema, nx as Schema, `${at}/additionalProperties`, ctx);
  }
}
