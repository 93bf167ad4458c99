/**
 * tap's `after` script (package.json): removes the run's shared test CA (test/shared-ca.ts). It runs as a child
 * of the tap runner, as the test files do, so its parent names the same directory.
 */
import { rmSync } from 'node:fs';
import { sharedCaRootOf } from './shared-ca-root.js';

rmSync(sharedCaRootOf(process.ppid), { recursive: true, force: true });
