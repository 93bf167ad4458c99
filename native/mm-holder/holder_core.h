/*
 * The mm holder itself, shared by its two starters: native/mm-holder/mm_holder.c (the Node-API addon an unsandboxed
 * spare loads) and native/mm-preload/mm_preload.c (the library the exec guard preloads into a sandboxed helper's
 * node). mm_holder.c says what a holder is and why; each starter says how it is started and who reaps it.
 * Included by exactly those two files (static functions: one copy in each build).
 */
#ifndef BULKHEAD_HOLDER_CORE_H
#define BULKHEAD_HOLDER_CORE_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STACK_SIZE (64 * 1024)
#define ENOSYS_ 38
#define EINTR_ 4

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

/* What the holder needs, written at the low end of its own stack mapping (never on node's stack). */
struct holder_arg { int rfd; int delay_ms; };

/* Closes [from, to], by close_range where the kernel has it (5.9), else one by one (bounded). */
static void close_fds(long from, long to) {
  if (from > to) return;
  if (raw3(SYS_close_range, from, to, 0) != -ENOSYS_) return;
  if (to > 65535) to = 65535;
  for (long fd = from; fd <= to; fd++) raw3(SYS_close, fd, 0, 0);
}

static int holder(void *p) {
  struct holder_arg *a = (struct holder_arg *)p;
  int rfd = a->rfd;
  close_fds(0, rfd - 1);
  close_fds(rfd + 1, 0x7fffffffL);
  char name[16] = "bh-mm-holder";
  raw3(SYS_prctl, 15 /* PR_SET_NAME */, (long)name, 0);
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

static int start_holder(int delay_ms) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  char *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) { close(p[0]); close(p[1]); return -2; }
  struct holder_arg *arg = (struct holder_arg *)stack; /* the stack grows down from the other end */
  arg->rfd = p[0];
  arg->delay_ms = delay_ms;
  /* Named from birth: a task's comm is copied at clone, so the calling thread wears the holder's name for the
   * clone and takes its own back at once (whoever reads the holder's /proc/<pid>/stat after start() returned,
   * as the broker does when the warm frame names it, sees bh-mm-holder without waiting for it to run). */
  char own[16] = {0};
  int renamed = prctl(PR_GET_NAME, (unsigned long)own, 0, 0, 0) == 0 && prctl(PR_SET_NAME, (unsigned long)"bh-mm-holder", 0, 0, 0) == 0;
  unsigned long all = ~0UL, old = 0;
  raw4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, (long)&old, 8);
  int pid = clone(holder, stack + STACK_SIZE, CLONE_VM | CLONE_PARENT, arg);
  raw4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, 8);
  if (renamed) prctl(PR_SET_NAME, (unsigned long)own, 0, 0, 0);
  close(p[0]);
  if (pid < 0) { close(p[1]); munmap(stack, STACK_SIZE); return -3; }
  /* p[1] stays open in node, never written: its close in node's exit_files is the holder's EOF. The stack stays
   * mapped for the holder's life (it is in node's address space, torn down with it). */
  return pid;
}

#endif
