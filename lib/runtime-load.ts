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
 * `runtimeFrom`: which runtime file the facade loaded (a `RuntimeFrom` of lib/util/runtime-loader.ts):
 * `environment`, the broker's, named in the helper environment; `own`, the facade's own copy.
 */
export const runtimeLoad: { codeCache: string; validatorsCache: string; runtimeFrom: string } = { codeCache: 'off', validatorsCache: 'off', runtimeFrom: 'own' };
