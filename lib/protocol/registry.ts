/**
 * Finds and loads protocol files by name from a `protocols/` directory,
 * caching each compiled protocol for the life of the process.
 * @module
 */
// Not an ESM import: that builds node:fs's facade, whose lazy getters cost a helper ~3.6 ms of start-up (Node 24).
const { readFileSync } = process.getBuiltinModule('node:fs');
import { join } from 'node:path';
import { bulkheadError } from '../errors.js';
import { CompiledProtocol, type CompileOptions } from './compiled-protocol.js';
import { NAME_PATTERN } from './document.js';

const namePattern = new RegExp(NAME_PATTERN);

/** Compiled protocols by file path and content hash, so a file is compiled once per process. */
const cache = new Map<string, CompiledProtocol>();

/** Path of the file that holds protocol `name` under `dir`. */
export function protocolPath(dir: string, name: string): string {
  if (!namePattern.test(name)) {
    throw bulkheadError('ERR_UNKNOWN_PROTOCOL', `"${name}" is not a valid protocol name (letters, digits, ".", "_", "-").`, { protocol: name });
  }
  return join(dir, `${name}.json`);
}

/**
 * Reads, checks and compiles one protocol file.
 * @param expectedName - when given, the document's `name` must equal it
 * @throws BulkheadError `ERR_UNKNOWN_PROTOCOL` (no file) or `ERR_INVALID_PROTOCOL`
 */
export function loadProtocolFile(file: string, expectedName?: string, options: CompileOptions = {}): CompiledProtocol {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw bulkheadError('ERR_UNKNOWN_PROTOCOL', `No protocol file at ${file}. Create it, or fix the protocol name.`, { file, protocol: expectedName }, err);
    }
    throw bulkheadError('ERR_INVALID_PROTOCOL', `Cannot read protocol file ${file}: ${(err as Error).message}`, { file }, err);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw bulkheadError('ERR_INVALID_PROTOCOL', `Protocol ${file} is not valid JSON: ${(err as Error).message}`, { source: file, pointer: '/' }, err);
  }
  const key = `${file}\0${text}`;
  let protocol = cache.get(key);
  if (protocol === undefined) {
    protocol = CompiledProtocol.from(value, file, options);
    cache.set(key, protocol);
  }
  if (expectedName !== undefined && protocol.name !== expectedName) {
    throw bulkheadError('ERR_INVALID_PROTOCOL', `Protocol file ${file} declares name "${protocol.name}" but was loaded as "${expectedName}"; the file name and "name" must agree.`, { source: file, pointer: '/name' });
  }
  return protocol;
}

/** Loads protocol `name` from `dir` (`<dir>/<name>.json`). */
export function loadProtocol(dir: string, name: string, options: CompileOptions = {}): CompiledProtocol {
  return loadProtocolFile(protocolPath(dir, name), name, options);
}
