/* Round eight (issue 19), a prototype, not shipped: the earliest sign of a process's death a peer can get without
 * ptrace. Maps FILE (a page under /dev/shm), initialises a robust, process-shared mutex in it, writes "ready" on
 * stdout once the mutex is owned by someone else (the helper locks it with koffi: glibc links it into the locking
 * thread's robust list), then blocks in pthread_mutex_lock. When the owner thread dies the kernel walks its robust
 * list in exit_mm_release (futex_exit_release), at the start of exit_mm, before the address space is torn down,
 * marks the word FUTEX_OWNER_DIED and wakes this waiter: it gets EOWNERDEAD and exits, so its stdout's EOF reaches
 * the parent while the dead process's teardown is still running.
 * With --existing, FILE already holds the mutex, made and locked by the helper (fixtures/echo-robust-service.js):
 * nothing is initialised, and a word still 0 (never locked) exits 2 rather than taking the lock.
 * usage: robust-waiter FILE [--existing] */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc < 2) return 2;
  if (argc == 3) {
    int fd = open(argv[1], O_RDWR);
    if (fd < 0) return 1;
    pthread_mutex_t *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED || __atomic_load_n((int *)m, __ATOMIC_ACQUIRE) == 0) return 2;
    printf("ready\n");
    fflush(stdout);
    return pthread_mutex_lock(m) == EOWNERDEAD ? 0 : 3;
  }
  int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate(fd, 4096) != 0) return 1;
  pthread_mutex_t *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) return 1;
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(m, &a);
  printf("init\n");
  fflush(stdout);
  /* Wait until the helper owns it (the futex word holds its tid), then say so and block. */
  while (__atomic_load_n((int *)m, __ATOMIC_ACQUIRE) == 0) usleep(1000);
  printf("ready\n");
  fflush(stdout);
  int r = pthread_mutex_lock(m);
  return r == EOWNERDEAD ? 0 : 3;
}
