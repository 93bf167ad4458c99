/**
 * Starts a helper's child process: its stdio layout (fd 3 the broker's channel, fd 4 calls to other
 * services, the sandbox's inherited fds, then the hand-off pipe) in a process group of its own, so
 * sandbox wrappers and the node inside die together. Split from helper-process.ts.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { prepareHandoff, type HandoffPipe, type HandoffPipeHooks } from './handoff-pipe.js';
import type { HelperSpawnOptions } from './helper-spawn-options.js';

/** The child and its hand-off pipe (daemon mode), as {@link spawnHelperChild} made them. */
export interface HelperChild {
  child: ChildProcess;
  handoffPipe: HandoffPipe | undefined;
}

/**
 * Spawns the helper's process as `options.plan` says. `pipeHooks` are the hand-off pipe's (used only
 * when `options.handoff` asks for one); the pipe is made even when the spawn throws, as before the split.
 */
export function spawnHelperChild(options: HelperSpawnOptions, pipeHooks: HandoffPipeHooks): HelperChild {
  const { plan } = options;
  // fd 3: the broker's channel; fd 4 (only for services with `connects`): calls to other services.
  // fds 5, ...: what the sandbox hands its wrappers (bubblewrap's seccomp program); then the hand-off pipe.
  const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe', 'pipe', options.outbound === undefined ? 'ignore' : 'pipe', ...plan.inheritFds ?? []];
  const handoff = options.handoff === true ? prepareHandoff(options.service, plan.env, stdio.length) : undefined;
  if (handoff !== undefined) stdio.push(handoff.childFd);
  let child: ChildProcess;
  let handoffPipe: HandoffPipe | undefined;
  try {
    child = spawn(plan.command, plan.args, {
      env: handoff?.env ?? plan.env,
      cwd: plan.cwd,
      stdio: stdio.length === 5 && options.outbound === undefined ? stdio.slice(0, 4) : stdio,
      // Own process group: a stop or kill reaches wrappers and the node they exec.
      detached: true,
    });
  } finally {
    handoffPipe = handoff?.spawned(pipeHooks);
  }
  return { child, handoffPipe };
}
