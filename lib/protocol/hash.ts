/**
 * Stable schema hash for the hello handshake: lowercase hex SHA-256 of the
 * protocol document's canonical JSON (object keys sorted, no whitespace).
 * @module
 */
import { createHash } from 'node:crypto';

/** Canonical JSON: keys sorted at every level, no whitespace. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}

/** SHA-256 (hex) of a document's canonical JSON. */
export function schemaHash(document: unknown): string {
  return createHash('sha256').update(canonicalJson(document)).digest('hex');
}
