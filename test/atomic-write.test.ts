// writeFileAtomically (lib/util/atomic-write.ts): readers never see half a file, a leftover temporary name of this
// pid (a writer killed between open and rename; in a container the pid repeats) does not block the write for ever,
// and a link planted under the temporary name is replaced, never written through.
import t from 'tap';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomically } from '../lib/util/atomic-write.js';

t.test('writes the contents, mode 0644, no temporary file left', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-atomic-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const target = join(dir, 'cache.bin');
  writeFileAtomically(target, 'one');
  writeFileAtomically(target, 'two');
  t.equal(readFileSync(target, 'utf8'), 'two');
  t.equal(statSync(target).mode & 0o777, 0o644);
  t.same(readdirSync(dir), ['cache.bin'], 'only the target');
});

t.test('a leftover temporary file of this pid is replaced, and a link there is not followed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-atomic-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const target = join(dir, 'cache.bin');
  const tmp = `${target}.${String(process.pid)}.tmp`;
  writeFileSync(tmp, 'half a file from a killed writer');
  writeFileAtomically(target, 'whole');
  t.equal(readFileSync(target, 'utf8'), 'whole', 'a leftover file: the write still lands');
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'untouched');
  symlinkSync(victim, tmp);
  writeFileAtomically(target, 'again');
  t.equal(readFileSync(target, 'utf8'), 'again', 'a link under the temporary name: the write lands');
  t.equal(readFileSync(victim, 'utf8'), 'untouched', 'the link\'s target is not written through');
  t.same(readdirSync(dir).sort(), ['cache.bin', 'victim'], 'no temporary name left');
});
