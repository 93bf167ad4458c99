/**
 * A helper's stdout and stderr as the broker keeps them: each read into a bounded tail of lines
 * (the last of stderr explain its exit) and every line passed to the supervisor's log hook.
 * Split from helper-process.ts.
 * @module
 */
import type { ChildProcess } from 'node:child_process';
import { LineRing } from '../util/line-ring.js';
import type { HelperHooks } from './helper-spawn-options.js';

/** Lines of stderr kept for the exit report. */
const STDERR_LINES = 50;
/** Lines of stdout kept. */
const STDOUT_LINES = 20;
/** Longer lines are cut (and marked "…"). */
const MAX_LINE_BYTES = 4096;

/** The bounded tails of one helper's stdout and stderr. */
export class HelperOutput {
  private readonly stderr: LineRing;
  private readonly stdout: LineRing;

  /** Starts reading `child`'s stdout and stderr; `hooks.log` gets every line. */
  constructor(child: ChildProcess, hooks: Pick<HelperHooks, 'log'>) {
    const pid = child.pid ?? -1;
    this.stderr = new LineRing(STDERR_LINES, MAX_LINE_BYTES, (line) => hooks.log('stderr', line, pid));
    this.stdout = new LineRing(STDOUT_LINES, MAX_LINE_BYTES, (line) => hooks.log('stdout', line, pid));
    child.stderr?.on('data', (chunk: Buffer) => this.stderr.push(chunk));
    child.stdout?.on('data', (chunk: Buffer) => this.stdout.push(chunk));
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
