/**
 * tap's `after` script (package.json): removes the run's shared test CA (test/shared-ca.ts). It runs as a child
 * of the tap runner, as the test files do, so its parent names the same directory.
 *
 * tap starts this script with its processinfo `--import` and coverage on, whatever `disable-coverage` says; its
 * coverage file, written at its exit, races the runner's report, and when it lands first the run exits 1 for
 * "incomplete coverage" (seen once, Node 26 at load 17). So `npm test` runs tap with `_TAPJS_PROCESSINFO_COVERAGE_=0`
 * (this process then collects nothing), and `allow-incomplete-coverage` keeps a bare `npx tap` from failing on it.
 */
import { rmSync } from 'node:fs';
import { sharedCaRootOf } from './shared-ca-root.js';

rmSync(sharedCaRootOf(process.ppid), { recursive: true, force: true });
