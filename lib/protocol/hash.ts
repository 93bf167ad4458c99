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

/**
 * Whether two JSON values are equal as values (object key order aside): for JSON values,
 * `jsonEqual(a, b)` exactly when `canonicalJson(a) === canonicalJson(b)`. A helper checks its protocol
 * document against the broker's canonical JSON with it (lib/protocol/compiled-protocol.ts): building
 * the canonical string allocated ~49 KB of young objects for a 1.5 KB document (sorting, key strings,
 * joins), enough to tip a cold Node 20 helper into a scavenge before its first reply; this walk
 * allocates next to nothing.
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  // Counted by for...in, not compared as Object.keys arrays: no array per object.
  let keys = 0;
  for (const k in x) {
    if (!Object.hasOwn(x, k)) continue;
    keys++;
    if (!Object.hasOwn(y, k) || !jsonEqual(x[k], y[k])) return false;
  }
  for (const k in y) if (Object.hasOwn(y, k)) keys--;
  return keys === 0;
}

/** SHA-256 (hex) of a document's canonical JSON. */
export function schemaHash(document: unknown): string {
  return process.getBuiltinModule('node:crypto').createHash('sha256').update(canonicalJson(document), 'utf8').digest('hex');
}
