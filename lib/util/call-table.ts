/**
 * A table of calls in flight keyed by call id, for the per-call bookkeeping of
 * both ends (the caller's pending calls, the service's running handlers, the
 * broker's call starts).
 *
 * Why not a `Map`: a Map whose keys keep rising (a new id per call, the old
 * one deleted) reallocates its hash table every few hundred calls, growing and
 * shrinking it as a batch of replies empties it and the next batch of calls
 * fills it again. Under pipelined load that pattern made V8's young-generation
 * collections keep and promote about a fifth of everything the broker
 * allocated per call (what the calls' values held), 9–11 MB per scavenge on
 * Node 24, so that the GC threads took a third again of the main thread's CPU
 * (bench/README.md, "Round six"). This table keeps its slots in two arrays
 * that never move while the calls in flight fit them: a slot per `id & mask`,
 * ids checked on every lookup. Ids that collide with a live call go to a small
 * Map on the side, so any ids work (a daemon's id ranges, a hostile peer's
 * choice), at a Map's cost for those only. Slots double up to
 * {@link CALL_TABLE_MAX_SLOTS} when a collision finds them half full. A grown
 * table is checked every {@link CALL_TABLE_SHRINK_CHECK_MS} by an unref'd timer
 * (armed when it first grows, holding it only weakly) and goes back to its
 * initial slots when it is found empty: nothing on the path of a call, and a
 * table that a batch of calls fills again pays one regrowth (a few µs) per check
 * at most.
 * @module
 */

/** Slots a table starts with. */
const INITIAL_SLOTS = 16;

/** Most slots a table grows to (32 KiB of ids and values); past this, colliding ids go to the side Map. */
export const CALL_TABLE_MAX_SLOTS = 4096;

/** How often a grown table is checked for being empty, to shrink back to its initial slots (ms). */
export const CALL_TABLE_SHRINK_CHECK_MS = 30_000;

/** Calls in flight by id (an integer from 1 to 2^32 - 1; 0 marks a free slot). */
export class CallTable<V> {
  private ids = new Uint32Array(INITIAL_SLOTS);
  private values: (V | undefined)[] = new Array<V | undefined>(INITIAL_SLOTS).fill(undefined);
  private mask = INITIAL_SLOTS - 1;
  /** Ids whose slot a live call held when they were added. */
  private side: Map<number, V> | undefined;
  /** Calls in the table. */
  size = 0;

  /** @param shrinkCheckMs how often a grown table checks whether it is empty, to shrink (tests shorten it) */
  constructor(private readonly shrinkCheckMs: number = CALL_TABLE_SHRINK_CHECK_MS) {}

  /** Slots allocated now (grows with calls in flight, back to the initial ones when found empty). */
  get capacity(): number {
    return this.ids.length;
  }

  /** Back to the initial slots when the table is empty; true when it is (then) at its initial slots. */
  shrinkIfEmpty(): boolean {
    if (this.ids.length === INITIAL_SLOTS) return true;
    if (this.size !== 0) return false;
    this.ids = new Uint32Array(INITIAL_SLOTS);
    this.values = new Array<V | undefined>(INITIAL_SLOTS).fill(undefined);
    this.mask = INITIAL_SLOTS - 1;
    this.side = undefined;
    return true;
  }

  /** The value stored for `id`, or undefined. */
  get(id: number): V | undefined {
    const slot = id & this.mask;
    if (this.ids[slot] === id && id !== 0) return this.values[slot];
    return this.side?.get(id);
  }

  /** True when `id` is in the table. */
  has(id: number): boolean {
    return (this.ids[id & this.mask] === id && id !== 0) || (this.side?.has(id) ?? false);
  }

  /** Stores `value` for `id` (replacing what was stored for it). */
  set(id: number, value: V): void {
    if (this.side !== undefined && this.side.has(id)) {
      this.side.set(id, value);
      return;
    }
    // An id the slots cannot hold (0 marks a free slot; not an integer of 32 bits) lives on the side.
    if (slotted(id)) {
      const slot = id & this.mask;
      const held = this.ids[slot]!;
      if (held === 0 || held === id) {
        if (held === 0) this.size++;
        this.ids[slot] = id;
        this.values[slot] = value;
        return;
      }
      if (this.ids.length < CALL_TABLE_MAX_SLOTS && this.size * 2 >= this.ids.length) {
        this.grow();
        this.set(id, value);
        return;
      }
    }
    (this.side ??= new Map()).set(id, value);
    this.size++;
  }

  /** Removes `id`; true when it was there. */
  delete(id: number): boolean {
    const slot = id & this.mask;
    if (this.ids[slot] === id && id !== 0) {
      this.ids[slot] = 0;
      this.values[slot] = undefined;
      this.size--;
      return true;
    }
    if (this.side?.delete(id) !== true) return false;
    this.size--;
    return true;
  }

  /** The ids in the table, ascending (for a caller's ids, the order they were made in until they wrap). */
  keys(): number[] {
    const keys: number[] = [];
    const ids = this.ids;
    for (let i = 0; i < ids.length; i++) if (ids[i] !== 0) keys.push(ids[i]!);
    if (this.side !== undefined) for (const id of this.side.keys()) keys.push(id);
    return keys.sort((a, b) => a - b);
  }

  /** The values in the table, in the order of {@link CallTable.keys}. */
  valuesInOrder(): V[] {
    return this.keys().map((id) => this.get(id)!);
  }

  /** Empties the table (its slots stay allocated). */
  clear(): void {
    this.ids.fill(0);
    this.values.fill(undefined);
    this.side = undefined;
    this.size = 0;
  }

  /** Twice the slots; live calls move to their new slot (or stay on the side when it is taken). */
  private grow(): void {
    const oldIds = this.ids;
    const oldValues = this.values;
    const side = this.side;
    const slots = oldIds.length * 2;
    if (oldIds.length === INITIAL_SLOTS) watchForShrink(this, this.shrinkCheckMs);
    this.ids = new Uint32Array(slots);
    this.values = new Array<V | undefined>(slots).fill(undefined);
    this.mask = slots - 1;
    this.side = undefined;
    this.size = 0;
    for (let i = 0; i < oldIds.length; i++) if (oldIds[i] !== 0) this.place(oldIds[i]!, oldValues[i] as V);
    if (side !== undefined) for (const [id, value] of side) this.place(id, value);
  }

  /** Puts an id known not to be in the table in its slot, or on the side (no growth). */
  private place(id: number, value: V): void {
    const slot = id & this.mask;
    if (this.ids[slot] === 0 && slotted(id)) {
      this.ids[slot] = id;
      this.values[slot] = value;
    } else (this.side ??= new Map()).set(id, value);
    this.size++;
  }
}

/** Checks `table` every `ms` until it shrank back (or was collected: the timer holds it weakly); never holds the loop. */
function watchForShrink(table: CallTable<unknown>, ms: number): void {
  const ref = new WeakRef(table);
  const check = (): void => {
    const live = ref.deref();
    if (live !== undefined && !live.shrinkIfEmpty()) setTimeout(check, ms).unref();
  };
  setTimeout(check, ms).unref();
}

/** True for an id a slot can hold: an integer from 1 to 2^32 - 1. */
function slotted(id: number): boolean {
  return id >= 1 && id <= 0xffffffff && Number.isInteger(id);
}
