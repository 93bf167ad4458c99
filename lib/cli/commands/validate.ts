/**
 * `bulkhead validate [paths...]`: checks protocol files, bulkhead config files
 * and sandbox profiles; one line per problem; exit 1 on any problem.
 * @module
 */
import { Option, type Command } from 'commander';
import { EXIT_CODES, type ExitCode } from '../exit-codes.js';
import type { FileKind } from '../files.js';
import { formatProblem } from '../problems.js';

/** Options of `bulkhead validate`. */
export interface ValidateCommandOptions {
  json?: boolean;
  as?: FileKind;
}

/** Registers `validate` on the program. `run` receives each invocation's exit code. */
export function registerValidate(program: Command, run: (work: () => Promise<ExitCode>) => Promise<void>): void {
  program
    .command('validate')
    .summary('check protocols, config files and sandbox profiles')
    .description(
      'Check protocol files (schema, strict-mode JSON Schemas, file name = "name"), bulkhead config files ' +
      '({ root?, maxFrameBytes?, services: [...] }: every manifest, entry file, protocol and sandbox profile) ' +
      'and sandbox profiles. A directory contributes its *.json files and those of its protocols/ and ' +
      'sandbox-profiles/ subdirectories. Prints one line per problem: file, JSON pointer, what to do.',
    )
    .argument('[paths...]', 'files or directories to check', ['.'])
    .option('--json', 'print a JSON report { ok, checked, skipped, problems } instead of lines')
    .addOption(new Option('--as <kind>', 'treat every file as this kind instead of guessing').choices(['protocol', 'config', 'profile']))
    .addHelpText('after', `
Examples:
  $ bulkhead validate                                   # ./*.json, ./protocols/, ./sandbox-profiles/
  $ bulkhead validate protocols/com.example.echo.json
  $ bulkhead validate bulkhead.json --json
  $ bulkhead validate etc/ --as profile

Output (one line per problem):
  protocols/com.example.echo.json: /methods/echo/params: schema at ... does not compile: ... (ERR_INVALID_PROTOCOL)

Exit codes: 0 no problems, 1 problems found (or bad arguments), 2 internal error.`)
    .action((paths: string[], options: ValidateCommandOptions) => run(async () => {
      // Loaded on use: the checks pull in the broker, ajv and the sandbox layer, which --help does not need.
      const { validatePaths } = await import('../validate.js');
      const report = await validatePaths(paths, options.as === undefined ? {} : { as: options.as });
      if (options.json === true) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      } else {
        for (const problem of report.problems) process.stdout.write(`${formatProblem(problem)}\n`);
        const files = `${report.checked.length} file${report.checked.length === 1 ? '' : 's'}`;
        process.stdout.write(report.ok
          ? `ok: ${files} checked (${summary(report.checked.map((c) => c.kind))}).\n`
          : `${report.problems.length} problem${report.problems.length === 1 ? '' : 's'} in ${files} checked.\n`);
      }
      return report.ok ? EXIT_CODES.ok : EXIT_CODES.invalid;
    }));
}

function summary(kinds: FileKind[]): string {
  const count = (kind: FileKind) => kinds.filter((k) => k === kind).length;
  return `${count('protocol')} protocol, ${count('config')} config, ${count('profile')} profile`;
}
