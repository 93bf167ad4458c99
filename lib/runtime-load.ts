/**
 * How this process loaded bulkhead's helper runtime. Part of the runtime
 * (re-exported by lib/service.ts as an internal name); the `bulkhead/service`
 * facade fills it in after loading the runtime (lib/util/runtime-loader.ts).
 * @module
 */

/**
 * @internal `codeCache`: what became of the broker's code cache in this load (a
 * `CodeCacheState` of lib/util/runtime-loader.ts: off, missing, stale, rejected or accepted).
 * `validatorsCache`: the same for the protocol's precompiled validators module, once serve()
 * loaded it (lib/protocol/validators-loader.ts; `off` until then, or without one).
 */
export const runtimeLoad: { codeCache: string; validatorsCache: string } = { codeCache: 'off', validatorsCache: 'off' };
