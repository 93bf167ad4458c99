/**
 * A prewarmed spare must share one runtime instance with its service module:
 * the prewarm entry (lib/prewarm.ts) imports `bulkhead/service` from the
 * broker's own package directory, then the service module, and both must get
 * the same module. With `--preserve-symlinks` (or `NODE_PRESERVE_SYMLINKS=1`)
 * and bulkhead installed through a link (`npm link`, a workspace), node keeps
 * the link's path for the service's import: a second URL, a second runtime.
 * The service's serve() then runs on that second instance, which was never
 * told it runs in a spare, so the spare says hello before it is warm and is
 * refused; after three such spares none is started and every launch is a
 * plain one, with no error anywhere. Refused at registration instead.
 * @module
 */
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { bulkheadError } from '../errors.js';
import type { ServiceManifest } from './manifest.js';
import { PACKAGE_ROOT } from './package-paths.js';

/** Whether node keeps symlinked paths when it resolves this service's imports. */
function preservesSymlinks(manifest: ServiceManifest): boolean {
  return (manifest.nodeArgs ?? []).includes('--preserve-symlinks') || manifest.env?.['NODE_PRESERVE_SYMLINKS'] === '1';
}

/** The `node_modules/bulkhead` node finds first for a module in `dir` (the path as found, links kept), or undefined. */
function bulkheadSeenFrom(dir: string): string | undefined {
  for (let at = resolve(dir); ; at = dirname(at)) {
    const candidate = join(at, 'node_modules', 'bulkhead');
    if (!at.endsWith('/node_modules') && existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(at) === at) return undefined;
  }
}

/**
 * Refuses a prewarmed service whose module would load a second instance of
 * this bulkhead (see the module comment). Another copy of bulkhead is not
 * this check's business.
 * @throws BulkheadError `ERR_INVALID_MANIFEST` (pointer `/nodeArgs`, or `/env` for the variable)
 */
export function checkPrewarmRuntime(manifest: ServiceManifest, entry: string, source: string): void {
  if (manifest.launch?.prewarm !== true || !preservesSymlinks(manifest)) return;
  const seen = bulkheadSeenFrom(dirname(entry));
  if (seen === undefined) return;
  const ours = resolve(PACKAGE_ROOT);
  let same: boolean;
  try {
    same = seen !== ours && realpathSync(seen) === realpathSync(ours);
  } catch {
    return;
  }
  if (!same) return;
  const how = (manifest.nodeArgs ?? []).includes('--preserve-symlinks') ? 'nodeArgs has --preserve-symlinks' : 'env has NODE_PRESERVE_SYMLINKS=1';
  throw bulkheadError(
    'ERR_INVALID_MANIFEST',
    `Manifest for service "${manifest.name}" (${source}): launch.prewarm cannot work here: ${how}, so the service imports bulkhead through the link ${seen}, while the spare's entry imports it from ${ours}: two runtime instances, and the spare would never serve. Drop --preserve-symlinks (or NODE_PRESERVE_SYMLINKS), drop launch.prewarm, or install bulkhead without a link.`,
    { source, pointer: how.startsWith('nodeArgs') ? '/nodeArgs' : '/env' },
  );
}
