/**
 * Where bulkhead itself lives on disk, and which of its files a helper needs:
 * the helper runtime, file by file, never the package directory (which, in a
 * checkout, holds the dev dependencies and the tests).
 * @module
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageClosure } from '../sandbox/module-graph.js';

/** bulkhead's package root (holds package.json, dist/, protocols/, sandbox-profiles/). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Profiles shipped with bulkhead. */
export const SHIPPED_PROFILES_DIR = join(PACKAGE_ROOT, 'sandbox-profiles');

/**
 * The helper runtime's own files: `bulkhead/service` (an ESM facade with the runtime's loader bundled in, and the
 * runtime script it loads, cbor-x inside) and the prewarm entry.
 */
const RUNTIME_FILES = ['package.json', 'dist/lib/service.bundle.js', 'dist/lib/service.runtime.cjs', 'dist/lib/prewarm.js'];

/**
 * Packages the bundle loads at run time with `require` rather than bundling them: ajv's
 * runtime helpers (required by precompiled validators) and ajv + ajv-formats (when a helper
 * compiles its schemas itself).
 */
const RUNTIME_PACKAGES = ['ajv', 'ajv-formats'];

/**
 * What every sandboxed helper may read of bulkhead: its runtime files and the
 * directories of the packages they load at run time (with their dependencies).
 */
export function runtimeReadPaths(): string[] {
  const bundleDir = join(PACKAGE_ROOT, 'dist', 'lib');
  return [...RUNTIME_FILES.map((file) => join(PACKAGE_ROOT, file)), ...packageClosure(RUNTIME_PACKAGES, bundleDir)];
}
