/**
 * Compiles a profile's system-call policy ({@link ./seccomp-policy.ts}) to a
 * classic-BPF seccomp program with libseccomp, and hands it to bubblewrap
 * (`--seccomp FD`) through a memfd the broker passes as an extra inherited fd.
 *
 * Compiled once per distinct policy (profiles that differ only in paths or
 * limits share one program); each launch gets a fresh memfd, because
 * bubblewrap reads the program from the fd's offset and an fd shared between
 * launches would be at EOF for the second one.
 * @module
 */
import { closeSync, fstatSync, readSync, writeSync } from 'node:fs';
import { loadFfi, type ScmpArgCmp } from './ffi.js';
import { SCMP_CMP, policyKey, syscallGroups, type SyscallGroup, type SyscallOptions } from './seccomp-policy.js';
import type { SandboxProfile } from './profile.js';

const SCMP_ACT_ALLOW = 0x7fff0000;
const SCMP_ACT_KILL_PROCESS = 0x80000000;
/** SECCOMP_RET_USER_NOTIF: the call waits for the filter's listener; with no listener left the kernel answers ENOSYS. */
const SCMP_ACT_NOTIFY = 0x7fc00000;
const scmpActErrno = (errno: number): number => (0x00050000 | (errno & 0xffff)) >>> 0;
const MFD_CLOEXEC = 1;

/** A compiled filter: the BPF program and what it covers. */
export interface CompiledFilter {
  /** The raw `struct sock_filter[]` program, as bubblewrap reads it. */
  bpf: Buffer;
  groups: SyscallGroup[];
  /** Calls the host's libseccomp does not know (left allowed). */
  unresolved: string[];
  /** libseccomp's version, for the report. */
  libseccomp: string;
}

/** Why seccomp is unavailable on this host, or null when it works. */
export function seccompProblem(): string | null {
  const ffi = loadFfi();
  if (!ffi.ok) return ffi.problem;
  return ffi.seccompProblem;
}

const cache = new Map<string, CompiledFilter>();

/**
 * Returns the compiled filter of a profile (cached per policy).
 * @throws Error when libseccomp is missing (check {@link seccompProblem} first) or rejects a rule
 */
export function compileFilter(profile: Pick<SandboxProfile, 'network' | 'processes'>, options: SyscallOptions): CompiledFilter {
  const key = policyKey(profile, options);
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const compiled = compileGroups(syscallGroups(profile, options), options.onViolation);
  cache.set(key, compiled);
  return compiled;
}

/**
 * Compiles groups of rules to one program with libseccomp (allow by default; each rule's errno, a
 * kill in `kill` mode, or a user notification for a `notify` rule).
 * @throws Error when libseccomp is missing or rejects a rule
 */
export function compileGroups(groups: SyscallGroup[], onViolation: SyscallOptions['onViolation']): CompiledFilter {
  const ffi = loadFfi();
  if (!ffi.ok) throw new Error(ffi.problem);
  if (ffi.seccomp === null) throw new Error(ffi.seccompProblem ?? 'libseccomp unavailable');
  const lib = ffi.seccomp;
  const ctx = lib.init(SCMP_ACT_ALLOW);
  if (ctx === null) throw new Error('seccomp_init failed');
  const unresolved: string[] = [];
  try {
    for (const group of groups) {
      for (const rule of group.rules) {
        const nr = lib.resolveName(rule.name);
        if (nr < 0) {
          if (!unresolved.includes(rule.name)) unresolved.push(rule.name);
          continue;
        }
        const action = rule.notify === true ? SCMP_ACT_NOTIFY : onViolation === 'kill' && !rule.alwaysErrno ? SCMP_ACT_KILL_PROCESS : scmpActErrno(rule.errno);
        const cmps: ScmpArgCmp[] = (rule.args ?? []).map((a) => a.op === 'ne'
          ? { arg: a.arg, op: SCMP_CMP.NE, datum_a: a.value, datum_b: 0 }
          : { arg: a.arg, op: SCMP_CMP.MASKED_EQ, datum_a: a.mask ?? 0xffffffff, datum_b: a.value });
        const rc = lib.ruleAdd(ctx, action, nr, cmps);
        if (rc !== 0) throw new Error(`seccomp_rule_add(${rule.name}) failed: errno ${-rc}`);
      }
    }
    const fd = ffi.libc.memfdCreate('bulkhead-seccomp', MFD_CLOEXEC);
    if (fd < 0) throw new Error(`memfd_create failed: errno ${ffi.libc.errno()}`);
    try {
      const rc = lib.exportBpf(ctx, fd);
      if (rc !== 0) throw new Error(`seccomp_export_bpf failed: errno ${-rc}`);
      const bpf = Buffer.alloc(fstatSync(fd).size);
      readSync(fd, bpf, 0, bpf.length, 0);
      return { bpf, groups, unresolved, libseccomp: lib.version };
    } finally {
      closeSync(fd);
    }
  } finally {
    lib.release(ctx);
  }
}

/**
 * Puts a program in a fresh memfd at offset 0, for one launch.
 * @returns the fd; the caller passes it to the child and closes it after spawn
 */
export function programFd(bpf: Buffer): number {
  const ffi = loadFfi();
  if (!ffi.ok) throw new Error(ffi.problem);
  const fd = ffi.libc.memfdCreate('bulkhead-seccomp', MFD_CLOEXEC);
  if (fd < 0) throw new Error(`memfd_create failed: errno ${ffi.libc.errno()}`);
  // pwrite (explicit position): the fd's own offset stays 0, where bubblewrap starts reading.
  writeSync(fd, bpf, 0, bpf.length, 0);
  return fd;
}
