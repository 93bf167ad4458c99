#!/usr/bin/env node
/**
 * The `bulkhead` executable (package.json `bin`). See {@link createProgram}
 * for the commands and `bulkhead --help` for examples and exit codes.
 * @module
 */
import { EXIT_CODES } from './exit-codes.js';
import { createProgram } from './program.js';

createProgram().parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`bulkhead: internal error: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = EXIT_CODES.internal;
});
