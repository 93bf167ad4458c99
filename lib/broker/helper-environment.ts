/**
 * What one helper launch is given: its entry (the service's, or the prewarm
 * entry for a spare), the variables its runtime reads (protocol file, frame
 * limit, heartbeat, precompiled validators, the protocols of services it may
 * call) and the paths its sandbox must let it read. The variables' names
 * and meanings are the contract in lib/wire/helper-env.ts.
 * @module
 */
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { precompileValidators, validatorsDir, VALIDATORS_ENV } from '../protocol/precompiled.js';
import { validatorsModuleSource } from '../protocol/validators-module.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import type { SandboxLaunchInput } from '../sandbox/index.js';
import { HELPER_ENV } from '../wire/helper-env.js';
import type { ResolvedService, SupervisorContext } from './supervisor-types.js';
import { COMPILE_CACHE_ENV, compileCacheDir } from './compile-cache.js';
import { RUNTIME_SCRIPT, runtimeCacheDir } from './code-cache.js';
import { RPC_CLIENT_DEFAULTS } from '../connection/rpc-client-options.js';

/** The entry a prewarmed spare runs until it is activated. */
const PREWARM_ENTRY = fileURLToPath(new URL('../prewarm.js', import.meta.url));

/**
 * Heartbeat interval of a helper without a watchdog, in ms: enough to show in
 * status how long a busy loop has held it (one tiny frame a second).
 */
export const DEFAULT_HEARTBEAT_MS = 1000;

/** The helper's heartbeat interval for a watchdog of `watchdogMs` (four beats per period, at most one a second). */
export function heartbeatInterval(watchdogMs: number | undefined): number {
  if (watchdogMs === undefined) return DEFAULT_HEARTBEAT_MS;
  return Math.max(5, Math.min(DEFAULT_HEARTBEAT_MS, Math.floor(watchdogMs / 4)));
}

/** The precompiled validators module of a protocol, made once per supervisor. */
export class ValidatorCache {
  private file: string | null | undefined;

  constructor(private readonly protocol: CompiledProtocol) {}

  /** Its path, or undefined when it cannot be made (the helper then compiles its schemas itself). */
  get(): string | undefined {
    if (this.file === undefined) {
      try {
        this.file = precompileValidators(this.protocol) ?? null;
      } catch {
        // No cache (read-only tmp, odd schema): the helper compiles its schemas itself.
        this.file = null;
      }
    }
    return this.file ?? undefined;
  }

  private text: Buffer | null | undefined;

  /**
   * The module's bytes, generated in this process (never read from a file): what a helper is given by value where
   * the broker's files may hold planted code (lib/broker/validators-by-value.ts). Generated once (14–85 ms of ajv
   * compiling, on the broker's thread) and kept; undefined when the schemas cannot be compiled standalone.
   */
  source(): Buffer | undefined {
    if (this.text === undefined) {
      try {
        this.text = validatorsModuleSource(this.protocol);
      } catch {
        this.text = null;
      }
    }
    return this.text ?? undefined;
  }
}

/** A launch's input to the sandbox layer, with what the broker's cache writers need from it. */
export type HelperLaunchInput = SandboxLaunchInput & {
  /**
   * The runtime cache directory of the launch's node binary (lib/broker/code-cache.ts), found once per launch (the
   * binary is stat'ed once) and passed down to the cache writers; undefined when there is none.
   */
  runtimeCache: string | undefined;
};

/** What the sandbox layer needs to plan one launch (a spare runs the prewarm entry instead). */
export function helperLaunchInput(resolved: ResolvedService, ctx: SupervisorContext, validators: ValidatorCache, spare: boolean): HelperLaunchInput {
  const { manifest } = resolved;
  const input: HelperLaunchInput = {
    runtimeCache: undefined,
    service: manifest.name,
    entry: spare ? PREWARM_ENTRY : resolved.entry,
    serviceDir: resolved.serviceDir,
    implicitReads: [...ctx.implicitReads, resolved.protocolFile],
    nodePath: ctx.nodePath,
    nodeArgs: manifest.nodeArgs ?? [],
    env: {
      ...manifest.env,
      [HELPER_ENV.protocolFile]: resolved.protocolFile,
      [HELPER_ENV.maxFrameBytes]: String(ctx.maxFrameBytes),
      [HELPER_ENV.heartbeatMs]: String(heartbeatInterval(manifest.launch?.watchdogMs)),
      // The helper enforces them across its direct channels too (the broker sees only what it routes).
      [HELPER_ENV.maxInFlight]: String(manifest.maxInFlight ?? RPC_CLIENT_DEFAULTS.maxInFlight),
      [HELPER_ENV.maxQueued]: String(manifest.maxQueued ?? RPC_CLIENT_DEFAULTS.maxQueued),
      // The facade loads this file when it is its own build's runtime: no import.meta at start (lib/util/runtime-loader.ts).
      [HELPER_ENV.runtime]: RUNTIME_SCRIPT,
      ...(spare ? { [HELPER_ENV.entry]: resolved.entry } : {}),
      // The broker's own BULKHEAD_DEBUG=1 is passed on: the same name, read on both sides.
      ...(process.env[HELPER_ENV.debug] === '1' ? { [HELPER_ENV.debug]: '1' } : {}),
    },
    profile: resolved.profile,
    paths: resolved.sandboxPaths,
    // A prewarmed service's sandboxed node may get an mm holder (its crash's takeover before the kernel's teardown).
    ...(manifest.launch?.prewarm === true ? { mmHolder: true } : {}),
  };
  const compileCache = compileCacheDir();
  if (compileCache !== undefined) {
    // V8's compile cache, which the broker alone writes (lib/broker/compile-cache.ts); ignored by Node 20.
    input.env[COMPILE_CACHE_ENV] = compileCache;
    // And the runtime's own code cache, on every Node line, in a subdirectory per node binary (lib/broker/code-cache.ts).
    const runtimeCache = runtimeCacheDir(ctx.nodePath);
    input.runtimeCache = runtimeCache;
    if (runtimeCache !== undefined) input.env[HELPER_ENV.codeCache] = runtimeCache;
    else Reflect.deleteProperty(input.env, HELPER_ENV.codeCache);
    input.implicitReads.push(compileCache);
    input.compileCache = compileCache;
  } else {
    // Cache off: a manifest's env must not point the helper at a cache of its choosing (code it would run).
    Reflect.deleteProperty(input.env, COMPILE_CACHE_ENV);
    Reflect.deleteProperty(input.env, HELPER_ENV.codeCache);
  }
  const file = validators.get();
  if (file !== undefined) {
    input.env[VALIDATORS_ENV] = file;
    input.implicitReads.push(file);
  } else {
    // No module of the broker's: a manifest's env must not name one (the broker's unsandboxed cache writer would run it).
    Reflect.deleteProperty(input.env, VALIDATORS_ENV);
  }
  // Only the broker gives a module's text (lib/broker/validators-by-value.ts), never a manifest's env.
  Reflect.deleteProperty(input.env, HELPER_ENV.validatorsSource);
  // Only the broker asks a spare for an mm holder (helper-spawner.ts), never a manifest's env.
  Reflect.deleteProperty(input.env, HELPER_ENV.mmHolder);
  // Code other helpers load: read-only even inside a profile's write path, or withheld (lib/sandbox/broker-caches.ts).
  input.brokerCaches = {
    // The validators directory even when this protocol has no module there: other helpers load theirs from it.
    dirs: [...(compileCache !== undefined ? [compileCache] : []), file !== undefined ? dirname(file) : validatorsDir()],
    env: [COMPILE_CACHE_ENV, HELPER_ENV.codeCache, VALIDATORS_ENV],
  };
  const connects = manifest.connects ?? [];
  if (connects.length > 0) {
    // The helper's copies of its targets' protocols: it validates their results itself.
    const targets: Record<string, string> = {};
    for (const target of connects) {
      const protocolFile = ctx.lookup(target)?.protocolFile;
      if (protocolFile === undefined) continue;
      targets[target] = protocolFile;
      input.implicitReads.push(protocolFile);
    }
    input.env[HELPER_ENV.connects] = JSON.stringify(targets);
  }
  return input;
}
