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

/** {@link canonicalAt}: the text cannot be judged by the walk (an escape, a surrogate, a value JSON has not): build the string. */
const UNDECIDED = -2;
/** Whether `key` is an own enumerable key of `record` (one of its Object.keys). */
const isOwnKey = (record: object, key: string): boolean => Object.prototype.propertyIsEnumerable.call(record, key);

/**
 * Whether `canonicalJson(value) === text`, exactly, mostly without building the string. A helper checks its protocol
 * document against the broker's canonical JSON with it (lib/protocol/compiled-protocol.ts): building the document's
 * canonical string allocated ~49 KB of young objects for a 1.5 KB document (sorting, key strings, joins) and parsing
 * the broker's string ~10 KB, enough to tip a cold Node 20 helper into a scavenge before its first reply. This walks
 * the text against the value; the keys' slices are all it allocates. Anything the walk does not decide (a backslash,
 * a control character or a surrogate in the text or a string, a value that is not JSON) builds the string instead.
 */
export function canonicalEquals(value: unknown, text: string): boolean {
  const end = canonicalAt(value, text, 0);
  return end === UNDECIDED ? canonicalJson(value) === text : end === text.length;
}

/**
 * Where `value`'s canonical JSON ends if `text` holds it at `i`; -1 where it certainly does not (the text before the
 * first difference is, char for char, what {@link canonicalJson} writes); {@link UNDECIDED}.
 */
function canonicalAt(value: unknown, text: string, i: number): number {
  if (value === null) return text.startsWith('null', i) ? i + 4 : -1;
  switch (typeof value) {
    case 'string': return stringAt(value, text, i);
    case 'boolean': return text.startsWith(value ? 'true' : 'false', i) ? i + (value ? 4 : 5) : -1;
    case 'number': {
      const s = JSON.stringify(value);
      return text.startsWith(s, i) ? i + s.length : -1;
    }
    case 'object': break;
    default: return UNDECIDED; // undefined, a function, a symbol, a bigint: canonicalJson's own answer
  }
  if (Array.isArray(value)) {
    if (text.charCodeAt(i++) !== 0x5b) return -1; // [
    for (let k = 0; k < value.length; k++) {
      if (k > 0 && text.charCodeAt(i++) !== 0x2c) return -1; // ,
      if (!(k in value)) return UNDECIDED; // a hole
      i = canonicalAt(value[k], text, i);
      if (i < 0) return i;
    }
    return text.charCodeAt(i) === 0x5d ? i + 1 : -1; // ]
  }
  const record = value as Record<string, unknown>;
  if (text.charCodeAt(i++) !== 0x7b) return -1; // {
  // The text's keys must be strictly increasing (canonicalJson sorts them), each an own enumerable key of the value,
  // and as many as the value has: then they are its sorted keys, and each entry is checked where it stands.
  let count = 0;
  let previous: string | undefined;
  while (text.charCodeAt(i) !== 0x7d) { // }
    if (count > 0 && text.charCodeAt(i++) !== 0x2c) return -1;
    if (text.charCodeAt(i) !== 0x22) return -1; // "
    let j = i + 1;
    for (;; j++) {
      const c = text.charCodeAt(j);
      if (c === 0x22) break;
      if (Number.isNaN(c)) return -1; // the text ended
      if (c === 0x5c || c < 0x20 || (c >= 0xd800 && c <= 0xdfff)) return UNDECIDED;
    }
    const key = text.slice(i + 1, j);
    if ((previous !== undefined && !(previous < key)) || !isOwnKey(record, key)) return -1;
    previous = key;
    if (text.charCodeAt(j + 1) !== 0x3a) return -1; // :
    i = canonicalAt(record[key], text, j + 2);
    if (i < 0) return i;
    count++;
  }
  for (const k in record) if (isOwnKey(record, k)) count--;
  return count === 0 ? i + 1 : -1;
}

/** {@link canonicalAt} for a string: `JSON.stringify(value)` when it needs no escape. */
function stringAt(value: string, text: string, i: number): number {
  if (text.charCodeAt(i) !== 0x22) return -1;
  for (let k = 0; k < value.length; k++) {
    const c = value.charCodeAt(k);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return UNDECIDED;
    if (text.charCodeAt(i + 1 + k) !== c) return -1;
  }
  return text.charCodeAt(i + 1 + value.length) === 0x22 ? i + 2 + value.length : -1;
}

/** SHA-256 (hex) of a document's canonical JSON. */
export function schemaHash(document: unknown): string {
  return process.getBuiltinModule('node:crypto').createHash('sha256').update(canonicalJson(document), 'utf8').digest('hex');
}
