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
 * exits instead of starting a helper nobody owns. Then execs <path> with the
 * remaining arguments. Nothing else changes: fds, environment and signal mask
 * pass through untouched, and because it execs, the pid and the exit status
 * are node's own. PR_SET_PDEATHSIG survives the exec (node is not setuid).
 *
 * Exit codes: 120 bad arguments (also its answer when probed with none),
 * 121 the parent is not <broker pid> any more, 122 the exec failed,
 * 123 prctl failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: parent-death <broker pid> <path> [args...]\n");
		return 120;
	}
	char *end = NULL;
	errno = 0;
	long broker = strtol(argv[1], &end, 10);
	if (errno != 0 || end == argv[1] || *end != '\0' || broker <= 0) {
		fprintf(stderr, "bulkhead parent-death: bad broker pid '%s'\n", argv[1]);
		return 120;
	}
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
		fprintf(stderr, "bulkhead parent-death: prctl(PR_SET_PDEATHSIG): %s\n", strerror(errno));
		return 123;
	}
	/* After the prctl: a parent that is still the broker will signal us when it dies. */
	pid_t parent = getppid();
	if ((long)parent != broker) {
		fprintf(stderr, "bulkhead parent-death: the broker (pid %ld) died before the helper started (parent is now %ld); not starting %s\n", broker, (long)parent, argv[2]);
		return 121;
	}
	if (strchr(argv[2], '/') != NULL) execv(argv[2], argv + 2);
	else execvp(argv[2], argv + 2);
	fprintf(stderr, "bulkhead parent-death: exec %s: %s\n", argv[2], strerror(errno));
	return 122;
}
