/**
 * The exec guard's exec thread ({@link ./exec-guard-stage.ts}): a worker the
 * stage starts after it restricted itself (Landlock) and loaded the guard's
 * filter, so this thread carries both (a thread inherits them from its creator;
 * Landlock binds only the threads of the domain, so an older thread of koffi's
 * pool would exec outside it). It calls execveat(node) and blocks in the
 * filter's notification until the stage's main thread answers; on success the
 * whole process is replaced, so it returns only on failure.
 * @module
 */
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

/** What the stage passes the worker. */
export interface ExecGuardWorkerData {
  /** koffi's native binary or package, as the stage loaded it. */
  koffi: string;
  /** execveat's number on this architecture. */
  execveat: number;
  path: string;
  argv: string[];
  env: string[];
}

const AT_FDCWD = -100;
const data = workerData as ExecGuardWorkerData;
const koffi = createRequire(import.meta.url)(data.koffi) as typeof import('koffi');
const execveat = koffi.load('libc.so.6').func('long syscall(long nr, int dirfd, const char *path, void *argv, void *envp, int flags)');

/** A NULL-terminated `char *[]`; `strings` keeps the C strings alive while `table` is in use. */
function cStrings(values: string[]): { table: Buffer; strings: Buffer[] } {
  const strings = values.map((v) => Buffer.from(`${v}\0`));
  const table = Buffer.alloc(8 * (strings.length + 1));
  strings.forEach((b, i) => table.writeBigUInt64LE(koffi.address(b), 8 * i));
  return { table, strings };
}

const argv = cStrings(data.argv);
const envp = cStrings(data.env);
const rc = Number(execveat(data.execveat, AT_FDCWD, data.path, argv.table, envp.table, 0));
parentPort?.postMessage({ rc, errno: koffi.errno(), strings: argv.strings.length + envp.strings.length });
