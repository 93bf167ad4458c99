/**
 * Where bulkhead itself lives on disk: helpers must be able to read its code
 * and its runtime dependencies even inside a sandbox that allows nothing else.
 * @module
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** bulkhead's package root (holds package.json, dist/, protocols/, sandbox-profiles/). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Profiles shipped with bulkhead. */
export const SHIPPED_PROFILES_DIR = join(PACKAGE_ROOT, 'sandbox-profiles');

/** Packages the helper runtime imports. */
const RUNTIME_DEPENDENCIES = ['cbor-x', 'ajv', 'ajv-formats'];

/** Directories a helper needs to read to load `bulkhead/service`. */
export function runtimeReadPaths(): string[] {
  const require = createRequire(import.meta.url);
  // Only what loading bulkhead/service needs: not the package's tests, .git or benches.
  const paths = new Set<string>(['package.json', 'dist/lib', 'protocols'].map((p) => join(PACKAGE_ROOT, p)));
  for (const name of RUNTIME_DEPENDENCIES) {
    try {
      // <node_modules>/<name>/package.json → <node_modules>
      paths.add(dirname(dirname(require.resolve(`${name}/package.json`))));
    } catch {
      // Not resolvable from here (unusual layout); the package root still covers a local install.
    }
  }
  return [...paths];
}
