/**
 * `bulkhead types <protocols...> -o <dir>`: writes `<dir>/<protocol name>.ts`
 * with a `ProtocolShape`-compatible interface for each protocol file.
 * @module
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Command } from 'commander';
import { loadProtocolFile } from '../../protocol/registry.js';
import { EXIT_CODES, type ExitCode } from '../exit-codes.js';
import { collectJsonFiles } from '../files.js';
import { formatProblem, problemFromError } from '../problems.js';

/** Options of `bulkhead types`. */
export interface TypesCommandOptions {
  out: string;
  looseObjects?: boolean;
  check?: boolean;
}

/** Registers `types` on the program. `run` receives each invocation's exit code. */
export function registerTypes(program: Command, run: (work: () => Promise<ExitCode>) => Promise<void>): void {
  program
    .command('types')
    .summary('generate TypeScript types from protocol files')
    .description(
      'Generate <dir>/<protocol name>.ts for each protocol file: an interface to pass to ' +
      'broker.connect<T>() and serve<T>() (e.g. ComExampleEchoProtocol), plus a type per ' +
      'method params/result (EchoParams, EchoResult) and event payload (TickEvent). ' +
      'A directory contributes the protocol files in it and in its protocols/ subdirectory. Object schemas that list "properties" but do not ' +
      'set "additionalProperties" get only their declared fields (see --loose-objects).',
    )
    .argument('<protocols...>', 'protocol files or directories of them')
    .requiredOption('-o, --out <dir>', 'directory to write the .ts files to (created if missing)')
    .option('--loose-objects', 'give objects that do not set additionalProperties an index signature [k: string]: unknown')
    .option('--check', 'write nothing; exit 1 if any output file is missing or out of date (for CI)')
    .addHelpText('after', `
Examples:
  $ bulkhead types protocols/ -o src/generated
  $ bulkhead types protocols/com.example.echo.json -o src/generated
  $ bulkhead types protocols/ -o src/generated --check     # in CI: fail when types are stale

Then:
  import type { ComExampleEchoProtocol } from './generated/com.example.echo.js';
  const echo = broker.connect<ComExampleEchoProtocol>('com.example.echo');
  const { text } = await echo.call('echo', { text: 'hi' });

Exit codes: 0 written (or up to date with --check), 1 invalid protocol, stale output or bad arguments, 2 internal error.`)
    .action((inputs: string[], options: TypesCommandOptions) => run(() => generate(inputs, options)));
}

async function generate(inputs: string[], options: TypesCommandOptions): Promise<ExitCode> {
  // Loaded here, not at the top: json-schema-to-typescript (and prettier) would slow every other command.
  const { generateProtocolTypes, protocolTypeNames } = await import('../typegen.js');
  const found = collectJsonFiles(inputs, { subdirs: ['protocol'] });
  const { missing } = found;
  // In a directory, take protocol files only (an app root also holds package.json and the like).
  const files = found.files.filter((f) => f.explicit || f.hint === 'protocol' || looksLikeProtocol(f.path));
  for (const path of missing) process.stderr.write(`${path}: /: No such file or directory; check the path. (ENOENT)\n`);
  if (missing.length > 0) return EXIT_CODES.invalid;
  if (files.length === 0) {
    process.stderr.write(`bulkhead types: no .json protocol files in ${inputs.join(', ')}.\n`);
    return EXIT_CODES.invalid;
  }
  if (isExisting(options.out) && !statSync(options.out).isDirectory()) {
    process.stderr.write(`bulkhead types: --out ${options.out} is not a directory.\n`);
    return EXIT_CODES.invalid;
  }
  const outputs = new Map<string, { source: string; text: string; name: string }>();
  let failed = false;
  for (const { path } of files) {
    try {
      // The broker finds protocol <name> at protocols/<name>.json, so the two must agree.
      const protocol = loadProtocolFile(path, basename(path, '.json'));
      const target = join(options.out, `${protocol.name}.ts`);
      const earlier = outputs.get(target);
      if (earlier !== undefined) {
        process.stderr.write(`${path}: /name: protocol ${protocol.name} was already read from ${earlier.source}; pass each protocol once. (ERR_INVALID_PROTOCOL)\n`);
        failed = true;
        continue;
      }
      const text = await generateProtocolTypes(protocol.document, { source: path, looseObjects: options.looseObjects === true });
      outputs.set(target, { source: path, text, name: protocolTypeNames(protocol.document).protocol });
    } catch (err) {
      process.stderr.write(`${formatProblem(problemFromError(err, path))}\n`);
      failed = true;
    }
  }
  if (failed) return EXIT_CODES.invalid;
  if (options.check === true) {
    let stale = 0;
    for (const [target, { source, text }] of outputs) {
      const current = isExisting(target) ? readFileSync(target, 'utf8') : undefined;
      if (current === text) continue;
      stale++;
      process.stdout.write(`${target}: ${current === undefined ? 'missing' : 'out of date'}; run bulkhead types ${source} -o ${options.out}\n`);
    }
    if (stale === 0) process.stdout.write(`ok: ${outputs.size} file${outputs.size === 1 ? '' : 's'} up to date.\n`);
    return stale === 0 ? EXIT_CODES.ok : EXIT_CODES.invalid;
  }
  for (const [target, { text, name }] of outputs) {
    try {
      mkdirSync(options.out, { recursive: true });
      writeFileSync(target, text);
    } catch (err) {
      // An unwritable output path is the user's to fix, not a bulkhead bug.
      process.stderr.write(`${target}: /: cannot write: ${(err as Error).message} (${(err as NodeJS.ErrnoException).code ?? 'EIO'})\n`);
      return EXIT_CODES.invalid;
    }
    process.stdout.write(`${target} (${name})\n`);
  }
  return EXIT_CODES.ok;
}

function looksLikeProtocol(path: string): boolean {
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    return typeof value === 'object' && value !== null && Object.hasOwn(value, 'methods');
  } catch {
    return false;
  }
}

function isExisting(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}
