/*
 * bulkhead's "mm holder" for sandboxed prewarmed helpers (issue 19; docs/sandbox.md "The mm holder", bench/README.md
 * "Round twelve: relaunch under a sandbox"; planned by lib/sandbox/kernel-layers.ts):
 * a shared library the exec guard's native stage (native/exec-guard/exec_guard.c) names in LD_PRELOAD for its one
 * exec of node, so that the dynamic linker loads it into node before node's main runs.
 *
 * Why: an unsandboxed spare starts its holder from a Node-API addon (native/mm-holder/mm_holder.c says what a
 * holder is and why it brings a SIGKILLed helper's EOF before the kernel's teardown of its address space). A
 * sandboxed helper cannot load an addon (Node's permission model refuses process.dlopen), and no stage before node
 * can clone into node's address space (execve replaces it). The dynamic linker is not governed by the permission
 * model: this constructor runs in node's own mm before any of node's code, and before the permission model exists.
 *
 * What it does, once, in the constructor (single-threaded: node has not started any thread yet):
 *  - removes LD_PRELOAD from environ, so that node's process.env never shows it (a helper of such a profile
 *    cannot exec: the exec guard refuses every exec after node's own);
 *  - starts the holder as mm_holder.c does (a pipe whose write end only node holds, O_CLOEXEC; every signal
 *    blocked; clone(CLONE_VM | CLONE_PARENT) on a 64 KiB stack of its own, named bh-mm-holder from birth). Under
 *    bubblewrap's pid namespace CLONE_PARENT makes it a child of the namespace's init (bubblewrap), which waits
 *    for it; when node dies, bubblewrap's outer process reports node's exit and ends, its init gets
 *    --die-with-parent's SIGKILL and the kernel kills every process left in the namespace, the holder included.
 *    Nothing outside the sandbox reaps or signals it.
 * A failure (clone refused by a seccomp filter that does not allow it, the pids limit, no memory) leaves node as it
 * was: no holder. The clone's flags are exactly CLONE_VM | CLONE_PARENT (no exit signal): the one clone the
 * profile's filter lets through (lib/sandbox/seccomp-policy.ts cloneRules); any change here must change both.
 * DELAY_MS (the wait after node's death, which keeps node's teardown off a relaunch's CPUs unsandboxed) never
 * runs out under bubblewrap: the namespace's end kills the holder first, and node's teardown runs in that kill.
 * (A holder at SCHED_IDLE or nice 19, so that the teardown would yield: tried in round twelve, no consistent
 * gain at load 11-14, the teardown then 100-500 ms later; not kept.)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STACK_SIZE (64 * 1024)
#define ENOSYS_ 38
#define EINTR_ 4
/* How long the holder waits after node's death before it exits (its teardown off the relaunch's CPUs). */
#define DELAY_MS 20

#if defined(__x86_64__)
static inline long raw4(long n, long a, long b, long c, long d) {
  long r;
  register long r10 __asm__("r10") = d;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
  return r;
}
#elif defined(__aarch64__)
static inline long raw4(long n, long a, long b, long c, long d) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
  return x0;
}
#else
#error "the mm holder needs a raw syscall convention for this architecture (x86_64, aarch64)"
#endif
#define raw3(n, a, b, c) raw4((n), (a), (b), (c), 0)

struct holder_arg { int rfd; int delay_ms; };

static void close_fds(long from, long to) {
  if (from > to) return;
  if (raw3(SYS_close_range, from, to, 0) != -ENOSYS_) return;
  if (to > 65535) to = 65535;
  for (long fd = from; fd <= to; fd++) raw3(SYS_close, fd, 0, 0);
}

/* The holder: its own stack, node's TLS (never touched: raw syscalls only, no errno, no stack protector). */
static int holder(void *p) {
  struct holder_arg *a = (struct holder_arg *)p;
  int rfd = a->rfd;
  close_fds(0, rfd - 1);
  close_fds(rfd + 1, 0x7fffffffL);
  char buf[8];
  for (;;) {
    long r = raw3(SYS_read, rfd, (long)buf, sizeof buf);
    if (r == -EINTR_ || r > 0) continue;
    break;
  }
  if (a->delay_ms > 0) {
    long ts[2] = {a->delay_ms / 1000, (long)(a->delay_ms % 1000) * 1000000L};
    while (raw3(SYS_nanosleep, (long)ts, (long)ts, 0) == -EINTR_) {}
  }
  for (;;) raw3(SYS_exit, 0, 0, 0);
  return 0;
}

static void start_holder(void) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return;
  char *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) { close(p[0]); close(p[1]); return; }
  struct holder_arg *arg = (struct holder_arg *)stack;
  arg->rfd = p[0];
  arg->delay_ms = DELAY_MS;
  char own[16] = {0};
  int renamed = prctl(PR_GET_NAME, (unsigned long)own, 0, 0, 0) == 0 && prctl(PR_SET_NAME, (unsigned long)"bh-mm-holder", 0, 0, 0) == 0;
  unsigned long all = ~0UL, old = 0;
  raw4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, (long)&old, 8);
  int pid = clone(holder, stack + STACK_SIZE, CLONE_VM | CLONE_PARENT, arg);
  raw4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, 8);
  if (renamed) prctl(PR_SET_NAME, (unsigned long)own, 0, 0, 0);
  close(p[0]);
  if (pid < 0) { close(p[1]); munmap(stack, STACK_SIZE); }
}

__attribute__((constructor)) static void bulkhead_mm_preload(void) {
  unsetenv("LD_PRELOAD");
  start_holder();
}
