/**
 * A private uid/gid per service when the broker is root: two services never
 * share a uid, so they share no kernel state keyed by uid (keyrings, RLIMIT_NPROC
 * counts, signal and ptrace permission, file ownership of their scratch dirs).
 *
 * A service's uid is derived from its name (and the broker's root) by hashing
 * into the configured range, with linear probing inside this process, so it
 * is stable across relaunches and broker restarts, and different brokers on
 * one host give the same service the same uid rather than handing one uid to
 * two services.
 * @module
 */
import { createHash } from 'node:crypto';
import { bulkheadError } from '../errors.js';

/** A range of uids (and the same gids) reserved for helpers. */
export interface UidRange {
  /** First uid of the range. */
  first: number;
  /** How many uids it holds. */
  count: number;
}

/**
 * The default range: 65,536 ids at 1,509,949,440 (0x5A000000), far above
 * distribution users, systemd's DynamicUser (61184–65519) and the usual
 * /etc/subuid ranges (100000 + 65536·n for the first few thousand users).
 */
export const DEFAULT_UID_RANGE: Readonly<UidRange> = { first: 0x5a000000, count: 65536 };

const MAX_ID = 4_294_967_294;

let range: UidRange = { ...DEFAULT_UID_RANGE };
const assigned = new Map<string, number>();
const taken = new Map<number, string>();

/**
 * Sets the range helpers' uids come from (before the first launch; later
 * calls keep uids already assigned).
 * @throws BulkheadError `ERR_INVALID_OPTION` when the range is empty, reaches uid 0, or passes 4294967294
 */
export function configureUidPool(next: UidRange): void {
  if (!Number.isInteger(next.first) || !Number.isInteger(next.count) || next.first < 1 || next.count < 1 || next.first + next.count - 1 > MAX_ID) {
    throw bulkheadError('ERR_INVALID_OPTION', `uidRange ${JSON.stringify(next)} is not a range of valid uids: give integers with first ≥ 1, count ≥ 1 and first + count - 1 ≤ ${MAX_ID}.`, { option: 'uidRange' });
  }
  range = { first: next.first, count: next.count };
}

/**
 * The uid/gid of a service's helpers.
 * @param key - what identifies the service (its name, prefixed by the broker's root)
 */
export function uidFor(key: string): { uid: number; gid: number } {
  const known = assigned.get(key);
  if (known !== undefined) return { uid: known, gid: known };
  const hash = createHash('sha256').update(key).digest().readUInt32BE(0);
  for (let i = 0; i < range.count; i++) {
    const uid = range.first + ((hash + i) % range.count);
    if (uid === 65534) continue; // nobody stays nobody's
    if (!taken.has(uid)) {
      taken.set(uid, key);
      assigned.set(key, uid);
      return { uid, gid: uid };
    }
  }
  throw bulkheadError('ERR_INVALID_OPTION', `The helper uid range ${range.first}–${range.first + range.count - 1} is exhausted (${range.count} services); configure a larger uidRange.`, { option: 'uidRange' });
}
