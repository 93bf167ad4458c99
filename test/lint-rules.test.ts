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
