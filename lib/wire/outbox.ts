/**
 * What a channel has queued for its stream, and how it is handed over.
 *
 * A frame is a 4-byte big-endian length and a body. Encoding gives the body
 * (cbor-x's output); copying it behind a header and then joining the frames
 * of a burst copied every small frame twice. Here a body is queued as it is,
 * its header as a number (the body length), and both are written straight
 * into the one buffer a burst is joined into: one copy per small frame. Big
 * buffers (≥ {@link COALESCE_COPY_LIMIT}: the large-bytes path's payloads, a
 * large forwarded body) are never copied; they go out with writev between the
 * joined runs, their header in the run before them.
 * @module
 */
import { Buffer } from 'node:buffer';
import { FRAME_HEADER_BYTES } from './frame-decoder.js';

/** Runs of small pieces are joined into buffers of about this size; pieces this big or more are written as they are. */
export const COALESCE_COPY_LIMIT = 64 * 1024;
/** A backlog waiting for 'drain' is compacted once this many entries arrived since the last compaction. */
const COMPACT_AFTER_ENTRIES = 512;
/**
 * ... or once this many views of an encoder's shared buffer did (runs of plain-encode.ts's 64 KiB slab, frames
 * queued raw): each keeps its whole buffer alive, so 512 of them let a peer that stopped reading hold 32 MiB while
 * its backlog counted a few KiB (round twelve, audit12: a stalled reader with other traffic between its frames).
 */
const COMPACT_AFTER_VIEWS = 16;

/** Bytes to write, or (a number) the length prefix of the body that follows: written when joined. */
type Entry = Buffer | number;

/** The queue of a FramedChannel: frames and raw chunks, in order. */
export class Outbox {
  private entries: Entry[] = [];
  /** Entries before this index are compacted already. */
  private compacted = 0;
  /** Bytes queued, length prefixes included. */
  bytes = 0;
  /** Frames and raw chunks queued (a body and its prefix count once). */
  count = 0;
  /** Views that may share a larger buffer (slab runs, raw frames) queued since the last compaction. */
  private views = 0;
  /**
   * The run of whole frames last queued by {@link Outbox.pushSlabFrame}: bytes
   * [runStart, runEnd) of runSlab, not yet in `entries`. Frames a burst encodes
   * lie one after the other in plain-encode.ts's slab, so the burst becomes one
   * view when it is closed: no view per frame and no copy to join them.
   */
  private runSlab: Buffer | undefined;
  private runStart = 0;
  private runEnd = 0;

  /** Queues a frame: `body` behind its 4-byte length prefix. `body` must not change until written. */
  pushBody(body: Buffer): number {
    if (this.runSlab !== undefined) this.closeRun();
    this.entries.push(body.length, body);
    this.count++;
    const size = FRAME_HEADER_BYTES + body.length;
    this.bytes += size;
    return size;
  }

  /** Queues bytes as they are (a prefix included by the caller). */
  pushRaw(bytes: Buffer): number {
    if (this.runSlab !== undefined) this.closeRun();
    this.views++;
    this.entries.push(bytes);
    this.count++;
    this.bytes += bytes.length;
    return bytes.length;
  }

  /**
   * Queues a whole frame (length prefix included) that lies in `slab` at
   * [start, end): it extends the open run when it starts where the run ends in
   * the same slab. Those bytes must never be written again (plain-encode.ts
   * only writes past `plainNext`), as a run's view is written without a copy.
   */
  pushSlabFrame(slab: Buffer, start: number, end: number): number {
    if (slab !== this.runSlab || start !== this.runEnd) {
      if (this.runSlab !== undefined) this.closeRun();
      this.runSlab = slab;
      this.runStart = start;
    }
    this.runEnd = end;
    this.count++;
    const size = end - start;
    this.bytes += size;
    return size;
  }

  /** Puts the open run in `entries` as one view. */
  private closeRun(): void {
    this.entries.push(this.runSlab!.subarray(this.runStart, this.runEnd));
    this.runSlab = undefined;
    this.views++;
  }

  /** Drops everything queued. */
  clear(): void {
    this.runSlab = undefined;
    this.entries = [];
    this.compacted = 0;
    this.views = 0;
    this.bytes = 0;
    this.count = 0;
  }

  /**
   * Takes everything queued as the buffers to write, in order: one joined
   * buffer when it all fits {@link COALESCE_COPY_LIMIT}, else joined runs of
   * small pieces with the big buffers between them, uncopied. (One buffer per
   * frame would hand the kernel a writev of as many buffers as there are
   * frames: after a stalled reader that can be a million, which Node 24+
   * fails with EINVAL.)
   * @param retained - the stream still holds earlier writes, so these wait in it too: a small piece is then copied
   *   even alone, rather than keep a whole shared buffer (a slab) alive for as long as the peer does not read
   */
  take(retained = false): Buffer[] {
    if (this.runSlab !== undefined) this.closeRun();
    const { entries, bytes } = this;
    this.clear();
    if (bytes <= COALESCE_COPY_LIMIT) return entries.length === 0 ? [] : [join(entries, 0, entries.length, bytes, retained)];
    const out: Buffer[] = [];
    coalesce(entries, 0, out, retained);
    return out;
  }

  /**
   * Joins runs of the small pieces queued since the last compaction, once
   * there are many: a backlog of small frames then costs its bytes, not two
   * heap entries per frame. Big buffers stay as they are.
   */
  compact(): void {
    if (this.runSlab !== undefined) this.closeRun();
    if (this.entries.length - this.compacted < COMPACT_AFTER_ENTRIES && this.views < COMPACT_AFTER_VIEWS) return;
    // The compacted prefix stays where it is; only what came after it is joined (copied: no view is kept).
    const tail = this.entries.splice(this.compacted);
    coalesce(tail, 0, this.entries as Buffer[], true);
    this.compacted = this.entries.length;
    this.views = 0;
  }
}

/** Appends `entries[from..]` to `out` as joined runs of about COALESCE_COPY_LIMIT bytes and uncopied big buffers; `copy`: a lone small piece is copied too. */
function coalesce(entries: Entry[], from: number, out: Buffer[], copy: boolean): void {
  let runStart = from;
  let runBytes = 0;
  for (let i = from; i < entries.length; i++) {
    const entry = entries[i]!;
    if (typeof entry !== 'number' && entry.length >= COALESCE_COPY_LIMIT) {
      if (i > runStart) out.push(join(entries, runStart, i, runBytes, copy));
      out.push(entry);
      runStart = i + 1;
      runBytes = 0;
      continue;
    }
    runBytes += typeof entry === 'number' ? FRAME_HEADER_BYTES : entry.length;
    if (runBytes >= COALESCE_COPY_LIMIT) {
      out.push(join(entries, runStart, i + 1, runBytes, copy));
      runStart = i + 1;
      runBytes = 0;
    }
  }
  if (runStart < entries.length) out.push(join(entries, runStart, entries.length, runBytes, copy));
}

/** `entries[from..to)` as one buffer of `bytes` bytes, prefixes written in place; a lone buffer is returned as it is unless `copy`. */
function join(entries: Entry[], from: number, to: number, bytes: number, copy: boolean): Buffer {
  const first = entries[from]!;
  if (to - from === 1 && typeof first !== 'number' && !copy) return first;
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (let i = from; i < to; i++) {
    const entry = entries[i]!;
    if (typeof entry === 'number') {
      out.writeUInt32BE(entry, at);
      at += FRAME_HEADER_BYTES;
    } else {
      out.set(entry, at);
      at += entry.length;
    }
  }
  return out;
}
