/**
 * Caps on connections that have not authenticated yet: so many per peer uid,
 * so many in all. A newcomer is always admitted; when a cap is reached the
 * oldest pending connection of the uid at fault is evicted instead (the
 * newcomer's own uid when it is over its per-uid cap, otherwise the uid that
 * holds the most). An honest client authenticates in milliseconds, so to keep
 * it out an attacker must open connections faster than that, and one uid can
 * never hold more than its share of the daemon's descriptors. (OpenSSH's
 * MaxStartups refuses newcomers instead, which lets a flood lock everyone out.)
 *
 * Pure bookkeeping, no I/O: the daemon closes whatever {@link AdmissionGate.admit} evicts.
 * @module
 */

/** Why a pending connection was evicted; carried as `data.reason` of its refusal. */
export type EvictionReason = 'per-uid-limit' | 'total-limit';

/** Caps of an {@link AdmissionGate}. */
export interface AdmissionLimits {
  /** Unauthenticated connections from one uid. */
  perUid: number;
  /** Unauthenticated connections in all. */
  total: number;
}

/** Tracks unauthenticated connections per uid (insertion order = age). */
export class AdmissionGate<T> {
  private readonly byUid = new Map<number, Set<T>>();
  private readonly uidOf = new Map<T, number>();

  constructor(private readonly limits: AdmissionLimits) {}

  /** Connections pending now. */
  get size(): number {
    return this.uidOf.size;
  }

  /** Connections pending now from `uid`. */
  pendingFor(uid: number): number {
    return this.byUid.get(uid)?.size ?? 0;
  }

  /**
   * Admits `conn` from `uid` and returns the connections that must be closed
   * to keep within the caps (oldest first), each with the cap that evicted it.
   */
  admit(conn: T, uid: number): Array<{ conn: T; reason: EvictionReason }> {
    const evicted: Array<{ conn: T; reason: EvictionReason }> = [];
    let own = this.byUid.get(uid);
    if (own === undefined) this.byUid.set(uid, (own = new Set()));
    while (own.size >= this.limits.perUid) evicted.push({ conn: this.evictOldest(uid), reason: 'per-uid-limit' });
    while (this.uidOf.size >= this.limits.total) evicted.push({ conn: this.evictOldest(this.largestUid(uid)), reason: 'total-limit' });
    this.byUid.set(uid, own); // an eviction may have dropped the uid's emptied set
    own.add(conn);
    this.uidOf.set(conn, uid);
    return evicted;
  }

  /** Every pending connection, oldest first per uid. */
  all(): T[] {
    return [...this.uidOf.keys()];
  }

  /** Forgets `conn` (it authenticated, or closed). Idempotent. */
  release(conn: T): void {
    const uid = this.uidOf.get(conn);
    if (uid === undefined) return;
    this.uidOf.delete(conn);
    const set = this.byUid.get(uid)!;
    set.delete(conn);
    if (set.size === 0) this.byUid.delete(uid);
  }

  private evictOldest(uid: number): T {
    const set = this.byUid.get(uid)!;
    const oldest = set.values().next().value as T;
    this.release(oldest);
    return oldest;
  }

  /** The uid with the most pending connections (ties: the newcomer's own uid, so it pays first). */
  private largestUid(preferred: number): number {
    let best = preferred;
    let most = this.pendingFor(preferred);
    for (const [uid, set] of this.byUid) {
      if (set.size > most) {
        best = uid;
        most = set.size;
      }
    }
    return best;
  }
}
