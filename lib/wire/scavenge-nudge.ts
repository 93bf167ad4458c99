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
 * size (at most {@link NUDGE_MAX_BYTES} per body). They die at once, so a
 * scavenge costs almost nothing for them, and the young generation now fills
 * at least as fast as body bytes arrive: a scavenge comes every ~100 messages
 * of 64 KiB and frees their bodies. Nothing the caller sees changes, and the
 * arrays hold no data. Only on the V8 versions where it pays ({@link nudgePaysOn}).
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
 * is held only while it is made, and the young generation stays small.
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
 * JS-heap bytes allocated per byte of fresh body memory: with an 8 MB semi-space, ≤ ~7 MB of 64 KiB bodies
 * arrive between scavenges, below the ~8 MB that start a mark-compact (module comment). 0.5 left the loop
 * running (round seven); 0.75–1.5 without a surviving array ended it (bench/README.md, round eight).
 */
const NUDGE_RATIO = 1;
/** At most this many JS-heap bytes per body: beyond a few MB, external-memory pressure is V8's right call. */
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

/**
 * Allocates short-lived JS arrays worth `bodyBytes` (capped), the fresh body
 * memory just allocated off the heap; none of them outlives the call. See the
 * module comment.
 */
export function nudgeYoungGeneration(bodyBytes: number): void {
  if (!NUDGE_ENABLED) return;
  let elements = Math.floor(Math.min(bodyBytes * NUDGE_RATIO, NUDGE_MAX_BYTES) / ELEMENT_BYTES);
  while (elements > 0) {
    const n = Math.min(elements, CHUNK_ELEMENTS);
    holder = undefined;
    holder = new Array<undefined>(n);
    allocatedSlots += n;
    elements -= n;
  }
  holder = undefined;
}

/** Array slots the nudge allocated in this process so far (for tests). */
export function nudgedSlots(): number {
  return allocatedSlots;
}

/** What the nudge still holds once it returned: always undefined (for tests: no array survives). */
export function nudgeHeld(): unknown {
  return holder;
}
