/**
 * The helper's environment: built from an allowlist, never a copy of
 * `process.env` (a broker's secrets in its env must not reach a helper).
 * @module
 */
import { bulkheadError } from '../errors.js';

/** Variables an unsandboxed helper inherits from the broker (the behaviour without a profile). */
export const UNSANDBOXED_ENV_ALLOWLIST = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'NODE_ENV'] as const;

/** PATH inside a sandbox: system directories only, never the broker's PATH. */
export const SANDBOX_PATH = '/usr/local/bin:/usr/bin:/bin';

/**
 * Variables that would let a helper loosen its own sandbox (NODE_OPTIONS can
 * carry `--allow-fs-read=/`) or inject code into wrappers (LD_PRELOAD).
 */
const FORBIDDEN_IN_SANDBOX = /^(NODE_OPTIONS|LD_[A-Z_]+|NODE_REPL_EXTERNAL_MODULE)$/;

function pick(names: readonly string[], source: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of names) {
    const value = source[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/** Environment of a helper launched without a profile (today's behaviour: a small allowlist). */
export function unsandboxedEnv(own: Readonly<Record<string, string>>, source: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return { ...pick(UNSANDBOXED_ENV_ALLOWLIST, source), ...own };
}

/**
 * Environment of a sandboxed helper: fixed PATH, HOME and TMPDIR in scratch,
 * the profile's allowlisted names from the broker's env, then bulkhead's own variables.
 * @throws BulkheadError `ERR_INVALID_PROFILE` / `ERR_INVALID_MANIFEST` when a variable could loosen the sandbox
 */
export function sandboxEnv(options: { profile: string; service: string; allowlist: readonly string[]; own: Readonly<Record<string, string>>; home: string; tmp: string; source?: NodeJS.ProcessEnv }): Record<string, string> {
  for (const name of options.allowlist) {
    if (FORBIDDEN_IN_SANDBOX.test(name)) {
      throw bulkheadError('ERR_INVALID_PROFILE', `Sandbox profile "${options.profile}": /env may not pass ${name} (it could loosen the sandbox). Remove it; pass node flags with the manifest's nodeArgs instead.`, { profile: options.profile, pointer: '/env' });
    }
  }
  for (const name of Object.keys(options.own)) {
    if (FORBIDDEN_IN_SANDBOX.test(name)) {
      throw bulkheadError('ERR_INVALID_MANIFEST', `Service "${options.service}" runs in sandbox profile "${options.profile}", so its env may not set ${name} (it could loosen the sandbox). Remove it from the manifest's env.`, { service: options.service, pointer: `/env/${name}` });
    }
  }
  return {
    PATH: SANDBOX_PATH,
    HOME: options.home,
    TMPDIR: options.tmp,
    ...pick(options.allowlist, options.source ?? process.env),
    ...options.own,
  };
}
