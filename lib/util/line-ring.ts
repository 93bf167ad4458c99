/**
 * Splits a byte stream into lines and keeps the last few, bounded in count
 * and in bytes per line, so a helper that floods stderr cannot grow the
 * broker's memory.
 *
 * It works on the bytes as read: a line that lies whole in one read is decoded
 * from there, once, and only the start of a line that goes on in the next read
 * is copied, into one buffer of the line's maximum size. So a read costs no
 * allocation of its own (no decoded chunk, no joined text, no split array):
 * what a flood leaves for the GC is the lines' own strings, short-lived, which
 * the young generation's scavenges take at the pace they are made.
 * @module
 */
import { Buffer } from 'node:buffer';

const NEWLINE = 0x0a;

/** Bounded tail of a text stream (UTF-8). */
export class LineRing {
  /** The kept lines: a ring, `count` of them ending before `next`. */
  private readonly lines: string[] = [];
  private next = 0;
  private count = 0;
  /**
   * The start of a line that goes on in a later read: up to one byte more than a line keeps (a full one is cut,
   * and that byte tells where its last character starts); the rest of a longer line is dropped up to its newline.
   */
  private partial: Buffer | undefined;
  private partialBytes = 0;

  /**
   * @param maxLines - lines kept
   * @param maxLineBytes - longer lines are cut (at a character boundary) and marked with "…"
   * @param onLine - called for every complete line
   */
  constructor(private readonly maxLines = 50, private readonly maxLineBytes = 4096, private readonly onLine?: (line: string) => void) {}

  /** Feeds the bytes `chunk[start, end)` of the stream; they may be overwritten once it returns. */
  push(chunk: Buffer, start = 0, end = chunk.length): void {
    let from = start;
    while (from < end) {
      const newline = chunk.indexOf(NEWLINE, from);
      if (newline === -1 || newline >= end) {
        this.hold(chunk, from, end);
        return;
      }
      if (this.partialBytes === 0) this.emit(chunk, from, newline);
      else {
        this.hold(chunk, from, newline);
        this.emitHeld();
      }
      from = newline + 1;
    }
  }

  /** Flushes an unterminated last line. */
  end(): void {
    if (this.partialBytes > 0) this.emitHeld();
  }

  /** The kept lines, oldest first. */
  tail(count = this.maxLines): string[] {
    const n = Math.min(count, this.count);
    const out: string[] = [];
    for (let i = n; i > 0; i--) out.push(this.lines[(this.next - i + this.maxLines) % this.maxLines]!);
    return out;
  }

  /** Copies `chunk[from, to)` after what is held of the current line, as far as the line's bound. */
  private hold(chunk: Buffer, from: number, to: number): void {
    const take = Math.min(this.maxLineBytes + 1 - this.partialBytes, to - from);
    if (take <= 0) return;
    this.partial ??= Buffer.allocUnsafe(this.maxLineBytes + 1);
    chunk.copy(this.partial, this.partialBytes, from, from + take);
    this.partialBytes += take;
  }

  private emitHeld(): void {
    const bytes = this.partialBytes;
    this.partialBytes = 0;
    this.emit(this.partial!, 0, bytes);
  }

  /** A complete line `buf[from, to)`: cut to its bound (not inside a character), decoded once, kept and reported. */
  private emit(buf: Buffer, from: number, to: number): void {
    if (to - from <= this.maxLineBytes) {
      this.add(buf.toString('utf8', from, to));
      return;
    }
    let cut = from + this.maxLineBytes;
    // buf[cut] is the first byte left out: when it continues a character, that character starts before it and goes too.
    while (cut > from && (buf[cut]! & 0xc0) === 0x80) cut--;
    this.add(`${buf.toString('utf8', from, cut)}…`);
  }

  private add(line: string): void {
    this.lines[this.next] = line;
    this.next = (this.next + 1) % this.maxLines;
    if (this.count < this.maxLines) this.count++;
    this.onLine?.(line);
  }
}
