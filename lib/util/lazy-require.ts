/**
 * A CommonJS `require` made at first use. The modules that need one (ajv's
 * loader, the validators module writer and loader, the OpenTelemetry lookup)
 * sit in the helper's bundle, and loading `node:module` at import
 * costs a helper's start ~0.5 ms on Node 20 (~0.15 ms on 24/26) even when
 * nothing is ever required: so `node:module` is reached through
 * `process.getBuiltinModule`, and only on the first call.
 * @module
 */

/**
 * Returns a function that gives `require` for the module at `from` (a file path or URL), made on its first call
 * and kept.
 * @param from - the file or `import.meta.url` that requires resolve against
 */
export function lazyRequire(from: string): () => NodeJS.Require {
  let made: NodeJS.Require | undefined;
  return () => (made ??= process.getBuiltinModule('node:module').createRequire(from));
}
