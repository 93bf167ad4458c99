/* Round eight (issue 19): run a command with io_uring_setup refused (EPERM), as bulkhead's seccomp filter does
 * in every sandbox profile, to measure what libuv's io_uring rings cost a helper's teardown unsandboxed.
 * usage: no-io-uring CMD ARGS...   (built by early-sign.mjs; needs libseccomp-dev) */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc < 2) return 2;
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == NULL || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_setup), 0) != 0 || seccomp_load(ctx) != 0) {
    perror("seccomp");
    return 1;
  }
  execv(argv[1], argv + 1);
  perror("execv");
  return 1;
}
