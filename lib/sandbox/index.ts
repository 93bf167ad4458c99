/**
 * Sandbox layer: turns a service's sandbox profile into a concrete launch
 * command (wrappers, node flags, env, cwd) for this host, and reports which
 * layer enforces each rule. The broker only calls {@link planLaunch}.
 *
 * CONTRACT with lib/broker (keep these signatures stable):
 * - the broker calls `planLaunch(input)` before every launch and then runs
 *   `spawn(plan.command, plan.args, { env: plan.env, cwd: plan.cwd, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] })`;
 *   fd 3 is the broker's socketpair and must reach the node process.
 * - after the process has exited (and before any relaunch) the broker awaits `plan.cleanup()`.
 * - `plan.explainExit(code, signal)` may turn an exit into a reason such as
 *   "memory limit (256 MiB)"; the broker shows it in status and in ERR_INTERRUPTED.
 * @module
 */
import { bulkheadError } from '../errors.js';

/** What the broker knows about the helper it is about to launch. */
export interface SandboxLaunchInput {
  /** Service name (for messages and scratch dir names). */
  service: string;
  /** Absolute path of the helper's entry module. */
  entry: string;
  /** Absolute directory holding the helper's code (readable implicitly). */
  serviceDir: string;
  /** Absolute paths the helper must be able to read besides its code (e.g. its protocol file, bulkhead's own package). */
  implicitReads: string[];
  /** Absolute path of the node binary to run. */
  nodePath: string;
  /** Extra node flags from the manifest (placed before the entry). */
  nodeArgs: string[];
  /** bulkhead's own variables for the helper (always passed, never filtered). */
  env: Record<string, string>;
  /** The resolved profile, or undefined when the manifest names none. */
  profile: SandboxProfileRef | undefined;
}

/** A profile as the broker resolved it: its name and the parsed JSON document. */
export interface SandboxProfileRef {
  name: string;
  /** Parsed JSON of sandbox-profiles/<name>.json; validated by the sandbox layer. */
  document: unknown;
}

/** Which layer enforces one rule of a profile. */
export interface RuleEnforcement {
  /** Rule path, e.g. "network", "fs.read", "limits.memoryMiB". */
  rule: string;
  /** Layer names that enforce it, e.g. ["bubblewrap:netns"]; empty when nothing does. */
  layers: string[];
  /** True when no layer enforces the rule on this host. */
  unenforced: boolean;
  /** Human explanation. */
  detail?: string;
}

/** Per-launch enforcement report, shown by broker.status(). */
export interface EnforcementReport {
  /** Profile name, or "none". */
  profile: string;
  enforcement: 'strict' | 'best-effort' | 'none';
  rules: RuleEnforcement[];
}

/** What the broker runs. */
export interface SandboxLaunchPlan {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  report: EnforcementReport;
  /** Removes per-launch state (e.g. the scratch dir). Idempotent. */
  cleanup(): Promise<void>;
  /** Names a sandbox limit that explains this exit, if any. */
  explainExit(code: number | null, signal: NodeJS.Signals | null): string | undefined;
}

/** Variables a bare Node helper needs; everything else is scrubbed. */
const BASE_ENV_ALLOWLIST = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'NODE_ENV'] as const;

/**
 * Plans the launch of one helper.
 * @throws BulkheadError `ERR_SANDBOX_UNENFORCEABLE` (strict profile, missing layer) or `ERR_INVALID_PROFILE`.
 */
export async function planLaunch(input: SandboxLaunchInput): Promise<SandboxLaunchPlan> {
  if (input.profile !== undefined) {
    throw bulkheadError('ERR_SANDBOX_UNENFORCEABLE', `Service ${input.service}: sandbox profile "${input.profile.name}" cannot be enforced yet.`, { profile: input.profile.name });
  }
  const env: Record<string, string> = {};
  for (const key of BASE_ENV_ALLOWLIST) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  Object.assign(env, input.env);
  return {
    command: input.nodePath,
    args: [...input.nodeArgs, input.entry],
    env,
    cwd: input.serviceDir,
    report: { profile: 'none', enforcement: 'none', rules: [] },
    cleanup: async () => {},
    explainExit: () => undefined,
  };
}
