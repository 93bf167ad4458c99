/**
 * Stage buffers of frame bodies being collected (frame-decoder.ts): the first part of a large body,
 * held until enough of it arrived for the body's own buffer. A full stage's bytes are copied into
 * the next buffer and the stage is kept here for the next large frame.
 *
 * Why: a stage is fresh memory per large frame otherwise, and fresh memory costs its page faults on
 * the first write. Measured (bench/ab/stage-cost.mjs, Node 20, pooled bodies, pinned): the decoder's CPU
 * per 1 MiB frame ~45 µs before stages, ~90 with a fresh 64 KiB stage per frame, ~50 with kept ones
 * (bench/README.md, round fourteen). Frames of one size take stages of the same sizes.
 *
 * Safety: a stage's bytes never leave the decoder (they are copied into the body), and a stage comes
 * back only after its decoder moved on to the next buffer, before the socket's next read is given
 * another buffer (socket-reads.ts calls the decoder, then asks it where to read). At most
 * {@link KEPT_STAGES} stages of at most {@link KEPT_STAGE_MAX_BYTES} each wait here, for the whole process:
 * an idle or hostile connection holds only the stage it is filling.
 * @module
 */
// The module's binding, not the global: on Node 20 the global `Buffer` is a getter, a function call per use.
import { Buffer } from 'node:buffer';

/** Stages kept for reuse, at most (a 16 MiB frame fills two: 64 KiB and 1 MiB). */
const KEPT_STAGES = 2;
/** Largest stage kept: a 16 MiB frame's (1 MiB), with room for an envelope's bytes. */
const KEPT_STAGE_MAX_BYTES = 1024 * 1024 + 64 * 1024;

const kept: Buffer[] = [];

/** A stage of `size` bytes: a kept one of that size, else fresh memory. Its contents are unspecified. */
export function takeStage(size: number): Buffer {
  for (let i = kept.length - 1; i >= 0; i--) {
    if (kept[i]!.length === size) return kept.splice(i, 1)[0]!;
  }
  return Buffer.allocUnsafeSlow(size);
}

/** A full stage whose bytes were copied out: kept for the next frame, the oldest dropped past the bound. */
export function keepStage(stage: Buffer): void {
  if (stage.length > KEPT_STAGE_MAX_BYTES) return;
  if (kept.length >= KEPT_STAGES) kept.shift();
  kept.push(stage);
}

/** Bytes of the stages kept (for tests). */
export function keptStageBytes(): number {
  return kept.reduce((sum, stage) => sum + stage.length, 0);
}
