/**
 * The broker's one door to C: libseccomp and a few libc calls through koffi
 * (an FFI whose npm package ships prebuilt binaries, so nothing compiles at
 * install). Loaded lazily, only by the broker (never by a helper's runtime),
 * and only when a sandboxed launch needs it or an unsandboxed prewarmed spare
 * may get an mm holder (lib/broker/mm-holder-reaper.ts: pidfds, waitid, kcmp); a sandboxed prewarmed helper's node is
 * held by a pidfd (lib/broker/node-pidfd.ts: its exit status after another process reaped it). A host without koffi's binary or
 * without libseccomp gets `null` plus a reason, which the sandbox reports as a
 * missing layer.
 * @module
 */
import { closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { SYSCALLS } from './exec-guard-stage.js';

/** `struct scmp_arg_cmp` as libseccomp takes it. */
export interface ScmpArgCmp {
  arg: number;
  op: number;
  datum_a: bigint | number;
  datum_b: bigint | number;
}

/** The libseccomp functions bulkhead uses. */
export interface Libseccomp {
  init(defaultAction: number): unknown;
  release(ctx: unknown): void;
  resolveName(name: string): number;
  ruleAdd(ctx: unknown, action: number, syscall: number, cmps: ScmpArgCmp[]): number;
  exportBpf(ctx: unknown, fd: number): number;
  version: string;
}

/** The libc calls bulkhead uses (x86-64 / arm64 Linux). */
export interface Libc {
  memfdCreate(name: string, flags: number): number;
  /** pipe2(2): `[readFd, writeFd]`, or null (then see {@link Libc.errno}). */
  pipe2(flags: number): [number, number] | null;
  /** ioctl(2) without an argument (e.g. NS_GET_USERNS): its result, -1 on error. */
  ioctl(fd: number, request: number): number;
  /** The Landlock ABI version the kernel offers (0 when it has none). */
  landlockAbi(): number;
  /**
   * Whether seccomp(SECCOMP_SET_MODE_FILTER) accepts these filter flags, asked without installing
   * anything (a NULL program: EFAULT once the flags pass, EINVAL when the kernel does not know them).
   */
  seccompFlagsAccepted(flags: number): boolean;
  /** pidfd_open(2) (Linux 5.3): a pidfd for `pid`, or -1 (then see {@link Libc.errno}). */
  pidfdOpen(pid: number): number;
  /** pidfd_send_signal(2) (Linux 5.1): 0, or -1. */
  pidfdSendSignal(pidfd: number, signal: number): number;
  /**
   * waitid(P_PIDFD, pidfd, ..., options) (Linux 5.4): `{ pid: 0 }` when nothing changed (WNOHANG), the pid whose
   * state changed (reaped unless WNOWAIT), or null on an error (then see {@link Libc.errno}; ECHILD: not our child).
   */
  waitidPidfd(pidfd: number, options: number): { pid: number } | null;
  /** kcmp(pid1, pid2, KCMP_VM): 0 when the two share one address space, > 0 when not, -1 on an error (ENOSYS without CONFIG_KCMP). */
  kcmpSameVm(pid1: number, pid2: number): number;
  /**
   * ioctl(pidfd, PIDFD_GET_INFO) asking for PIDFD_INFO_EXIT (Linux 6.15): the exit status (waitpid form) once the
   * process was reaped, by anyone; `null` while it is not (running, exiting, a zombie) or on a kernel that has
   * PIDFD_GET_INFO (6.13) without exit information; `undefined` on an error (no PIDFD_GET_INFO: ENOTTY / EINVAL).
   */
  pidfdExitStatus(pidfd: number): number | null | undefined;
  errno(): number;
}

/** The loaded FFI, or why it could not be loaded. */
export type Ffi = { ok: true; seccomp: Libseccomp | null; seccompProblem: string | null; libc: Libc } | { ok: false; problem: string };

let loaded: Ffi | undefined;

const SECCOMP_SET_MODE_FILTER = 1;
const EFAULT = 14;

/** landlock_create_ruleset's number; the same on every Linux architecture (the unified syscall table). */
const LANDLOCK_CREATE_RULESET = 444;
/** pidfd_send_signal and pidfd_open: the unified table's numbers, the same on x86-64 and arm64. */
const PIDFD_SEND_SIGNAL = 424;
const PIDFD_OPEN = 434;
/** kcmp's number (not in the unified range). */
const KCMP: Partial<Record<string, number>> = { x64: 312, arm64: 272 };
const KCMP_VM = 1;
/** PIDFD_GET_INFO = _IOWR(0xFF, 11, struct pidfd_info) for its first version (64 bytes), and the exit mask bit. */
const PIDFD_GET_INFO = 0xc040ff0b;
const PIDFD_INFO_SIZE_VER0 = 64;
const PIDFD_INFO_EXIT = 8n;
/** waitid's idtype for a pidfd. */
const P_PIDFD = 3;

/**
 * Loads koffi, libc and libseccomp once per process.
 * @returns the bindings, or `{ ok: false, problem }` saying what is missing
 */
export function loadFfi(): Ffi {
  if (loaded !== undefined) return loaded;
  let koffi: typeof import('koffi');
  try {
    // createRequire: koffi is CommonJS, and a synchronous load keeps the probe simple.
    koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
  } catch (err) {
    return (loaded = { ok: false, problem: `koffi (npm) cannot be loaded: ${(err as Error).message}` });
  }
  let libc: Libc;
  try {
    const c = koffi.load('libc.so.6');
    const memfd = c.func('int memfd_create(const char *name, unsigned int flags)');
    const sys = c.func('long syscall(long nr, void *a, unsigned long b, unsigned int c)');
    const pipe2 = c.func('int pipe2(void *fds, int flags)');
    const ioctl = c.func('int ioctl(int fd, unsigned long request)');
    const seccompCall = c.func('long syscall(long nr, unsigned int op, unsigned int flags, void *args)');
    const sys5 = c.func('long syscall(long nr, long a, long b, long c, long d, long e)');
    const waitid = c.func('int waitid(int idtype, int id, void *infop, int options)');
    const ioctlArg = c.func('int ioctl(int fd, unsigned long request, void *arg)');
    libc = {
      memfdCreate: (name, flags) => memfd(name, flags) as number,
      pipe2: (flags) => {
        const fds = Buffer.alloc(8); // int[2]
        return (pipe2(fds, flags) as number) === 0 ? [fds.readInt32LE(0), fds.readInt32LE(4)] : null;
      },
      ioctl: (fd, request) => ioctl(fd, request) as number,
      // landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION): the ABI version, or -1 (ENOSYS/EOPNOTSUPP).
      landlockAbi: () => Math.max(0, Number(sys(LANDLOCK_CREATE_RULESET, null, 0, 1))),
      seccompFlagsAccepted: (flags) => {
        const nr = SYSCALLS[process.arch]?.seccomp;
        if (nr === undefined) return false;
        return Number(seccompCall(nr, SECCOMP_SET_MODE_FILTER, flags, null)) < 0 && koffi.errno() === EFAULT;
      },
      pidfdOpen: (pid) => Number(sys5(PIDFD_OPEN, pid, 0, 0, 0, 0)),
      pidfdSendSignal: (pidfd, signal) => Number(sys5(PIDFD_SEND_SIGNAL, pidfd, signal, 0, 0, 0)),
      waitidPidfd: (pidfd, options) => {
        const info = Buffer.alloc(128); // siginfo_t, zeroed: si_pid stays 0 when WNOHANG finds nothing
        if ((waitid(P_PIDFD, pidfd, info, options) as number) !== 0) return null;
        return { pid: info.readInt32LE(16) }; // si_pid: after si_signo, si_errno, si_code and the union's alignment
      },
      kcmpSameVm: (pid1, pid2) => {
        const nr = KCMP[process.arch];
        return nr === undefined ? -1 : Number(sys5(nr, pid1, pid2, KCMP_VM, 0, 0));
      },
      pidfdExitStatus: (pidfd) => {
        // struct pidfd_info: mask (u64) at 0, then cgroupid, eleven u32 ids and exit_code (s32) at 60.
        const info = Buffer.alloc(PIDFD_INFO_SIZE_VER0);
        info.writeBigUInt64LE(PIDFD_INFO_EXIT, 0);
        if ((ioctlArg(pidfd, PIDFD_GET_INFO, info) as number) !== 0) return undefined;
        return (info.readBigUInt64LE(0) & PIDFD_INFO_EXIT) === 0n ? null : info.readInt32LE(60);
      },
      errno: () => koffi.errno(),
    };
  } catch (err) {
    return (loaded = { ok: false, problem: `libc cannot be loaded through koffi: ${(err as Error).message}` });
  }
  let seccomp: Libseccomp | null = null;
  let seccompProblem: string | null = null;
  try {
    const s = koffi.load('libseccomp.so.2');
    koffi.struct('scmp_arg_cmp', { arg: 'uint', op: 'int', datum_a: 'uint64_t', datum_b: 'uint64_t' });
    koffi.struct('scmp_version', { major: 'uint', minor: 'uint', micro: 'uint' });
    const init = s.func('void *seccomp_init(uint32_t def_action)');
    const release = s.func('void seccomp_release(void *ctx)');
    const resolve = s.func('int seccomp_syscall_resolve_name(const char *name)');
    const add = s.func('int seccomp_rule_add_array(void *ctx, uint32_t action, int syscall, unsigned int arg_cnt, scmp_arg_cmp *arg_array)');
    const exp = s.func('int seccomp_export_bpf(void *ctx, int fd)');
    const ver = s.func('const scmp_version *seccomp_version()');
    const vp = ver() as unknown;
    const v = vp === null ? null : (koffi.decode(vp, 'scmp_version') as { major: number; minor: number; micro: number });
    seccomp = {
      init: (a): unknown => init(a) as unknown,
      release: (ctx) => {
        release(ctx);
      },
      resolveName: (name) => resolve(name) as number,
      ruleAdd: (ctx, action, syscall, cmps) => add(ctx, action, syscall, cmps.length, cmps.length === 0 ? null : cmps) as number,
      exportBpf: (ctx, fd) => exp(ctx, fd) as number,
      version: v === null ? 'unknown' : `${v.major}.${v.minor}.${v.micro}`,
    };
  } catch (err) {
    seccompProblem = `libseccomp (apt-get install -y libseccomp2) cannot be loaded: ${(err as Error).message}`;
  }
  return (loaded = { ok: true, seccomp, seccompProblem, libc });
}

/**
 * Probes a pidfd feature on this process itself: libc when koffi loads here (Linux), a pidfd opens on this
 * process and `check` passes on that pidfd, else null. The pidfd is closed before this returns.
 * The host does not change while a process runs: callers ask once and keep the answer.
 * @param check - the caller's test, given a pidfd on a live process that is not the caller's child
 */
export function probeOwnPidfd(check: (libc: Libc, self: number) => boolean): Libc | null {
  if (process.platform !== 'linux') return null;
  const ffi = loadFfi();
  if (!ffi.ok) return null;
  const self = ffi.libc.pidfdOpen(process.pid);
  if (self < 0) return null;
  try {
    return check(ffi.libc, self) ? ffi.libc : null;
  } finally {
    closeSync(self);
  }
}
