// The code-cache writer (lib/code-cache-writer.ts) leaves nothing behind when saving fails: neither its
// temporary cache file nor its warm-up work directory.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, lutimesSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { codeCacheFile, runtimeBuildId } from '../lib/util/runtime-loader.js';
import { RUNTIME_SCRIPT } from '../lib/broker/code-cache.js';
import { REPO_ROOT } from './helpers.js';

const WRITER = join(REPO_ROOT, 'dist/lib/code-cache-writer.js');

t.test('a failed save (the rename refused) leaves no temporary file and no work directory', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-writer-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cache = join(dir, 'cache');
  const work = join(dir, 'tmp');
  mkdirSync(cache);
  mkdirSync(work);
  const run = (): number => {
    try {
      execFileSync(process.execPath, [WRITER, cache], { env: { PATH: process.env['PATH'] ?? '', TMPDIR: work }, stdio: 'ignore' });
      return 0;
    } catch (err) {
      return (err as { status: number }).status;
    }
  };
  // A directory where the cache file goes: the rename fails inside save().
  const target = codeCacheFile(cache, runtimeBuildId(readFileSync(RUNTIME_SCRIPT))!, []);
  mkdirSync(target);
  t.not(run(), 0, 'the writer failed');
  t.same(readdirSync(cache), [target.slice(cache.length + 1)], 'no temporary file left in the cache directory');
  t.same(readdirSync(work).filter((n) => n.startsWith('bulkhead-warm-up-')), [], 'no warm-up work directory left');
  // Positive control: the same writer, once the name is free, writes the file and cleans up as well.
  rmSync(target, { recursive: true });
  t.equal(run(), 0, 'the writer succeeded');
  t.same(readdirSync(cache), [target.slice(cache.length + 1)], 'the cache file, nothing else');
  t.same(readdirSync(work).filter((n) => n.startsWith('bulkhead-warm-up-')), [], 'no work directory left');
});

t.test('eviction: the writer removes cache files no broker used for a week (any build, node or flags), never through a link', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-writer-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cache = join(dir, 'cache');
  mkdirSync(cache);
  const target = codeCacheFile(cache, runtimeBuildId(readFileSync(RUNTIME_SCRIPT))!, []);
  const tail = target.slice(cache.length + 1 + 'runtime-'.length + 16);
  const old = `runtime-00000000000000aa${tail}`;
  const recent = `runtime-00000000000000ee${tail}`;
  const otherNode = `runtime-00000000000000bb-v0.0.1-${process.arch}-00000000.v8cache`;
  const otherFlags = codeCacheFile(cache, '00000000000000cc', ['--max-old-space-size=64']).slice(cache.length + 1);
  const recentOtherNode = `runtime-00000000000000bc-v0.0.1-${process.arch}-00000000.v8cache`;
  const oldValidators = `validators-${'1'.repeat(64)}-${'2'.repeat(16)}-d-w00000000-${process.version}-${process.arch}-00000000.v8cache`;
  const recentValidators = `validators-${'3'.repeat(64)}-${'2'.repeat(16)}-d-w00000000-${process.version}-${process.arch}-00000000.v8cache`;
  const link = `runtime-00000000000000dd${tail}`;
  const outside = join(dir, 'outside');
  const eightDaysAgo = new Date(Date.now() - 8 * 24 * 3600 * 1000);
  for (const name of [old, recent, otherNode, otherFlags, recentOtherNode, oldValidators, recentValidators, 'notes.txt']) writeFileSync(join(cache, name), 'x');
  for (const name of [old, otherNode, otherFlags, oldValidators, 'notes.txt']) utimesSync(join(cache, name), eightDaysAgo, eightDaysAgo);
  writeFileSync(outside, 'x');
  symlinkSync(outside, join(cache, link));
  lutimesSync(join(cache, link), eightDaysAgo, eightDaysAgo);
  execFileSync(process.execPath, [WRITER, cache], { env: { PATH: process.env['PATH'] ?? '', TMPDIR: dir }, stdio: 'ignore' });
  const left = readdirSync(cache);
  t.ok(left.includes(target.slice(cache.length + 1)), 'positive control: its own file was written');
  t.notOk(left.includes(old), 'another build of the same node, arch and flags, written 8 days ago: removed');
  t.ok(left.includes(recent), 'another build written just now (another app of this uid may use it): kept');
  t.notOk(left.includes(otherNode), 'another node version, 8 days old: removed');
  t.notOk(left.includes(otherFlags), 'other flags, 8 days old: removed');
  t.ok(left.includes(recentOtherNode), 'another node version used just now: kept');
  t.notOk(left.includes(oldValidators), 'a validators cache no broker used for 8 days (an old protocol version): removed');
  t.ok(left.includes(recentValidators), 'a validators cache used just now: kept');
  t.ok(left.includes('notes.txt'), 'a file of another pattern: kept');
  t.ok(left.includes(link) && existsSync(outside), 'a link of the pattern: neither it nor its target removed');
});
