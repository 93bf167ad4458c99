/*
 * bulkhead's exec guard, native stage: the last step before a helper's node
 * (lib/sandbox/exec-guard.ts plans it, docs/sandbox.md#exec-after-start says why).
 *
 *   exec-guard <seccomp program, hex> [--mm-holder <library>] -- <path> [args...]
 *
 * With --mm-holder, <path> is exec'd with LD_PRELOAD=<library> (any LD_PRELOAD
 * the environment had is replaced): bulkhead's mm holder for sandboxed helpers
 * (native/mm-preload/mm_preload.c), which removes the variable again in node's
 * first instruction. Set here, after the broker's environment allowlist and the
 * manifest's env, so neither can name a library.
 *
 * Loads the guard's filter (execve refused, execveat handed to a listener,
 * no further filters) with a listener of its own, starts one thread that
 * answers the listener's first notification with CONTINUE, and execs <path>
 * with execveat. That exec is the one notification: it decides on the count,
 * never on the arguments. The exec closes the listener (O_CLOEXEC) and ends
 * the thread; from then on the kernel answers every execveat ENOSYS.
 *
 * Exit codes (as the node stage's): 120 bad arguments, 122 execveat failed,
 * 123 the guard could not be set up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

/* How long the answering thread waits for the exec to arrive. */
#define EXEC_TIMEOUT_MS 30000

static int listener = -1;

static void die(int code, const char *what) {
	fprintf(stderr, "bulkhead exec-guard: %s: %s\n", what, strerror(errno));
	_exit(code);
}

static void *answer(void *unused) {
	(void)unused;
	struct pollfd p = { .fd = listener, .events = POLLIN };
	if (poll(&p, 1, EXEC_TIMEOUT_MS) != 1)
		die(123, "the exec did not reach the listener");
	struct seccomp_notif notif;
	memset(&notif, 0, sizeof notif);
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &notif) != 0)
		die(123, "SECCOMP_IOCTL_NOTIF_RECV");
	if (notif.data.nr != __NR_execveat) {
		errno = EINVAL;
		die(123, "unexpected notification");
	}
	struct seccomp_notif_resp resp;
	memset(&resp, 0, sizeof resp);
	resp.id = notif.id;
	resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0)
		die(123, "SECCOMP_IOCTL_NOTIF_SEND");
	close(listener);
	return NULL;
}

static int hex(char c) {
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	return -1;
}

int main(int argc, char **argv) {
	const char *preload = NULL;
	int cmd = 3;
	if (argc >= 6 && strcmp(argv[2], "--mm-holder") == 0 && strcmp(argv[4], "--") == 0 && argv[3][0] == '/') {
		preload = argv[3];
		cmd = 5;
	}
	if (argc < cmd + 1 || strcmp(argv[cmd - 1], "--") != 0) {
		fprintf(stderr, "usage: exec-guard <seccomp program, hex> [--mm-holder <library>] -- <path> [args...]\n");
		return 120;
	}
	size_t len = strlen(argv[1]);
	if (len == 0 || len % (2 * sizeof(struct sock_filter)) != 0) {
		fprintf(stderr, "bulkhead exec-guard: the program is not whole instructions\n");
		return 120;
	}
	unsigned char *program = malloc(len / 2);
	if (program == NULL)
		die(123, "malloc");
	for (size_t i = 0; i < len / 2; i++) {
		int hi = hex(argv[1][2 * i]), lo = hex(argv[1][2 * i + 1]);
		if (hi < 0 || lo < 0) {
			fprintf(stderr, "bulkhead exec-guard: the program is not lower-case hex\n");
			return 120;
		}
		program[i] = (unsigned char)(hi << 4 | lo);
	}
	if (preload != NULL && setenv("LD_PRELOAD", preload, 1) != 0)
		die(123, "setenv(LD_PRELOAD)");
	struct sock_fprog prog = { .len = (unsigned short)(len / 2 / sizeof(struct sock_filter)), .filter = (struct sock_filter *)program };
	/* A filter needs no_new_privs (bubblewrap and setpriv set it already). */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		die(123, "prctl(PR_SET_NO_NEW_PRIVS)");
	/* Single-threaded here: the answering thread, created next, inherits the filter. */
	listener = (int)syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (listener < 0)
		die(123, "seccomp(SET_MODE_FILTER, NEW_LISTENER)");
	pthread_t thread;
	if ((errno = pthread_create(&thread, NULL, answer, NULL)) != 0)
		die(123, "pthread_create");
	syscall(__NR_execveat, AT_FDCWD, argv[cmd], &argv[cmd], environ, 0);
	die(122, "execveat");
}
