/**
 * Names shared by the daemon and its clients, and how both load the control protocol.
 * @module
 */
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../broker/package-paths.js';
import type { CompiledProtocol } from '../protocol/compiled-protocol.js';
import { loadWithPackagedValidators } from '../protocol/packaged-validators.js';

/** Name under which a daemon serves its own control protocol (protocols/bulkhead.control.json). */
export const CONTROL_SERVICE = 'bulkhead.control';

/**
 * The control protocol (protocols/bulkhead.control.json), with the validators the build compiled for exactly that
 * file (lib/protocol/packaged-validators.ts; compiled with ajv now when the file or ajv changed since the build).
 */
export function loadControlProtocol(): CompiledProtocol {
  return loadWithPackagedValidators(join(PACKAGE_ROOT, 'protocols'), CONTROL_SERVICE).protocol;
}
