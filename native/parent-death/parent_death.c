/*
 * bulkhead's parent-death stage: how the broker starts an unsandboxed helper
 * (lib/broker/parent-death.ts), in place of util-linux's
 * `setpriv --pdeathsig KILL`, whose exec costs about a millisecond of CPU
 * (dynamic linking of libcap-ng and friends).
 *
 *   parent-death <broker pid> <path> [args...]
 *
 * Sets the kernel's parent-death signal to SIGKILL (prctl PR_SET_PDEATHSIG),
 * then checks that its parent is still <broker pid>: a broker that died
 * between the fork and the prctl would never send the signal, so the stage
 * exits instead of starting a helper nobody owns. Then execs <path> (a path,
 * never looked up in PATH) with the remaining arguments and the environment
 * it got. Nothing else changes: fds, environment and signal mask pass through
 * untouched, and because it execs, the pid and the exit status are node's
 * own. PR_SET_PDEATHSIG survives the exec (node is not setuid).
 *
 * Built without libc where the architecture's syscall convention is below
 * (x86_64, aarch64; BULKHEAD_NOLIBC, scripts/build-parent-death.mjs): a
 * static glibc image's start-up made the stage's exec cost ten times more
 * (bench/README.md, "Round seven: the parent-death stage"). Elsewhere the same
 * logic runs on libc.
 *
 * Exit codes: 120 bad arguments (also its answer when called with none),
 * 121 the parent is not <broker pid> any more, 122 the exec failed,
 * 123 prctl failed.
 */
#include <linux/prctl.h>
#include <signal.h>

#ifdef BULKHEAD_NOLIBC
#include <asm/unistd.h>

#if defined(__x86_64__)
static long sys(long n, long a, long b, long c) {
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return r;
}
__asm__(".text\n.globl _start\n_start:\n xor %rbp, %rbp\n mov %rsp, %rdi\n and $-16, %rsp\n call start_c\n hlt\n");
#elif defined(__aarch64__)
static long sys(long n, long a, long b, long c) {
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	__asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
	return x0;
}
__asm__(".text\n.globl _start\n_start:\n mov x29, #0\n mov x30, #0\n mov x0, sp\n bl start_c\n");
#else
#error "no raw syscall convention for this architecture: build without BULKHEAD_NOLIBC"
#endif

static void stage_exit(int code) {
	for (;;) sys(__NR_exit_group, code, 0, 0);
}
static void err(const char *s) {
	long n = 0;
	while (s[n] != '\0') n++;
	sys(__NR_write, 2, (long)s, n);
}
static long set_pdeathsig(void) { return sys(__NR_prctl, PR_SET_PDEATHSIG, SIGKILL, 0); }
static long parent_pid(void) { return sys(__NR_getppid, 0, 0, 0); }
static void exec_target(char **argv, char **envp) { sys(__NR_execve, (long)argv[0], (long)argv, (long)envp); }
#else
#include <sys/prctl.h>
#include <unistd.h>

static void stage_exit(int code) { _exit(code); }
static void err(const char *s) {
	size_t n = 0;
	while (s[n] != '\0') n++;
	if (write(2, s, n) < 0) return; /* nothing better to do with a failed diagnostic */
}
static long set_pdeathsig(void) { return prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0); }
static long parent_pid(void) { return getppid(); }
static void exec_target(char **argv, char **envp) { execve(argv[0], argv, envp); }
#endif

/* A decimal pid, or -1. */
static long parse_pid(const char *s) {
	long v = 0;
	if (*s == '\0') return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > 100000000) return -1;
		v = v * 10 + (*s - '0');
	}
	return v > 0 ? v : -1;
}

static void err_num(long v) {
	char buf[24];
	int i = sizeof buf - 1;
	buf[i] = '\0';
	do buf[--i] = (char)('0' + v % 10); while ((v /= 10) > 0 && i > 0);
	err(buf + i);
}

static void stage(int argc, char **argv, char **envp) {
	if (argc < 3) {
		err("usage: parent-death <broker pid> <path> [args...]\n");
		stage_exit(120);
	}
	long broker = parse_pid(argv[1]);
	int has_slash = 0;
	for (const char *p = argv[2]; *p != '\0'; p++) has_slash |= *p == '/';
	if (broker < 0 || !has_slash) {
		err("bulkhead parent-death: expects a broker pid and a path to execute\n");
		stage_exit(120);
	}
	if (set_pdeathsig() != 0) {
		err("bulkhead parent-death: prctl(PR_SET_PDEATHSIG) failed\n");
		stage_exit(123);
	}
	/* After the prctl: a parent that is still the broker will signal us when it dies. */
	long parent = parent_pid();
	if (parent != broker) {
		err("bulkhead parent-death: the broker (pid ");
		err_num(broker);
		err(") died before the helper started (parent is now ");
		err_num(parent);
		err("); not starting ");
		err(argv[2]);
		err("\n");
		stage_exit(121);
	}
	exec_target(argv + 2, envp);
	err("bulkhead parent-death: exec of ");
	err(argv[2]);
	err(" failed\n");
	stage_exit(122);
}

#ifdef BULKHEAD_NOLIBC
__attribute__((used, noreturn)) void start_c(long *sp) {
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);
	stage(argc, argv, argv + argc + 1);
	stage_exit(122);
	__builtin_unreachable();
}
#else
extern char **environ;
int main(int argc, char **argv) {
	stage(argc, argv, environ);
	return 122;
}
#endif
