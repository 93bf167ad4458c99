/**
 * Runs one of the broker's cache writers (lib/broker/code-cache.ts,
 * lib/broker/compile-cache.ts): a short node process, unsandboxed as the
 * broker, whose stdout says what it wrote. Never throws and never leaves an
 * 'error' without a listener: a failed spawn (EMFILE, ENOENT, ...) just means
 * no cache this time. Neither the child nor its stdout pipe keeps the broker's
 * process alive.
 * @module
 */
import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';

/** What the writer printed, with its exit code (null when it did not start or was killed). */
export interface WriterResult {
  readonly code: number | null;
  readonly out: string;
}

/** Spawns `nodePath args` with `env` plus PATH and TMPDIR; settles when it ends, or at once with code null when it cannot start. */
export function runWriter(nodePath: string, args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<WriterResult> {
  return new Promise<WriterResult>((resolve) => {
    try {
      const child = spawn(nodePath, args, {
        env: { ...env, PATH: process.env['PATH'] ?? '/usr/bin:/bin', TMPDIR: tmpdir() },
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      // First: on EMFILE/ENFILE spawn returns with no stdout and reports 'error' later.
      child.once('error', () => resolve({ code: null, out: '' }));
      let out = '';
      const stdout = child.stdout as Socket | null; // null after EMFILE/ENFILE, whatever the types say
      stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.once('close', (code) => resolve({ code, out }));
      // child.unref() alone leaves the piped stdout holding the loop.
      child.unref();
      stdout?.unref(); // a pipe is a net.Socket
    } catch {
      resolve({ code: null, out: '' });
    }
  });
}
