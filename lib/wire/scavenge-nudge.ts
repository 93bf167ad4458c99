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
 * What it does: for every fresh body, allocate short-lived JS arrays worth half
 * its size (at most {@link NUDGE_MAX_BYTES} per body). They die at once, so a
 * scavenge costs almost nothing for them, and the young generation now fills
 * at half the rate body bytes arrive: a scavenge comes every few hundred
 * messages and frees their bodies. Measured on Node 20, 24, 26 (64 KiB echo): 1
 * mark-compact instead of 41–59, 66–73 µs of CPU per echo instead of 179–228
 * (medians, `bench/ab/ab.mjs bytes64k`).
 * Nothing the caller sees changes, and the arrays hold no data. Only on the
 * V8 versions where it pays ({@link nudgePaysOn}).
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
 * An unknown (newer) V8 gets the nudge: its cost when useless is ~9 µs per
 * fresh 64 KiB body, the loop it prevents costs ~70 µs per body.
 */
export function nudgePaysOn(v8Major: number): boolean {
  return v8Major !== 12;
}

/** Whether this process's V8 gets the nudge ({@link nudgePaysOn}). */
export const NUDGE_ENABLED: boolean = nudgePaysOn(Number.parseInt(process.versions.v8, 10));

/** JS-heap bytes allocated per byte of fresh body memory (Node 24 needed ≥ 1/16, Node 26 ≥ 1/2). */
const NUDGE_RATIO = 0.5;
/** At most this many JS-heap bytes per body: beyond a few MB, external-memory pressure is V8's right call. */
const NUDGE_MAX_BYTES = 1024 * 1024;
/** Elements per array: 64 KiB of 8-byte slots, below V8's large-object size. */
const CHUNK_ELEMENTS = 8192;
/** Bytes per element of a holey array (a tagged pointer). */
const ELEMENT_BYTES = 8;

/** The last array, kept so no compiler can drop the allocation as unused. */
let sink: unknown;

/**
 * Allocates short-lived JS arrays worth half of `bodyBytes` (capped), the
 * fresh body memory just allocated off the heap. See the module comment.
 */
export function nudgeYoungGeneration(bodyBytes: number): void {
  if (!NUDGE_ENABLED) return;
  let elements = Math.floor(Math.min(bodyBytes * NUDGE_RATIO, NUDGE_MAX_BYTES) / ELEMENT_BYTES);
  while (elements > 0) {
    const n = Math.min(elements, CHUNK_ELEMENTS);
    sink = new Array<undefined>(n);
    elements -= n;
  }
}

/** The last array allocated (for tests: the nudge really allocates). */
export function lastNudge(): unknown {
  return sink;
}
