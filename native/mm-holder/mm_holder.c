/*
 * bulkhead's "mm holder" (issue 19, bench/README.md "Round nine: relaunch after a crash"): a Node-API addon an
 * unsandboxed prewarmed spare loads (lib/prewarm.ts) before it reports warm.
 *
 * Why: the kernel tears a SIGKILLed node's address space down in the exit_mm of its last thread, and only then
 * closes its fds (exit_files): the broker's EOF on fd 3, its first sign of the death, waits for the 1.5–2.5 ms
 * teardown. A process that shares node's mm without being one of its threads (clone CLONE_VM without CLONE_THREAD:
 * a SIGKILL to node's thread group does not reach it) turns every node thread's exit_mm into a reference drop, so
 * exit_files runs at once and the teardown happens later, in the holder's own exit.
 *
 *   start(delayMs: number): number   the holder's pid (> 0), or a negative code: -1 pipe2, -2 mmap, -3 clone
 *
 * start() makes a pipe (O_CLOEXEC: only node holds the write end; children node execs do not), blocks every
 * signal in the calling thread (all 64, glibc's 32 and 33 too, with a raw rt_sigprocmask) so the holder is born
 * with all of them blocked (none of node's handlers can ever run on its stack), clones the holder with
 * CLONE_VM | CLONE_PARENT on a stack of its own (named bh-mm-holder from birth: the calling thread wears that name
 * for the clone), restores the mask and the thread's name and closes the read end in node.
 * CLONE_PARENT: the holder is the broker's child, which reaps it (lib/broker/mm-holder-reaper.ts; its exit
 * signal is node's, SIGCHLD). The holder uses nothing but its stack and raw syscalls (errno and TLS are node's
 * main thread's; built with -fno-stack-protector: the canary lives in that TLS): it closes every fd but the
 * pipe's read end, names itself bh-mm-holder (again), blocks in read() until EOF (node's exit_files closed the write end)
 * or any error, waits delayMs (so that its teardown runs after the broker's takeover, not on the CPU the broker
 * needs: bench/README.md, relaunch6's trace), and exits. It never outlives node by more than that delay and its
 * own exit.
 */
#define _GNU_SOURCE
#include "holder_core.h"
#include <string.h>
#include <node_api.h>

static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t delay = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc >= 1 && napi_get_value_int32(env, argv[0], &delay) != napi_ok) delay = 0;
  if (delay < 0 || delay > 10000) delay = 0;
  napi_value result;
  if (napi_create_int32(env, start_holder(delay), &result) != napi_ok) return NULL;
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "start", NAPI_AUTO_LENGTH, start, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "start", fn) != napi_ok) return NULL;
  return exports;
}
