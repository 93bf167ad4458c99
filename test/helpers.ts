/**
 * Shared paths for the test suite. Tests are compiled to dist/test; fixtures
 * (plain JS helpers, protocols, profiles) stay in test/fixtures.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Absolute path of test/fixtures (a broker root: protocols/, sandbox-profiles/, *.js helpers). */
export const FIXTURES = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));

/** Absolute path of the repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

import { BulkheadError, isBulkheadError } from 'bulkhead';
import type { TestBroker } from 'bulkhead/testing';

/** Awaits a promise that must reject with a bulkhead error, and returns that error. */
export async function rejection(promise: Promise<unknown>): Promise<BulkheadError> {
  try {
    await promise;
  } catch (err) {
    if (isBulkheadError(err)) return err;
    throw err;
  }
  throw new Error('expected the promise to reject');
}

/**
 * Records every uncaught exception and unhandled rejection while this test
 * file runs, for "nothing threw" checks; the listeners go at teardown.
 */
export function recordUncaught(): unknown[] {
  const seen: unknown[] = [];
  const record = (err: unknown) => seen.push(err);
  process.on('uncaughtException', record);
  process.on('unhandledRejection', record);
  t.teardown(() => {
    process.off('uncaughtException', record);
    process.off('unhandledRejection', record);
  });
  return seen;
}

/** The built `bulkhead` command. */
export const CLI = join(REPO_ROOT, 'dist', 'lib', 'cli', 'main.js');

/** What one run of the CLI did. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `bulkhead ARGS...` to completion (from the repository root unless `cwd` says otherwise). */
export function runCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: options.cwd ?? REPO_ROOT, ...(options.env === undefined ? {} : { env: options.env }) }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

/** True while a process with this pid exists (EPERM: it exists, just not ours to signal). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The assertions {@link expectCode} uses (a test or a subtest). */
type Asserts = Pick<typeof t, 'ok' | 'equal' | 'fail'>;

/** Runs `fn`, which must throw a BulkheadError with exactly `code`; returns it. */
export function expectCode(t: Asserts, fn: () => unknown, code: string, what: string = code): BulkheadError | undefined {
  try {
    fn();
  } catch (err) {
    t.ok(err instanceof BulkheadError, `${what}: throws a BulkheadError`);
    t.equal((err as BulkheadError).code, code, what);
    return err as BulkheadError;
  }
  t.fail(`${what}: expected ${code}, nothing was thrown`);
  return undefined;
}

/**
 * Awaits `work()` with the event loop held open meanwhile: for work that only unref'd children and pipes keep
 * going (the broker's cache writers, lib/broker/writer-process.ts), which would otherwise let the test process end.
 */
export async function withLoopOpen<T>(work: () => Promise<T>): Promise<T> {
  const keep = setInterval(() => undefined, 100);
  try {
    return await work();
  } finally {
    clearInterval(keep);
  }
}

/** Deterministic PRNG (mulberry32): numbers in [0, 1) from a seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Polls (bounded) until `pid` (or, negative, a process group) no longer exists;
 * true when it is gone. For processes that are not our children, whose exit
 * has no event to await.
 */
export async function gone(pid: number, withinMs: number): Promise<boolean> {
  return polledUntil(() => {
    try {
      process.kill(pid, 0);
      return false;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return true;
      throw err;
    }
  }, withinMs, 20);
}

/**
 * Polls (bounded) until `pid` has died: it no longer exists, or it is a zombie
 * (it exited and runs nothing; only its reaping is left). For an orphan the
 * reaper is PID 1, and a container's init may take over a second to reap
 * (measured ~1.4 s here), a wait {@link gone} would add to every such test.
 */
export async function dead(pid: number, withinMs: number): Promise<boolean> {
  return polledUntil(() => {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return true;
      throw err;
    }
    // The state follows the command, which may contain spaces or ')': count from the last ')'.
    const state = stat.charAt(stat.lastIndexOf(')') + 2);
    return state === 'Z' || state === 'X';
  }, withinMs, 20);
}

/**
 * Polls (bounded) until nothing exists at `path`; true when it is gone. For a
 * removal the code under test starts and does not report (e.g. a refused launch
 * reserve's scratch dir, removed while the next launch goes on).
 */
export async function pathGone(path: string, withinMs: number): Promise<boolean> {
  return polledUntil(() => !existsSync(path), withinMs, 10);
}

/** Checks `done` every `everyMs` until it is true (then true) or `withinMs` passed (then false): the polls above. */
export async function polledUntil(done: () => boolean, withinMs: number, everyMs: number): Promise<boolean> {
  const deadline = performance.now() + withinMs;
  for (;;) {
    if (done()) return true;
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * A connected Unix socket pair through a real listening socket at `path`: the
 * test's `client` end and the `peer` the server accepted. Both, and the server,
 * go at teardown; client errors (the peer hanging up) are ignored.
 */
export async function acceptedPair(test: { teardown(fn: () => void): void }, path: string): Promise<{ client: Socket; peer: Socket }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  test.teardown(() => server.close());
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = createConnection(path);
  client.on('error', () => {});
  test.teardown(() => client.destroy());
  return { client, peer: await accepted };
}

/** Resolves with the pid of the next prewarmed spare of service `name` that the broker reports warm. */
export function nextSpare(kit: TestBroker, name: string): Promise<number> {
  return new Promise((resolve) => {
    const sub = kit.broker.on('prewarmed', (service, pid) => {
      if (service !== name) return;
      sub.dispose();
      resolve(pid);
    });
  });
}

/** pasta processes that are children of this test process (an embedded broker runs in it and starts them). */
export function ourPastas(): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('--config-net')) found.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

/** The first line a child writes to stdout (a host fixture reporting its pids); rejects if it exits first. */
export function firstStdoutLine(child: import('node:child_process').ChildProcess): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.once('exit', (code) => reject(new Error(`host exited early (${code})`)));
  });
}
