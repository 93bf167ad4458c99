/**
 * The lint that `npm test` runs afterwards (eslint.config.js) really enforces what it claims:
 * each rule is shown a violation, put in the place of a real file, and must report it. A lint
 * that passes because a rule never loads (a resolver that finds nothing, a glob that matches
 * nothing) would prove nothing.
 */
import t from 'tap';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { REPO_ROOT } from './helpers.js';

const eslint = new ESLint({ cwd: REPO_ROOT });

/** Rule ids ESLint reports for `code` as if it were the file at `file` (repo-relative). */
async function rulesFor(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(REPO_ROOT, file) });
  return (result?.messages ?? []).map((m) => m.ruleId ?? `fatal: ${m.message}`);
}

const LAYER = 'import-x/no-restricted-paths';

t.test('layer arrows: a downward import passes, each upward one fails', async (t) => {
  // Positive control: what the layer may import is accepted.
  t.same(await rulesFor('lib/connection/remote-error.ts', "import { decodeItem } from '../wire/codec.js';\nexport const x = decodeItem;\n"), [], 'connection → wire is allowed');
  const refused: Array<[string, string, string]> = [
    ['lib/wire/codec.ts', '../connection/rpc-client.js', 'wire → connection'],
    ['lib/wire/codec.ts', '../broker/broker.js', 'wire → broker'],
    ['lib/protocol/hash.ts', '../connection/rpc-client.js', 'protocol → connection'],
    ['lib/protocol/hash.ts', '../broker/broker.js', 'protocol → broker'],
    ['lib/connection/remote-error.ts', '../broker/clock.js', 'connection → broker'],
    ['lib/service.ts', './broker/clock.js', 'helper runtime → broker'],
    ['lib/service.ts', './sandbox/index.js', 'helper runtime → sandbox'],
    ['lib/service.ts', './identity/index.js', 'helper runtime → identity'],
    ['lib/service.ts', './daemon/control.js', 'helper runtime → daemon'],
    ['lib/prewarm.ts', './broker/clock.js', 'spare runtime → broker'],
    ['lib/broker/clock.ts', '../daemon/control.js', 'broker → daemon'],
    ['lib/broker/clock.ts', '../cli/exit-codes.js', 'broker → cli'],
    ['lib/identity/files.ts', '../wire/codec.js', 'identity → wire'],
    ['lib/sandbox/paths.ts', '../broker/clock.js', 'sandbox → broker'],
    ['lib/errors.ts', './wire/codec.js', 'errors → wire'],
    ['lib/daemon/control.ts', '../index.js', 'daemon → public entry point'],
  ];
  for (const [file, spec, what] of refused) {
    const rules = await rulesFor(file, `import * as m from '${spec}';\nexport const x = m;\n`);
    t.ok(rules.includes(LAYER), `${what} is refused (${file} importing ${spec}): ${rules.join(', ')}`);
  }
});

t.test('import cycles are refused', async (t) => {
  // wire/envelope.ts imports wire/frame-decoder.ts; the reverse closes a cycle.
  const rules = await rulesFor('lib/wire/frame-decoder.ts', "import { encodeEnvelope } from './envelope.js';\nexport const x = encodeEnvelope;\n");
  t.ok(rules.includes('import-x/no-cycle'), `frame-decoder → envelope → frame-decoder: ${rules.join(', ')}`);
});

t.test('type-checked rules run: a floating and a misused promise are refused', async (t) => {
  const floating = await rulesFor('lib/util/line-ring.ts', 'function work(): Promise<void> {\n  return Promise.resolve();\n}\nexport function go(): void {\n  work();\n}\n');
  t.ok(floating.includes('@typescript-eslint/no-floating-promises'), `floating: ${floating.join(', ')}`);
  const misused = await rulesFor('lib/util/line-ring.ts', 'export function go(check: () => Promise<boolean>): number {\n  return check() ? 1 : 0;\n}\n');
  t.ok(misused.includes('@typescript-eslint/no-misused-promises'), `misused: ${misused.join(', ')}`);
  // Positive control: the same file, written right, is clean.
  t.same(await rulesFor('lib/util/line-ring.ts', 'function work(): Promise<void> {\n  return Promise.resolve();\n}\nexport async function go(): Promise<void> {\n  await work();\n}\n'), []);
});

t.test('max-lines: a file in lib/ may have 400 lines, not 401 (blank lines and comments count)', async (t) => {
  // Lines of a comment and blank lines, as a long file would have them: skipComments/skipBlankLines are off.
  const file = (lines: number) => ['export const x = 1;', ...Array.from({ length: lines - 1 }, (_, i) => (i % 2 === 0 ? '// a comment line' : ''))].join('\n') + '\n';
  t.same(await rulesFor('lib/util/line-ring.ts', file(400)), [], '400 lines (wc -l) pass');
  t.same(await rulesFor('lib/util/line-ring.ts', file(401)), ['max-lines'], '401 lines fail');
  t.same(await rulesFor('test/helpers.ts', file(401)), [], 'only lib/ is held to it');
});

t.test('BULKHEAD_* names come from their one module: a literal name or plain key elsewhere in lib/ is refused', async (t) => {
  const RULE = 'no-restricted-syntax';
  t.same(await rulesFor('lib/broker/helper-environment.ts', "export const env = process.env['BULKHEAD_DEBUG'];\n"), [RULE], 'a string literal');
  t.same(await rulesFor('lib/broker/helper-environment.ts', "export const env = { BULKHEAD_ENTRY: '/x' };\n"), [RULE], 'a plain object key');
  t.same(await rulesFor('lib/cli/commands/daemon.ts', "export const name = 'BULKHEAD_SOCKET';\n"), [RULE], 'a CLI setting outside cli-env.ts');
  // Positive controls: through the module, and the modules themselves.
  t.same(await rulesFor('lib/broker/helper-environment.ts', "import { HELPER_ENV } from '../wire/helper-env.js';\nexport const env = { [HELPER_ENV.entry]: '/x' };\n"), [], 'a computed key from HELPER_ENV');
  t.same(await rulesFor('lib/wire/helper-env.ts', "export const HELPER_ENV = { entry: 'BULKHEAD_ENTRY' } as const;\n"), [], 'the contract module itself');
  t.same(await rulesFor('lib/cli/cli-env.ts', "export const CLI_ENV = { socket: 'BULKHEAD_SOCKET' } as const;\n"), [], 'the CLI module itself');
  t.same(await rulesFor('lib/broker/helper-environment.ts', "export const text = 'set BULKHEAD_DEBUG=1 to see stacks';\n"), [], 'a sentence that mentions a name');
});
