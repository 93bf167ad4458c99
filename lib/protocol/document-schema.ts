/**
 * The protocol file format as a value, for the public API: the broker side and tools import it; a helper's runtime
 * does not, so it makes the object only when it checks an untrusted document (lib/protocol/document.ts).
 * @module
 */
import { protocolDocumentSchema } from './document.js';

/** The JSON Schema every protocol file is checked against. */
export const PROTOCOL_DOCUMENT_SCHEMA = protocolDocumentSchema();
