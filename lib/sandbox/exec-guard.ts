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
const NATIVE_STAGE = fileURLToPath(new URL('../../native/exec-guard', import.meta.url));

/** The native stage's path when it was built (and is executable), else null: the node stage serves. */
export function nativeExecGuard(): string | null {
  try {
    accessSync(NATIVE_STAGE, constants.X_OK);
    return NATIVE_STAGE;
  } catch {
    return null;
  }
}
