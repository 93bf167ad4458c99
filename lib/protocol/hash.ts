/**
 * Stable schema hash for the hello handshake: lowercase hex SHA-256 of the
 * protocol document's canonical JSON (object keys sorted, no whitespace).
 * @module
 */
// SHA-256 in JavaScript (@noble/hashes, audited) rather than node:crypto: a helper hashes its protocol
// at every start, and loading node:crypto would cost it ~6–7 ms of start-up on Node 24 (measured).
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';

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
  return bytesToHex(sha256(utf8ToBytes(canonicalJson(document))));
}
