/* Round eight (issue 19), a prototype, not shipped: an earlier sign of a helper's death than the EOF of its
 * channel. Forks a sentinel that keeps only fd FD and has PR_SET_PDEATHSIG SIGKILL, closes FD, then execs the
 * command (node). The kernel sends the pdeath signal in exit_notify of the *thread* that forked the sentinel
 * (node's main thread after the exec); when that thread is not the last of the process to leave exit_mm, this
 * comes before the address space is torn down, hence before the channel's EOF. The sentinel becomes a zombie
 * of whatever reaps orphans (pid 1 here does not reap: see bench/README.md, round eight).
 * usage: pdeath-sentinel FD CMD ARGS... */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc < 3) return 2;
  int fd = atoi(argv[1]);
  pid_t parent = getpid();
  pid_t child = fork();
  if (child < 0) {
    perror("fork");
    return 1;
  }
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(0);
    for (int i = 0; i < 1024; i++) if (i != fd) close(i);
    for (;;) pause();
  }
  close(fd);
  execv(argv[2], argv + 2);
  perror("execv");
  return 1;
}
