/**
 * The hello check with protocol evolution: two ends whose schema hashes are
 * equal speak the same protocol; when they differ, the ends may still talk if
 * the peer sent its protocol document (`info.document`) and
 * {@link diffProtocols} finds no breaking change from the client's version to
 * the service's. Anything else is ERR_PROTOCOL_MISMATCH naming the reason.
 * @module
 */
import { bulkheadError, type BulkheadError } from '../errors.js';
import type { HelloEnvelope, HelloRole } from '../wire/envelope.js';
import type { CompiledProtocol } from './compiled-protocol.js';
import { checkProtocolDocument, type ProtocolDocument } from './document.js';
import { schemaHash } from './hash.js';
import { diffProtocols } from './protocol-diff.js';

/** What {@link judgePeerHello} decided. */
export type HelloVerdict =
  | { ok: true; /** The peer speaks another, compatible version. */ evolved: boolean }
  | { ok: false; error: BulkheadError<'ERR_PROTOCOL_MISMATCH'> };

/**
 * Judges the peer's hello against our own protocol.
 * @param ownRole - which end we are
 * @param fix - what the user should do on a mismatch (ends the message)
 */
export function judgePeerHello(own: CompiledProtocol, ownRole: HelloRole, hello: HelloEnvelope, fix: string): HelloVerdict {
  const peerRole: HelloRole = ownRole === 'client' ? 'service' : 'client';
  const theirs = `${hello.protocol}@${hello.version} (schema ${hello.schemaHash.slice(0, 12)})`;
  const ours = `${own.name}@${own.version} (schema ${own.hash.slice(0, 12)})`;
  const data = { expected: { protocol: own.name, version: own.version, schemaHash: own.hash }, actual: { protocol: hello.protocol, version: hello.version, schemaHash: hello.schemaHash, role: hello.role } };
  const refuse = (why: string, extra: Record<string, unknown> = {}): HelloVerdict => ({
    ok: false,
    error: bulkheadError('ERR_PROTOCOL_MISMATCH', `The ${peerRole} speaks ${theirs}, this ${ownRole} ${ours}: ${why}. ${fix}`, { ...data, ...extra }),
  });
  if (hello.role !== peerRole) return refuse(`its hello says it is a ${hello.role}`);
  if (hello.protocol !== own.name) return refuse('these are different protocols');
  if (hello.schemaHash === own.hash) return { ok: true, evolved: false };
  const document = hello.info['document'];
  if (document === undefined) return refuse('the schemas differ and the peer did not send its protocol document to judge compatibility');
  let peerDoc: ProtocolDocument;
  try {
    peerDoc = checkProtocolDocument(document, `the ${peerRole}'s protocol`);
  } catch (err) {
    return refuse(`its protocol document is invalid (${(err as Error).message})`);
  }
  if (schemaHash(peerDoc) !== hello.schemaHash) return refuse('its protocol document does not match its schema hash');
  const [clientDoc, serviceDoc] = ownRole === 'client' ? [own.document, peerDoc] : [peerDoc, own.document];
  const { firstBreaking } = diffProtocols(clientDoc, serviceDoc);
  if (firstBreaking !== undefined) {
    return refuse(`a breaking difference at ${firstBreaking.pointer}: ${firstBreaking.change} (run \`bulkhead protocol diff\` on the client's and the service's files for every change)`, { pointer: firstBreaking.pointer, change: firstBreaking.change });
  }
  return { ok: true, evolved: true };
}
