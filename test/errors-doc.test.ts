/**
 * docs/errors.md cannot drift from ERROR_CODES (fastify's errors test): every
 * code has its own section, and the page names no code that does not exist.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES, isErrorCode } from 'bulkhead';
import { REPO_ROOT } from './helpers.js';

const doc = readFileSync(join(REPO_ROOT, 'docs', 'errors.md'), 'utf8');
const headings = [...doc.matchAll(/^## (\S+)\s*$/gm)].map((m) => m[1]!);

t.test('every code in ERROR_CODES has a heading in docs/errors.md', async (t) => {
  for (const code of Object.keys(ERROR_CODES)) t.ok(headings.includes(code), `## ${code}`);
});

t.test('each code has exactly one section, and every section is a code', async (t) => {
  for (const heading of headings) {
    t.ok(isErrorCode(heading), `"## ${heading}" is a code in ERROR_CODES`);
    t.equal(headings.filter((h) => h === heading).length, 1, `one section for ${heading}`);
  }
});

t.test('each section says what to do', async (t) => {
  const sections = doc.split(/^## /m).slice(1);
  for (const section of sections) {
    const code = section.slice(0, section.indexOf('\n')).trim();
    t.match(section, /\*\*Meaning\.\*\*/, `${code} has a meaning`);
    t.match(section, /\*\*What to do\.\*\*/, `${code} has a remedy`);
  }
});

t.test('docs/errors.md mentions no ERR_* code that does not exist', async (t) => {
  const mentioned = new Set(doc.match(/\bERR_[A-Z0-9_]+\b/g) ?? []);
  const unknown = [...mentioned].filter((code) => !isErrorCode(code));
  t.same(unknown, [], 'every ERR_* in the page is in ERROR_CODES');
});
