/**
 * docs/wire.md's table of the helper environment cannot drift from HELPER_ENV (lib/wire/helper-env.ts),
 * the one module every helper-environment name comes from (the lint refuses a literal elsewhere).
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HELPER_ENV } from '../lib/wire/helper-env.js';
import { REPO_ROOT } from './helpers.js';

const doc = readFileSync(join(REPO_ROOT, 'docs', 'wire.md'), 'utf8');
const rows = [...doc.matchAll(/^\| `(BULKHEAD_[A-Z_]+)` \|/gm)].map((m) => m[1]!);

t.test('docs/wire.md lists exactly the variables of HELPER_ENV, each once', async (t) => {
  t.ok(rows.length > 0, 'the table was found');
  t.same([...rows].sort(), Object.values(HELPER_ENV).sort());
});
