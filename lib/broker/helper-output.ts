/**
 * A helper's stdout and stderr as the broker keeps them: each read into a bounded tail of lines
 * (the last of stderr explain its exit) and every line passed to the supervisor's log hook.
 *
 * Both pipes are read into one buffer that every helper's output shares (each read is split into
 * lines before the next, lib/util/line-ring.ts), not into a new buffer per read: a helper that
 * floods its output makes the broker allocate its lines' strings and nothing per read, so the
 * broker's memory does not wait on the GC to free read buffers (external memory, whose backing
 * stores a background thread frees) or decoded chunks.
 * @module
 */
import { Buffer } from 'node:buffer';
import type { ChildProcess } from 'node:child_process';
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { LineRing } from '../util/line-ring.js';
import { readIntoOwnBuffers } from '../wire/socket-reads.js';
import type { HelperHooks } from './helper-spawn-options.js';

/** Lines of stderr kept for the exit report. */
const STDERR_LINES = 50;
/** Lines of stdout kept. */
const STDOUT_LINES = 20;
/** Longer lines are cut (and marked "…"). */
const MAX_LINE_BYTES = 4096;
/** Size of the read buffer all helpers' output shares (Node's own read size). */
const OUTPUT_READ_BYTES = 64 * 1024;

let outputReadBuffer: Buffer | undefined;

/** The bounded tails of one helper's stdout and stderr. */
export class HelperOutput {
  private readonly stderr: LineRing;
  private readonly stdout: LineRing;

  /** Starts reading `child`'s stdout and stderr; `hooks.log` gets every line. */
  constructor(child: ChildProcess, hooks: Pick<HelperHooks, 'log'>) {
    const pid = child.pid ?? -1;
    this.stderr = new LineRing(STDERR_LINES, MAX_LINE_BYTES, (line) => hooks.log('stderr', line, pid));
    this.stdout = new LineRing(STDOUT_LINES, MAX_LINE_BYTES, (line) => hooks.log('stdout', line, pid));
    if (child.stderr !== null) readLines(child.stderr, this.stderr);
    if (child.stdout !== null) readLines(child.stdout, this.stdout);
  }

  /** The last lines of stderr, oldest first. */
  stderrTail(): string[] {
    return this.stderr.tail();
  }

  /** Flushes unterminated last lines, once both streams drained. */
  end(): void {
    this.stderr.end();
    this.stdout.end();
  }
}

/** Feeds what `stream` reads into `ring`: into the shared buffer where the stream is a socket Node lets us read so, else by 'data'. */
function readLines(stream: Readable, ring: LineRing): void {
  outputReadBuffer ??= Buffer.allocUnsafeSlow(OUTPUT_READ_BYTES);
  const shared = outputReadBuffer;
  // Called right after spawn, before the first read: nothing is buffered in the stream yet.
  // A view of the bytes read, so the line search stops at them (Buffer#indexOf has no end).
  if (stream instanceof Socket && readIntoOwnBuffers(stream, () => shared, (n, buffer) => ring.push(n === buffer.length ? buffer : buffer.subarray(0, n)))) return;
  stream.on('data', (chunk: Buffer) => ring.push(chunk));
}
