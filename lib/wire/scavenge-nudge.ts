/**
 * Keeps the young generation moving while large frame bodies arrive, so V8
 * frees the bodies nobody holds with cheap scavenges instead of mark-compacts.
 *
 * Why: a received body is a fresh ArrayBuffer the caller owns (body-pool.ts).
 * Its bytes live outside the JS heap, and V8 11 (Node 20) scavenges when such
 * young bytes pile up; V8 13/14 (Node 24/26) do not. A process that receives
 * 64 KiB echoes allocates only ~9 KB of JS objects per message, so its young
 * generation fills slowly while tens of MB of dead bodies wait for it; external
 * memory pressure then starts a mark-compact, and V8's heap controller keeps
 * starting them (bench/README.md, "Round five: payloads" and "Round six"):
 * 41–59 mark-compacts per 10k echoes, 150–230 µs of the receiver's CPU per echo.
 * A library cannot set its host's V8 flags (`--max-semi-space-size` fixes it).
 *
 * What it does: for every fresh body, allocate short-lived JS arrays worth its
 * size (at most {@link NUDGE_MAX_BYTES}) times the young generation's semi-space
 * size over 8 MB ({@link nudgeRatio}, between 0.5 and 4). They die at once, so a
 * scavenge costs almost nothing for them, and a scavenge comes after ≤ ~7 MB of
 * fresh bodies (every ~100 messages of 64 KiB) and frees them. Nothing the
 * caller sees changes, and the arrays hold no data. Only on the V8 versions
 * where it pays ({@link nudgePaysOn}).
 *
 * Why that much, and why no array may outlive the call (round eight, bench/README.md
 * "Round eight: payload echo"): V8 13/14 count external memory allocated since
 * the last mark-compact as old-generation growth when they decide to start
 * marking (`OldGenerationSpaceAvailable`). After a mark-compact the allocation
 * limit is the live size + 8 MB + the young generation's capacity, and marking
 * starts once the room left is no more than that capacity: about 8 MB of fresh
 * bodies not yet freed by a scavenge start the next mark-compact. With a
 * nudge of half the body and an 8 MB semi-space, ~12 MB of bodies arrived
 * between scavenges, so a process that once had a mark-compact kept having
 * them (2–5 per 768 echoes of 64 KiB, 11–16 ms each): the "bad GC state". And
 * the last array used to be kept in a module variable, so it survived every
 * scavenge (64 KiB copied, then promoted); survivors are what makes V8 grow
 * the young generation (to 16–32 MB semi-spaces here), and a bigger young
 * generation lets still more bodies pile up between scavenges. Now each array
 * is held only while it is made, so the young generation grows slowly, and the
 * nudge grows with it (V8 still grows it over minutes of echoes: round eight).
 *
 * Limit: it keeps bulkhead's bodies from starting that loop; it does not end
 * one that something else started (another allocator's external-memory
 * pressure): once a mark-compact ran while little was promoted, V8 sets the
 * old-generation limit to the live size plus the young generation's capacity
 * and restarts marking at once (bench/README.md, "Round six").
 * @module
 */

/**
 * The V8 major versions where the nudge pays. Measured on the 64 KiB echo
 * (`bench/ab/worker.mjs bytes64k`, 4000 echoes, the client's CPU per echo and
 * its mark-compacts by `--trace-gc`; bench/README.md, round six, "the nudge by
 * V8 version"), without → with the nudge:
 * - V8 11 (Node 20): 5 of 7 runs fall into the mark-compact loop, 16–25
 *   mark-compacts and 125–171 µs; with it 1 and 60–97 µs. Its own scavenges
 *   on young ArrayBuffer bytes do not prevent the loop here.
 * - V8 12 (Node 22): never falls into it (1 mark-compact either way); the
 *   nudge only doubles the scavenges (26 → 54) and costs CPU (medians 53 → 62 µs): off.
 * - V8 13 (Node 24), V8 14 (Node 26): every run falls into it, 17–24
 *   mark-compacts and 122–161 µs; with it 1 and 59–76 µs.
 * An unknown (newer) V8 gets the nudge: its cost when useless is ~10–20 µs per
 * fresh 64 KiB body (64 KiB of arrays), the loop it prevents costs ~70 µs per body.
 */
export function nudgePaysOn(v8Major: number): boolean {
  return v8Major !== 12;
}

/** Whether this process's V8 gets the nudge ({@link nudgePaysOn}). */
export const NUDGE_ENABLED: boolean = nudgePaysOn(Number.parseInt(process.versions.v8, 10));

/**
 * The semi-space size at which the nudge allocates one byte per body byte: with 8 MB semi-spaces that keeps
 * ≤ ~7 MB of 64 KiB bodies between scavenges, below the ~8 MB that start a mark-compact (module comment).
 * 0.5 there left the loop running (round seven); 0.75–1.5 without a surviving array ended it (round eight).
 */
const SEMI_SPACE_PER_UNIT_RATIO = 8 * 1024 * 1024;
/** The ratio's bounds: ≥ round six's 0.5 for small young generations, ≤ 4 (V8's semi-spaces stop at 16–32 MB). */
const MIN_RATIO = 0.5;
const MAX_RATIO = 4;
/** Fresh bodies between two reads of the young generation's size (a read costs ~18 µs). */
const BODIES_PER_RATIO_READ = 64;
/** At most this many body bytes are nudged for: beyond a few MB, external-memory pressure is V8's right call. */
const NUDGE_MAX_BYTES = 1024 * 1024;
/** Elements per array: 64 KiB of 8-byte slots, below V8's large-object size. */
const CHUNK_ELEMENTS = 8192;
/** Bytes per element of a holey array (a tagged pointer). */
const ELEMENT_BYTES = 8;

/**
 * Holds each array while it is made, so no compiler can drop the allocation as unused; emptied before
 * the next one (whose allocation may start a scavenge) and at the end, so no nudge array survives one.
 */
let holder: unknown;
/** Array slots allocated so far (for tests: how much the nudge allocated). */
let allocatedSlots = 0;
/** The ratio in force, and the fresh bodies left before it is read again. */
let ratio = 1;
let bodiesUntilRead = 0;

/**
 * JS-heap bytes to allocate per fresh body byte when a semi-space holds `semiSpaceBytes`: in proportion, so
 * that the bodies arriving between two scavenges stay under ~7 MB whatever size V8 grew the young
 * generation to (it grows it as the bytes surviving scavenges add up, and never shrinks it while a process
 * is busy), bounded by {@link MIN_RATIO} and {@link MAX_RATIO}.
 */
export function nudgeRatio(semiSpaceBytes: number): number {
  return Math.min(MAX_RATIO, Math.max(MIN_RATIO, semiSpaceBytes / SEMI_SPACE_PER_UNIT_RATIO));
}

/** The young generation's semi-space size now, or undefined where `node:v8` cannot be had. */
function semiSpaceBytes(): number | undefined {
  // Loaded on first use, not at import: a helper that never receives a large body never pays for node:v8.
  const v8 = process.getBuiltinModule('node:v8') as typeof import('node:v8') | undefined;
  const newSpace = v8?.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
  // The new space's committed size covers both semi-spaces.
  return newSpace === undefined ? undefined : newSpace.space_size / 2;
}

/** The ratio for this body: read again from the young generation's size every {@link BODIES_PER_RATIO_READ} bodies. */
function currentRatio(): number {
  if (bodiesUntilRead > 0) {
    bodiesUntilRead--;
    return ratio;
  }
  bodiesUntilRead = BODIES_PER_RATIO_READ - 1;
  const semi = semiSpaceBytes();
  if (semi !== undefined) ratio = nudgeRatio(semi);
  return ratio;
}

/**
 * Allocates short-lived JS arrays worth `bodyBytes` (capped at {@link NUDGE_MAX_BYTES}) times the
 * ratio for the young generation's size ({@link nudgeRatio}), for the fresh body memory just allocated
 * off the heap; none of them outlives the call. See the module comment.
 */
export function nudgeYoungGeneration(bodyBytes: number): void {
  if (!NUDGE_ENABLED || bodyBytes <= 0) return;
  let elements = Math.floor((Math.min(bodyBytes, NUDGE_MAX_BYTES) * currentRatio()) / ELEMENT_BYTES);
  while (elements > 0) {
    const n = Math.min(elements, CHUNK_ELEMENTS);
    holder = undefined;
    holder = new Array<undefined>(n);
    allocatedSlots += n;
    elements -= n;
  }
  holder = undefined;
}

/** The ratio the last nudge used (for tests). */
export function nudgeRatioInForce(): number {
  return ratio;
}

/** Array slots the nudge allocated in this process so far (for tests). */
export function nudgedSlots(): number {
  return allocatedSlots;
}

/** What the nudge still holds once it returned: always undefined (for tests: no array survives). */
export function nudgeHeld(): unknown {
  return holder;
}
