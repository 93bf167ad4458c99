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
#include <stdlib.h>
/* The holder and its start (pipe, signals blocked, the clone, its name): shared with the unsandboxed addon. */
#include "../mm-holder/holder_core.h"

/* How long the holder waits after node's death before it exits (its teardown off the relaunch's CPUs). */
#define DELAY_MS 20

__attribute__((constructor)) static void bulkhead_mm_preload(void) {
  unsetenv("LD_PRELOAD");
  (void)start_holder(DELAY_MS); /* a failure leaves node as it was: no holder */
}
