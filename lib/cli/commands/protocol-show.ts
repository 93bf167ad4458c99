/**
 * `bulkhead protocol show <name | file>`: prints a protocol document and its
 * schema hash, so a client in any language can see the methods, events and
 * errors it must speak and the hash its hello must carry. Names resolve in
 * `--dir` (default: the protocols shipped with bulkhead, among them the
 * daemon's own `bulkhead.control`).
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { PACKAGE_ROOT } from '../../broker/package-paths.js';
import { loadProtocolFile } from '../../protocol/registry.js';
import { EXIT_CODES, EXIT_CODES_HELP, type ExitCode } from '../exit-codes.js';
import { formatProblem, problemFromError } from '../problems.js';

/** Registers `show` under the `protocol` command. `run` receives each invocation's exit code. */
export function registerProtocolShow(protocol: Command, run: (work: () => Promise<ExitCode>) => Promise<void>): void {
  protocol
    .command('show')
    .summary('print a protocol document and its schema hash')
    .description('Print the protocol file as it is (stdout) followed by nothing else; with --hash, print only its schema hash (the hello\'s schemaHash, docs/wire.md section 5). A name is looked up as <dir>/<name>.json.')
    .argument('<protocol>', 'a protocol name (e.g. bulkhead.control) or a path to a protocol file')
    .option('--dir <dir>', 'directory to look names up in', join(PACKAGE_ROOT, 'protocols'))
    .option('--hash', 'print only the schema hash')
    .addHelpText('after', `
Examples:
  $ bulkhead protocol show bulkhead.control           # the daemon's control protocol
  $ bulkhead protocol show bulkhead.control --hash    # what a control client's hello carries
  $ bulkhead protocol show protocols/com.example.echo.json

${EXIT_CODES_HELP}`)
    .action((name: string, options: { dir: string; hash?: boolean }) => run(() => Promise.resolve(show(name, options))));
}

/** Prints one protocol file (or its hash); returns the exit code. */
function show(name: string, options: { dir: string; hash?: boolean }): ExitCode {
  const file = name.endsWith('.json') || name.includes('/') ? name : join(options.dir, `${name}.json`);
  if (!existsSync(file)) {
    process.stderr.write(`${file}: /: No such protocol file; check the name or pass --dir. (ENOENT)\n`);
    return EXIT_CODES.invalid;
  }
  let hash: string;
  try {
    hash = loadProtocolFile(file).hash;
  } catch (err) {
    process.stderr.write(`${formatProblem(problemFromError(err, file))}\n`);
    return EXIT_CODES.invalid;
  }
  process.stdout.write(options.hash === true ? `${hash}\n` : `${readFileSync(file, 'utf8').trimEnd()}\n`);
  if (options.hash !== true) process.stderr.write(`schema hash ${hash}\n`);
  return EXIT_CODES.ok;
}
