/**
 * Every helper dies with its broker, whatever its profile. A sandboxed helper
 * runs under bubblewrap's `--die-with-parent`; an unsandboxed one is started
 * through util-linux's `setpriv --pdeathsig KILL`, which sets the kernel's
 * parent-death signal (prctl PR_SET_PDEATHSIG) and execs node: when the broker
 * dies, even a helper whose event loop is blocked is killed by the kernel
 * (noticing fd 3 close needs a running event loop). setpriv execs, so the pid
 * and the exit status are node's own.
 * @module
 */
import { existsSync } from 'node:fs';
import type { SandboxLaunchPlan } from '../sandbox/index.js';

/** Where setpriv is looked for (util-linux). */
const SETPRIV_PATHS = ['/usr/bin/setpriv', '/bin/setpriv', '/usr/sbin/setpriv'];

let setpriv: string | null | undefined;

/** The setpriv binary, or null when this host has none. */
export function setprivPath(): string | null {
  setpriv ??= SETPRIV_PATHS.find((path) => existsSync(path)) ?? null;
  return setpriv;
}

/** True when the plan's command line already ties the helper's life to the broker's. */
export function diesWithParent(plan: Pick<SandboxLaunchPlan, 'command' | 'args'>): boolean {
  return plan.args.includes('--die-with-parent') || plan.args.includes('--pdeathsig');
}

/**
 * The plan to spawn: unchanged when it already dies with its parent, else
 * prefixed with `setpriv --pdeathsig KILL --`. On a host without setpriv the
 * plan is unchanged (the helper then only notices fd 3 closing).
 */
export function withParentDeathSignal<P extends Pick<SandboxLaunchPlan, 'command' | 'args'>>(plan: P): P {
  const binary = setprivPath();
  if (binary === null || diesWithParent(plan)) return plan;
  return { ...plan, command: binary, args: ['--pdeathsig', 'KILL', '--', plan.command, ...plan.args] };
}
