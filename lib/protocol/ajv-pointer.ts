/**
 * The JSON pointer of the field an ajv error is about: for "required" and
 * "additionalProperties" errors ajv points at the parent object; we point at
 * the missing or unknown field itself, which is what a user must fix.
 * @module
 */
import type { ErrorObject } from 'ajv';

/** Pointer of the field at fault, `/` for the document itself. */
export function fieldPointer(error: ErrorObject | undefined): string {
  if (error === undefined) return '/';
  const params = error.params as { missingProperty?: string; additionalProperty?: string };
  const field = error.keyword === 'required' ? params.missingProperty : error.keyword === 'additionalProperties' ? params.additionalProperty : undefined;
  const base = error.instancePath;
  const pointer = field === undefined ? base : `${base}/${escapePointer(field)}`;
  return pointer === '' ? '/' : pointer;
}

/** Escapes one JSON-pointer segment (RFC 6901: `~` → `~0`, `/` → `~1`). */
export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}
