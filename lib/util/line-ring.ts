/**
 * Splits a byte stream into lines and keeps the last few, bounded in count
 * and in bytes per line, so a helper that floods stderr cannot grow the
 * broker's memory.
 * @module
 */
import { StringDecoder } from 'node:string_decoder';

/** Bounded tail of a text stream. */
export class LineRing {
  private lines: string[] = [];
  private partial = '';
  /** Keeps a UTF-8 sequence split between two reads whole. */
  private readonly decoder = new StringDecoder('utf8');

  /**
   * @param maxLines - lines kept
   * @param maxLineBytes - longer lines are cut and marked with "…"
   * @param onLine - called for every complete line
   */
  constructor(private readonly maxLines = 50, private readonly maxLineBytes = 4096, private readonly onLine?: (line: string) => void) {}

  /** Feeds a chunk of the stream. */
  push(chunk: Buffer | string): void {
    const text = this.partial + (typeof chunk === 'string' ? chunk : this.decoder.write(chunk));
    const parts = text.split('\n');
    const last = parts.pop() ?? '';
    this.partial = last.length > this.maxLineBytes ? last.slice(0, this.maxLineBytes) : last;
    for (const line of parts) this.add(line);
  }

  /** Flushes an unterminated last line. */
  end(): void {
    this.partial += this.decoder.end();
    if (this.partial !== '') this.add(this.partial);
    this.partial = '';
  }

  /** The kept lines, oldest first. */
  tail(count = this.maxLines): string[] {
    return this.lines.slice(-count);
  }

  private add(raw: string): void {
    const line = raw.length > this.maxLineBytes ? `${raw.slice(0, this.maxLineBytes)}…` : raw;
    this.lines.push(line);
    if (this.lines.length > this.maxLines) this.lines.splice(0, this.lines.length - this.maxLines);
    this.onLine?.(line);
  }
}
