/**
 * `bulkhead protocol diff OLD NEW`: every change between two versions of a
 * protocol file, each marked compatible or breaking with its JSON pointer
 * (the rules: docs/protocols.md, "Versioning"). Exits like diff(1): 0 when
 * every change is compatible (or there is none), 1 when one is breaking, 2
 * on a usage error (a file that does not exist, is not JSON or is not a
 * protocol).
 * @module
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { isBulkheadError } from '../../errors.js';
import { checkProtocolDocument, type ProtocolDocument } from '../../protocol/document.js';
import { diffProtocols } from '../../protocol/protocol-diff.js';
import type { ExitCode } from '../exit-codes.js';
import { registerProtocolShow } from './protocol-show.js';

/** Exit codes of `bulkhead protocol diff` (diff(1)'s convention, fixed by issue 16). */
export const PROTOCOL_DIFF_EXIT = { compatible: 0, breaking: 1, usage: 2 } as const;

/** Registers `protocol diff` on the program. */
export function registerProtocol(program: Command, run: (work: () => Promise<ExitCode>) => Promise<void>): void {
  const protocol = program
    .command('protocol')
    .summary('work with protocol files: show one, diff two versions')
    .addHelpText('after', `
Examples:
  $ bulkhead protocol show bulkhead.control
  $ bulkhead protocol diff v1/com.example.store.json protocols/com.example.store.json

Exit codes: see each subcommand's --help (diff follows diff(1): 0 compatible, 1 breaking, 2 usage error).`);
  registerProtocolShow(protocol, run);
  protocol
    .command('diff')
    .summary('compare two versions of a protocol: compatible or breaking')
    .description(
      'Print every change from OLD (the protocol clients were built with) to NEW (the one the ' +
      'service will serve), each marked "compatible" or "breaking" with its JSON pointer. ' +
      'What the service receives (params, accepts items) may only widen; what the client receives ' +
      '(results, yields items, events) may only narrow; methods and events may be added, not removed.',
    )
    .argument('<old>', 'the older protocol file')
    .argument('<new>', 'the newer protocol file')
    .option('--json', 'print the changes as JSON: {"changes": [{pointer, change, breaking}], "breaking": bool}')
    // A usage error (a missing argument, an unknown option) is exit 2 here, not commander's 1, which means "breaking".
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : PROTOCOL_DIFF_EXIT.usage))
    .addHelpText('after', `
Examples:
  $ bulkhead protocol diff v1/com.example.store.json protocols/com.example.store.json
  $ git show HEAD~1:protocols/com.example.store.json > /tmp/old.json && bulkhead protocol diff /tmp/old.json protocols/com.example.store.json

Exit codes: 0 compatible (or identical), 1 breaking, 2 usage error (missing file, not JSON, not a protocol).`)
    .action((oldFile: string, newFile: string, options: { json?: boolean }) => run(() => Promise.resolve(diff(oldFile, newFile, options.json === true))));
}

function diff(oldFile: string, newFile: string, json: boolean): ExitCode {
  const oldDoc = readProtocol(oldFile);
  const newDoc = readProtocol(newFile);
  if (oldDoc === undefined || newDoc === undefined) return PROTOCOL_DIFF_EXIT.usage;
  const { changes, firstBreaking } = diffProtocols(oldDoc, newDoc);
  if (json) {
    process.stdout.write(`${JSON.stringify({ changes, breaking: firstBreaking !== undefined }, null, 2)}\n`);
  } else {
    for (const c of changes) process.stdout.write(`${c.breaking ? 'breaking  ' : 'compatible'}  ${c.pointer}  ${c.change}\n`);
    const breaking = changes.filter((c) => c.breaking).length;
    process.stdout.write(changes.length === 0
      ? `${oldDoc.name}: no changes.\n`
      : `${oldDoc.name} ${oldDoc.version} → ${newDoc.version}: ${changes.length} change${changes.length === 1 ? '' : 's'}, ${breaking} breaking.\n`);
  }
  return firstBreaking === undefined ? PROTOCOL_DIFF_EXIT.compatible : PROTOCOL_DIFF_EXIT.breaking;
}

/** Reads and checks one protocol file; prints why and returns undefined when it is not one. */
function readProtocol(file: string): ProtocolDocument | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    process.stderr.write(`bulkhead: ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check the path.\n`);
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    process.stderr.write(`bulkhead: ${file}: not JSON (${(err as Error).message}).\n`);
    return undefined;
  }
  try {
    return checkProtocolDocument(value, file);
  } catch (err) {
    if (!isBulkheadError(err)) throw err;
    process.stderr.write(`bulkhead: ${err.message} (${err.code})\n`);
    return undefined;
  }
}
