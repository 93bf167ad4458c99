/**
 * The exec guard, broker side: closes "exec after start" for
 * `processes.children: false` (docs/sandbox.md#exec-after-start).
 *
 * bubblewrap loads the profile's filter right before its own execve, and
 * setpriv and the pre-exec stage exec after it, so that filter must allow
 * exec. The guard is a second filter ({@link ./seccomp-policy.ts}'s
 * `execGuardGroup`), loaded by the last stage before node, which lets exactly
 * one exec through: its own ({@link ./exec-guard-stage.ts}). This module
 * compiles that filter with libseccomp and says whether the host can run it.
 * @module
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadFfi } from './ffi.js';
import { EXEC_GUARD_FLAGS } from './exec-guard-stage.js';
import { compileGroups } from './seccomp.js';
import { execGuardGroup, type SyscallOptions } from './seccomp-policy.js';

/** What a host needs for the guard besides libseccomp, koffi and bubblewrap. */
export const EXEC_GUARD_KERNEL = 'a kernel whose seccomp accepts a listener with TSYNC (SECCOMP_FILTER_FLAG_TSYNC_ESRCH, Linux ≥ 5.7)';

/** Why the guard cannot run on this host (koffi, libseccomp or the kernel), or null. */
export function execGuardProblem(): string | null {
  const ffi = loadFfi();
  if (!ffi.ok) return ffi.problem;
  if (ffi.seccompProblem !== null) return ffi.seccompProblem;
  return ffi.libc.seccompFlagsAccepted(EXEC_GUARD_FLAGS) ? null : EXEC_GUARD_KERNEL;
}

const programs = new Map<string, Buffer>();

/**
 * The guard's BPF program for a violation mode (cached).
 * @throws Error when libseccomp is missing or rejects a rule
 */
export function execGuardProgram(onViolation: SyscallOptions['onViolation']): Buffer {
  let bpf = programs.get(onViolation);
  if (bpf === undefined) {
    const compiled = compileGroups([execGuardGroup()], onViolation);
    if (compiled.unresolved.length > 0) throw new Error(`this libseccomp does not know ${compiled.unresolved.join(', ')}`);
    bpf = compiled.bpf;
    programs.set(onViolation, bpf);
  }
  return bpf;
}

/** The native stage, built by `npm run build` where a C compiler exists (scripts/build-exec-guard.mjs). */
export const NATIVE_STAGE = fileURLToPath(new URL('../../native/exec-guard', import.meta.url));

/**
 * The mm holder's library for sandboxed helpers (native/mm-preload/mm_preload.c), built by `npm run build` beside
 * the native stage (scripts/build-mm-preload.mjs); the native stage names it in node's LD_PRELOAD.
 */
export const MM_PRELOAD = fileURLToPath(new URL('../../native/mm_preload.so', import.meta.url));

/** What the native stage exits with when called without a command (its usage line). */
const NATIVE_USAGE_EXIT = 120;

/**
 * Resolves to the native stage's path when it was built and runs on this
 * host, else null: the node stage serves. Run once without arguments, it must
 * answer with its usage exit: a binary packed on another machine (other
 * architecture or libc) that cannot start here is not used, instead of
 * failing every launch. Asynchronous, beside the host probe's other checks
 * (host-probe.ts): the broker's event loop does not wait for it.
 * @param stage - the binary to probe @default the built native stage
 */
export function nativeExecGuard(stage: string = NATIVE_STAGE): Promise<string | null> {
  try {
    accessSync(stage, constants.X_OK);
  } catch {
    return Promise.resolve(null);
  }
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(stage, [], { stdio: 'ignore', timeout: 5000 });
    } catch {
      resolve(null); // e.g. a file the kernel cannot execute at all, reported synchronously on some lines
      return;
    }
    child.once('error', () => resolve(null)); // ENOEXEC, EACCES: not a binary for this host
    child.once('exit', (code) => resolve(code === NATIVE_USAGE_EXIT ? stage : null));
  });
}
