/**
 * Differences between two versions of a protocol, each marked compatible or
 * breaking (docs/protocols.md, "Versioning"). OLD is the protocol a client
 * was built with, NEW the one the service serves:
 * - methods and events may be added, not removed; a method the client knows
 *   and the service lacks is breaking;
 * - what the service receives (params, `accepts` items) may only widen;
 * - what the client receives (result, `yields` items, event payloads) may
 *   only narrow;
 * - a method may not become or stop being a stream (`yields`/`accepts`
 *   added or removed);
 * - descriptions, declared error codes and the version string are
 *   informational.
 * @module
 */
import type { ProtocolDocument } from './document.js';
import { escapePointer } from './ajv-pointer.js';
import { compareSchemas, type SchemaChange } from './schema-compat.js';

/** One change between two protocol versions. */
export type ProtocolChange = SchemaChange;

/** The result of {@link diffProtocols}. */
export interface ProtocolDiff {
  /** Every change, in document order (protocol, methods, events, errors). */
  changes: ProtocolChange[];
  /** The first breaking change, if any. */
  firstBreaking: ProtocolChange | undefined;
}

/** A stream method's result when it declares none. */
const NULL_RESULT = { type: 'null' };

/** Compares protocol `oldDoc` (the client's) with `newDoc` (the service's). */
export function diffProtocols(oldDoc: ProtocolDocument, newDoc: ProtocolDocument): ProtocolDiff {
  const changes: ProtocolChange[] = [];
  if (oldDoc.name !== newDoc.name) changes.push({ pointer: '/name', change: `protocol name ${oldDoc.name} → ${newDoc.name}: a different protocol`, breaking: true });
  if (oldDoc.version !== newDoc.version) changes.push({ pointer: '/version', change: `version ${oldDoc.version} → ${newDoc.version}`, breaking: false });
  if (oldDoc.description !== newDoc.description) changes.push({ pointer: '/description', change: 'description changed', breaking: false });

  const oldMethods = oldDoc.methods;
  const newMethods = newDoc.methods;
  for (const name of union(Object.keys(oldMethods), Object.keys(newMethods))) {
    const at = `/methods/${escapePointer(name)}`;
    const before = Object.hasOwn(oldMethods, name) ? oldMethods[name] : undefined;
    const after = Object.hasOwn(newMethods, name) ? newMethods[name] : undefined;
    if (after === undefined) {
      changes.push({ pointer: at, change: `method "${name}" removed: clients that call it would fail`, breaking: true });
      continue;
    }
    if (before === undefined) {
      changes.push({ pointer: at, change: `method "${name}" added`, breaking: false });
      continue;
    }
    if (before.description !== after.description) changes.push({ pointer: `${at}/description`, change: 'description changed', breaking: false });
    let retyped = false;
    for (const part of ['yields', 'accepts'] as const) {
      if ((before[part] === undefined) !== (after[part] === undefined)) {
        retyped = true;
        changes.push({ pointer: `${at}/${part}`, change: `"${part}" ${before[part] === undefined ? 'added' : 'removed'}: method "${name}" changed its kind of call`, breaking: true });
      }
    }
    changes.push(...compareSchemas(before.params, after.params, `${at}/params`, 'widen'));
    const oldResult = before.result ?? (before.yields !== undefined || before.accepts !== undefined ? NULL_RESULT : undefined);
    const newResult = after.result ?? (after.yields !== undefined || after.accepts !== undefined ? NULL_RESULT : undefined);
    changes.push(...compareSchemas(oldResult, newResult, `${at}/result`, 'narrow'));
    if (!retyped) {
      if (before.yields !== undefined) changes.push(...compareSchemas(before.yields, after.yields, `${at}/yields`, 'narrow'));
      if (before.accepts !== undefined) changes.push(...compareSchemas(before.accepts, after.accepts, `${at}/accepts`, 'widen'));
    }
  }

  const oldEvents = oldDoc.events ?? {};
  const newEvents = newDoc.events ?? {};
  for (const name of union(Object.keys(oldEvents), Object.keys(newEvents))) {
    const at = `/events/${escapePointer(name)}`;
    const before = Object.hasOwn(oldEvents, name) ? oldEvents[name] : undefined;
    const after = Object.hasOwn(newEvents, name) ? newEvents[name] : undefined;
    if (after === undefined) changes.push({ pointer: at, change: `event "${name}" removed: clients listening for it would never hear it`, breaking: true });
    else if (before === undefined) changes.push({ pointer: at, change: `event "${name}" added (older clients ignore it)`, breaking: false });
    else {
      if (before.description !== after.description) changes.push({ pointer: `${at}/description`, change: 'description changed', breaking: false });
      changes.push(...compareSchemas(before.payload, after.payload, `${at}/payload`, 'narrow'));
    }
  }

  const oldErrors = oldDoc.errors ?? {};
  const newErrors = newDoc.errors ?? {};
  for (const code of union(Object.keys(oldErrors), Object.keys(newErrors))) {
    const inOld = Object.hasOwn(oldErrors, code);
    const inNew = Object.hasOwn(newErrors, code);
    if (inOld && inNew) continue;
    changes.push({ pointer: `/errors/${escapePointer(code)}`, change: `error code ${code} ${inNew ? 'declared' : 'no longer declared'}`, breaking: false });
  }
  return { changes, firstBreaking: changes.find((c) => c.breaking) };
}

function union(a: string[], b: string[]): string[] {
  return [...new Set([...a, ...b])];
}
