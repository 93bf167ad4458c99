/**
 * Which system calls a profile refuses, as plain data: groups of rules, each
 * group one line of the enforcement report. Pure (no FFI), so the policy is
 * testable in memory; {@link ./seccomp.ts} compiles it with libseccomp.
 *
 * The filter allows by default and refuses named calls (the Flatpak/Docker
 * model): an allow-list would have to track every call Node, libuv and glibc
 * make on every Node line. Calls newer than the host's libseccomp knows stay
 * allowed; the report names any listed call the library could not resolve.
 * @module
 */
import type { SandboxProfile } from './profile.js';

/** Linux errno values used by the filter. */
export const EPERM = 1;
export const ENOSYS = 38;

/** libseccomp comparison operators (`enum scmp_compare`). */
export const SCMP_CMP = { NE: 1, EQ: 4, MASKED_EQ: 7 } as const;

/** Compare only the low 32 bits of an `int` argument: the kernel ignores the high ones, so a filter must too. */
const INT = 0xffffffff;

const CLONE_VM = 0x00000100;
const CLONE_PARENT = 0x00008000;
const CLONE_THREAD = 0x00010000;
const CLONE_NEWUSER = 0x10000000;
const SOCK_TYPE_MASK = 0xf;
const SOCK_RAW = 3;
const SOCK_PACKET = 10;
const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const AF_NETLINK = 16;
/** Address families Linux knows (AF_MAX in linux/socket.h, 6.x). */
const AF_MAX = 46;

/** One argument comparison: `(args[arg] & mask) == value`, or `args[arg] != value` for `ne`. */
export interface ArgCheck {
  arg: number;
  op: 'masked-eq' | 'ne';
  mask?: number;
  value: number;
}

/** One filter rule: a call, optional argument checks (all must hold), and the errno it returns. */
export interface SyscallRule {
  name: string;
  args?: ArgCheck[];
  /** Returned instead of running the call. `kill` profiles still return this for `clone3` (glibc needs ENOSYS to fall back to `clone`). */
  errno: number;
  /** Never turned into a kill, whatever the profile's `onViolation`. */
  alwaysErrno?: boolean;
  /** Not refused but handed to the filter's listener (SECCOMP_RET_USER_NOTIF); `errno` is what a call gets once no listener is left (ENOSYS, the kernel's choice). */
  notify?: boolean;
}

/** A group of rules reported as one rule of the enforcement report. */
export interface SyscallGroup {
  /** Report name, e.g. "syscalls.keyring". */
  rule: string;
  /** What a helper can no longer do, for the report. */
  detail: string;
  rules: SyscallRule[];
}

/** What a profile says about system calls (`profile.syscalls`). */
export interface SyscallOptions {
  /** Allow io_uring. @default false */
  ioUring: boolean;
  /** What a refused call does: fail with an errno (EPERM), or kill the helper (SIGSYS). @default "error" */
  onViolation: 'error' | 'kill';
  /**
   * The exec guard runs ({@link ./exec-guard.ts}): its own filter refuses execve and lets exactly one
   * execveat (its exec of node) through, so this filter must leave execveat to it. @default false
   */
  execGuard?: boolean;
  /**
   * The helper's node starts an mm holder (native/mm-preload/mm_preload.c, named by the native exec guard):
   * `clone` with exactly `CLONE_VM | CLONE_PARENT` is let through, every other clone without CLONE_THREAD still
   * fails ({@link cloneRules}). Only with `execGuard` (a task that shares node's memory could otherwise exec).
   * @default false
   */
  mmHolder?: boolean;
}

/** What processes.children adds when the mm holder's clone is let through. */
const MM_HOLDER_DETAIL = ' except exactly clone(CLONE_VM | CLONE_PARENT), the mm holder: a task in node\'s own memory that cannot exec (the exec guard), is counted by the pids limit and dies with the pid namespace';

const eperm = (...names: string[]): SyscallRule[] => names.map((name) => ({ name, errno: EPERM }));
const low32 = (arg: number, value: number, mask = INT): ArgCheck => ({ arg, op: 'masked-eq', mask, value });

/**
 * The groups of calls a profile refuses. Every profile gets the fixed groups;
 * io_uring, process creation and socket families follow the profile.
 */
export function syscallGroups(profile: Pick<SandboxProfile, 'network' | 'processes'>, options: SyscallOptions): SyscallGroup[] {
  const groups: SyscallGroup[] = [
    {
      rule: 'syscalls.namespaces',
      detail: 'no new user namespace (unshare/clone with CLONE_NEWUSER), no setns; clone3 answers ENOSYS so glibc falls back to clone, whose flags the filter can see',
      rules: [
        { name: 'unshare', args: [low32(0, CLONE_NEWUSER, CLONE_NEWUSER)], errno: EPERM },
        { name: 'clone', args: [low32(0, CLONE_NEWUSER, CLONE_NEWUSER)], errno: EPERM },
        { name: 'clone3', errno: ENOSYS, alwaysErrno: true },
        ...eperm('setns'),
      ],
    },
    { rule: 'syscalls.keyring', detail: 'no kernel keyring (add_key, keyctl, request_key): no keys shared with, or left for, other services', rules: eperm('add_key', 'keyctl', 'request_key') },
    { rule: 'syscalls.ptrace', detail: 'no ptrace, process_vm_readv/writev, pidfd_getfd or kcmp: no reach into another process\'s memory or fds', rules: eperm('ptrace', 'process_vm_readv', 'process_vm_writev', 'pidfd_getfd', 'kcmp') },
    {
      rule: 'syscalls.kernel',
      detail: 'no bpf, perf_event_open, userfaultfd, kexec, kernel modules, open_by_handle_at, swap, reboot, acct, syslog, quotactl',
      rules: eperm('bpf', 'perf_event_open', 'userfaultfd', 'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module', 'open_by_handle_at', 'name_to_handle_at', 'swapon', 'swapoff', 'reboot', 'acct', 'syslog', 'quotactl', 'lookup_dcookie', 'iopl', 'ioperm'),
    },
    { rule: 'syscalls.mount', detail: 'no mount, umount2, pivot_root, chroot or the new mount API (fsopen, fsconfig, fsmount, fspick, move_mount, open_tree, mount_setattr)', rules: eperm('mount', 'umount2', 'pivot_root', 'chroot', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree', 'mount_setattr') },
  ];
  if (!options.ioUring) {
    groups.push({ rule: 'syscalls.ioUring', detail: 'no io_uring (its requests bypass this filter); libuv falls back to its thread pool', rules: eperm('io_uring_setup', 'io_uring_enter', 'io_uring_register') });
  }
  if (!profile.processes.children) {
    const guard = options.execGuard === true;
    const holder = guard && options.mmHolder === true;
    groups.push({
      rule: 'processes.children',
      // execve itself stays allowed here: bubblewrap loads this filter right before its own final execve (of the
      // helper's first wrapper), so refusing it would refuse the launch. The exec guard's filter, loaded by the
      // last stage before node, refuses it (rule processes.exec). Without the guard, execveat (fexecve of a memfd)
      // is never part of the launch chain: refused here. With it, the guard's exec of node is an execveat.
      detail: guard
        ? `fork, vfork and clone without CLONE_THREAD fail with EPERM, from the main thread, a worker or native code alike${holder ? MM_HOLDER_DETAIL : ''}`
        : 'fork, vfork and clone without CLONE_THREAD fail with EPERM, from the main thread, a worker or native code alike; so does execveat (fileless exec)',
      rules: [...eperm('fork', 'vfork', ...(guard ? [] : ['execveat'])), ...cloneRules(holder)],
    });
  }
  groups.push(socketGroup(profile.network));
  return groups;
}

/**
 * clone without CLONE_THREAD fails with EPERM. With `mmHolder` (the exec guard on, and the native stage names the
 * holder's library: kernel-layers.ts), one exception: a clone whose flags' low 32 bits (all the kernel reads of
 * them) are exactly `CLONE_VM | CLONE_PARENT` (no exit signal, nothing else). It is said as refusals, one rule
 * each, since a rule compares an argument once: without CLONE_THREAD, any other bit set refuses; none set, the two
 * bits must both be there. Why it does not weaken `processes.children: false`: docs/sandbox.md#the-mm-holder.
 */
export function cloneRules(mmHolder: boolean): SyscallRule[] {
  if (!mmHolder) return [{ name: 'clone', args: [low32(0, 0, CLONE_THREAD)], errno: EPERM }];
  const allowed = CLONE_VM | CLONE_PARENT;
  const rules: SyscallRule[] = [];
  for (let bit = 0; bit < 32; bit++) {
    const flag = 2 ** bit;
    if (flag === CLONE_THREAD || (flag & allowed) !== 0) continue;
    rules.push({ name: 'clone', args: [low32(0, flag, CLONE_THREAD + flag)], errno: EPERM });
  }
  for (const value of [0, CLONE_VM, CLONE_PARENT]) rules.push({ name: 'clone', args: [low32(0, value, CLONE_THREAD | allowed)], errno: EPERM });
  return rules;
}

function socketGroup(network: SandboxProfile['network']): SyscallGroup {
  const inet = network !== 'none';
  const allowed = new Set([AF_UNIX, AF_NETLINK, ...(inet ? [AF_INET, AF_INET6] : [])]);
  const rules: SyscallRule[] = [];
  for (let family = 0; family < AF_MAX; family++) {
    if (!allowed.has(family)) rules.push({ name: 'socket', args: [low32(0, family)], errno: EPERM });
  }
  if (inet) {
    for (const family of [AF_INET, AF_INET6]) {
      for (const type of [SOCK_RAW, SOCK_PACKET]) rules.push({ name: 'socket', args: [low32(0, family), low32(1, type, SOCK_TYPE_MASK)], errno: EPERM });
    }
  }
  // glibc's getifaddrs (os.networkInterfaces) reads interfaces over NETLINK_ROUTE (0); every other netlink protocol
  // (sock_diag, audit, uevent, netfilter...) is refused.
  rules.push({ name: 'socket', args: [low32(0, AF_NETLINK), { arg: 2, op: 'ne', value: 0 }], errno: EPERM });
  return {
    rule: 'syscalls.sockets',
    detail: `socket families: AF_UNIX${inet ? ', AF_INET, AF_INET6 (no SOCK_RAW/SOCK_PACKET)' : ''} and NETLINK_ROUTE only; every other family (AF_PACKET, AF_NETLINK's other protocols, AF_VSOCK, AF_ALG...${inet ? '' : ', AF_INET, AF_INET6'}) fails with EPERM`,
    rules,
  };
}

/** A stable key for the filter a profile compiles to (the compiled program is cached under it). */
export function policyKey(profile: Pick<SandboxProfile, 'network' | 'processes'>, options: SyscallOptions): string {
  return JSON.stringify([profile.network, profile.processes.children, options.ioUring, options.onViolation, options.execGuard === true, options.mmHolder === true]);
}

const PR_SET_SECCOMP = 22;

/**
 * The exec guard's own filter ({@link ./exec-guard-stage.ts} loads it right before it execs the
 * helper's node): execve refused; execveat handed to a listener, which the stage answers exactly once
 * (its own exec of node) and which dies with that exec, so every later execveat gets ENOSYS; and no
 * new seccomp filter, since a newer filter's listener would be asked first and could let an exec through.
 */
export function execGuardGroup(): SyscallGroup {
  return {
    rule: 'processes.exec',
    detail: 'execve fails with EPERM and execveat with ENOSYS, from every thread, native code included: the guard\'s filter lets through exactly one exec, its own of node, then its listener is gone; loading another seccomp filter (seccomp(), prctl PR_SET_SECCOMP) fails with EPERM',
    rules: [
      { name: 'execve', errno: EPERM },
      { name: 'execveat', errno: ENOSYS, notify: true, alwaysErrno: true },
      { name: 'seccomp', errno: EPERM },
      { name: 'prctl', args: [low32(0, PR_SET_SECCOMP)], errno: EPERM },
    ],
  };
}
