/**
 * Stable schema hash for the hello handshake: lowercase hex SHA-256 of the
 * protocol document's canonical JSON (object keys sorted, no whitespace).
 * @module
 */
// node:crypto, loaded on first use (not an ESM import): a helper no longer hashes its protocol at start
// (the broker's precompiled validators module carries the document and its hash, lib/protocol/precompiled.ts),
// so the helper runtime loads neither node:crypto nor a JavaScript SHA-256 unless it hashes a document itself.

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
  return process.getBuiltinModule('node:crypto').createHash('sha256').update(canonicalJson(document), 'utf8').digest('hex');
}
