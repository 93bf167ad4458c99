/**
 * Every helper dies with its broker, whatever its profile. A sandboxed helper
 * runs under bubblewrap's `--die-with-parent`; an unsandboxed one is started
 * through a stage that sets the kernel's parent-death signal (prctl
 * PR_SET_PDEATHSIG) and execs node: when the broker dies, even a helper whose
 * event loop is blocked is killed by the kernel (noticing fd 3 close needs a
 * running event loop). The stage is bulkhead's native one
 * (native/parent-death/parent_death.c, built by `npm run build` where a C
 * compiler exists), else util-linux's `setpriv --pdeathsig KILL`, else none.
 * Both exec, so the pid and the exit status are node's own.
 * @module
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { elfProblem } from './elf-check.js';
import type { SandboxLaunchPlan } from '../sandbox/index.js';

/** Where setpriv is looked for (util-linux). */
const SETPRIV_PATHS = ['/usr/bin/setpriv', '/bin/setpriv', '/usr/sbin/setpriv'];

/** The native stage, built by `npm run build` where a C compiler exists (scripts/build-parent-death.mjs). */
export const NATIVE_PARENT_DEATH_STAGE = fileURLToPath(new URL('../../native/parent-death', import.meta.url));

/** What the native stage exits with when its parent is no longer the broker it was given. */
export const PARENT_GONE_EXIT = 121;

let setpriv: string | null | undefined;
let native: { stage: string | null } | undefined;

/** The setpriv binary, or null when this host has none. */
export function setprivPath(): string | null {
  setpriv ??= SETPRIV_PATHS.find((path) => existsSync(path)) ?? null;
  return setpriv;
}

/**
 * `stage` when it was built, is executable and its ELF header says it runs on
 * this host ({@link elfProblem}), else null. Read, not run: a probe spawn would
 * cost the first launch a process start.
 */
export function verifiedNativeStage(stage: string): string | null {
  try {
    accessSync(stage, constants.X_OK);
  } catch {
    return null;
  }
  return elfProblem(stage) === null ? stage : null;
}

/** The built native stage when it runs on this host (checked once per process), else null: setpriv serves. */
export function nativeParentDeathStage(): string | null {
  native ??= { stage: verifiedNativeStage(NATIVE_PARENT_DEATH_STAGE) };
  return native.stage;
}

/** True when the plan's command line already ties the helper's life to the broker's. */
export function diesWithParent(plan: Pick<SandboxLaunchPlan, 'command' | 'args'>): boolean {
  return plan.args.includes('--die-with-parent') || plan.args.includes('--pdeathsig') || plan.command === NATIVE_PARENT_DEATH_STAGE || plan.args.includes(NATIVE_PARENT_DEATH_STAGE);
}

/**
 * The plan to spawn: unchanged when it already dies with its parent, else
 * prefixed with the native stage (`parent-death <broker pid> <command> ...`),
 * or without one with `setpriv --pdeathsig KILL --`. On a host with neither the plan is unchanged
 * (the helper then only notices fd 3 closing).
 * @param stage - the native stage, or null for setpriv @default {@link nativeParentDeathStage}()
 */
export function withParentDeathSignal<P extends Pick<SandboxLaunchPlan, 'command' | 'args'>>(plan: P, stage: string | null = nativeParentDeathStage()): P {
  if (diesWithParent(plan)) return plan;
  const afterUidDrop = stageAfterUidDrop(plan, stage);
  if (afterUidDrop !== null) return afterUidDrop;
  // The stage execs a path, never a PATH lookup: a bare command name goes through setpriv.
  if (stage !== null && plan.command.includes('/')) return { ...plan, command: stage, args: [String(process.pid), plan.command, ...plan.args] };
  const binary = setprivPath();
  if (binary === null) return plan;
  return { ...plan, command: binary, args: ['--pdeathsig', 'KILL', '--', plan.command, ...plan.args] };
}

/**
 * A plan that drops the helper's user with `setpriv --reuid=…` (a root broker
 * without bubblewrap) gets the stage right after that setpriv, not around it:
 * the kernel clears the parent-death signal at a uid change, so set outside it
 * would be lost. Every wrapper execs, so the stage's parent is still the broker.
 * Null when the plan drops no user this way.
 */
function stageAfterUidDrop<P extends Pick<SandboxLaunchPlan, 'command' | 'args'>>(plan: P, stage: string | null): P | null {
  const drop = plan.args.findIndex((arg) => arg.startsWith('--reuid='));
  if (drop < 0) return null;
  const end = plan.args.indexOf('--', drop);
  if (end < 0) return null;
  const inner = plan.args[end + 1];
  let inserted: string[];
  if (stage !== null && inner?.includes('/') === true) inserted = [stage, String(process.pid)];
  else {
    const binary = setprivPath();
    if (binary === null) return null;
    inserted = [binary, '--pdeathsig', 'KILL', '--'];
  }
  return { ...plan, args: [...plan.args.slice(0, end + 1), ...inserted, ...plan.args.slice(end + 1)] };
}
