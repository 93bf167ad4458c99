/* Round eight (issue 19), a prototype, not shipped: an "mm holder". exit_mm only tears an address space down when
 * its last user leaves (mmput: mm_users 0). A process that shares node's mm (clone CLONE_VM, without CLONE_THREAD,
 * so a SIGKILL to node's thread group does not reach it) makes every node thread's exit_mm a refcount drop: exit_files
 * runs at once and the broker's socket sees the EOF before the teardown, which happens later, in the holder's exit.
 *
 * mm_holder_start(flags) (called from node's main thread through koffi) makes a pipe (O_CLOEXEC: only node holds the
 * write end; exec'd children do not), blocks every signal in the calling thread (so the holder is born with all of
 * them blocked: none of node's handlers can ever run on its stack), clones the holder on its own mmap'ed stack,
 * restores the mask and closes the read end in node. Returns the holder's pid, or -errno.
 *   flags & 1: CLONE_PARENT: the holder is the broker's child (the broker must reap it; libuv only waits for the
 *              pids it spawned), otherwise node's (reparented at node's death to the nearest subreaper or pid 1).
 *   flags & 2: the holder asks for SCHED_IDLE before it blocks, so the teardown in its exit runs after the work of
 *              the broker and the spare on a busy machine.
 *   flags >> 8: a delay in ms between the EOF and the holder's exit (nanosleep), so that its teardown runs after the
 *              takeover: woken on the CPU of node's last thread (often the broker's), the holder otherwise runs its
 *              1.5 ms teardown at once, before a broker that is runnable there (traced; SCHED_IDLE does not stop it:
 *              within a tick the fair scheduler still picks it when the broker is not eligible).
 *   flags & 4: (the probe, mm-holder-probe.mjs) the holder also keeps fd 4, whose EOF at its observer tells when its
 *              own exit (the teardown, then exit_files) is done.
 * The holder touches nothing but its stack and raw syscalls (no libc: errno and TLS are node's main thread's):
 * close every fd but the pipe's read end, name itself, block in read(); at EOF (node's exit_files closed the write
 * end) or any error it exits, and its exit does the teardown. It never outlives node by more than its own exit. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STACK_SIZE (64 * 1024)

static inline long raw3(long n, long a, long b, long c) {
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return r;
}

static inline long raw4(long n, long a, long b, long c, long d) {
  long r;
  register long r10 __asm__("r10") = d;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
  return r;
}

struct holder_arg { int rfd; int idle; int keep4; int delayMs; };

static int holder(void *p) {
  /* Copy the arguments to the stack first: the caller's struct lives on node's stack. */
  struct holder_arg a = *(struct holder_arg *)p;
  int rfd = a.rfd;
  /* rfd > 4 (0-2 are stdio, 3 is the channel): close [0, rfd) but fd 4 when kept, then (rfd, ~0]. */
  if (a.keep4) {
    raw3(SYS_close_range, 0, 3, 0);
    raw3(SYS_close_range, 5, rfd - 1, 0);
  } else {
    raw3(SYS_close_range, 0, rfd - 1, 0);
  }
  raw3(SYS_close_range, rfd + 1, ~0U, 0);
  char name[16] = "bh-mm-holder";
  raw3(SYS_prctl, 15 /* PR_SET_NAME */, (long)name, 0);
  if (a.idle) {
    long param[1] = {0};
    raw3(SYS_sched_setscheduler, 0, 5 /* SCHED_IDLE */, (long)param);
  }
  char buf[8];
  for (;;) {
    long r = raw3(SYS_read, rfd, (long)buf, sizeof buf);
    if (r == -4 /* EINTR */ || r > 0) continue;
    break;
  }
  if (a.delayMs > 0) {
    long ts[2] = {a.delayMs / 1000, (long)(a.delayMs % 1000) * 1000000L};
    while (raw3(SYS_nanosleep, (long)ts, (long)ts, 0) == -4 /* EINTR: the rest is in ts */) {}
  }
  raw3(SYS_exit, 0, 0, 0);
  return 0;
}

int mm_holder_start(int flags) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  if (p[0] <= 4) { close(p[0]); close(p[1]); return -4; }
  char *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) { close(p[0]); close(p[1]); return -2; }
  /* Every signal, glibc's own 32 and 33 too (sigfillset leaves them out): raw rt_sigprocmask on a 64-bit mask. */
  unsigned long all = ~0UL, old = 0;
  raw4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, (long)&old, 8);
  static struct holder_arg arg;
  arg.rfd = p[0];
  arg.idle = (flags & 2) != 0;
  arg.keep4 = (flags & 4) != 0;
  arg.delayMs = flags >> 8;
  int cf = CLONE_VM | ((flags & 1) ? CLONE_PARENT : SIGCHLD);
  int pid = clone(holder, stack + STACK_SIZE, cf, &arg);
  raw4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, 8);
  close(p[0]);
  if (pid < 0) { close(p[1]); munmap(stack, STACK_SIZE); return -3; }
  /* p[1] stays open in node, never written: its close in node's exit_files is the holder's EOF. The stack stays
   * mapped for the holder's life (it is in node's address space, torn down with it). */
  return pid;
}
