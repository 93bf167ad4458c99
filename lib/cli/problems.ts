/**
 * One problem found in one file, as `bulkhead validate` and `bulkhead types`
 * print it: file, JSON pointer, code, and a message that says what to do.
 * @module
 */
import { resolve } from 'node:path';
import { isBulkheadError } from '../errors.js';

/** A problem at one place in one file. */
export interface Problem {
  /** The file at fault, as the user named it (or as found under a directory they named). */
  file: string;
  /** JSON pointer of the field at fault inside that file; `""` means the whole file. */
  pointer: string;
  /** A bulkhead error code (`ERR_INVALID_PROTOCOL`, ...), or `ENOENT`-style codes for files that cannot be read. */
  code: string;
  /** What is wrong and what to do. */
  message: string;
}

/** The ajv error shape we read from `error.data.errors`. */
interface AjvErrorLike {
  instancePath?: unknown;
  keyword?: unknown;
  params?: Record<string, unknown>;
}

/**
 * The most precise pointer for a validation error: ajv reports a missing or
 * unknown field at its parent object, but the user wants to be sent to the
 * field itself (`/name`, not `/`).
 */
export function refinePointer(pointer: string, data: Record<string, unknown>): string {
  const errors = data['errors'];
  const first = Array.isArray(errors) ? (errors[0] as AjvErrorLike | undefined) : undefined;
  const base = pointer === '/' ? '' : pointer;
  if (first === undefined || typeof first.instancePath !== 'string' || first.instancePath !== base) return base;
  const field = first.keyword === 'required' ? first.params?.['missingProperty'] : first.keyword === 'additionalProperties' ? first.params?.['additionalProperty'] : undefined;
  return typeof field === 'string' ? `${base}/${escapePointer(field)}` : base;
}

/**
 * Turns an error thrown while checking `file` into a problem. Bulkhead errors
 * keep their code and pointer; anything else is rethrown (it is a bug, exit 2).
 * @param prefix - pointer of the checked value inside `file` (e.g. `/services/0` for a manifest in a config)
 */
export function problemFromError(err: unknown, file: string, prefix = ''): Problem {
  if (!isBulkheadError(err)) throw err;
  const data = err.data;
  const pointer = typeof data['pointer'] === 'string' ? refinePointer(data['pointer'], data) : typeof data['option'] === 'string' ? `/${data['option']}` : '';
  return { file, pointer: `${prefix}${pointer}`, code: err.code, message: withoutFilePrefix(oneLine(err.message), file) };
}

/** Drops a leading "Protocol <file>: ", "Config <file>: " or "Manifest ... (<file> /services/N): ": the line names the place already. */
function withoutFilePrefix(message: string, file: string): string {
  const manifest = /^Manifest(?: for service "[^"]*")? \([^)]*\): /.exec(message);
  if (manifest !== null) return message.slice(manifest[0].length);
  for (const path of new Set([file, resolve(file)])) {
    for (const label of ['Protocol', 'Config']) {
      const prefix = `${label} ${path}: `;
      if (message.startsWith(prefix)) return message.slice(prefix.length);
    }
  }
  return message;
}

/** `file: /pointer: message (CODE)` — one line, greppable, pointer `/` for the whole file. */
export function formatProblem(problem: Problem): string {
  return `${problem.file}: ${problem.pointer === '' ? '/' : problem.pointer}: ${problem.message} (${problem.code})`;
}

export { escapePointer } from '../protocol/ajv-pointer.js';
import { escapePointer } from '../protocol/ajv-pointer.js';

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}
