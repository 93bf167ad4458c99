// The runtime code cache is kept per node binary (lib/broker/code-cache.ts, runtimeCacheDir): two builds of one node
// version share the version in the file name, so the directory is named after the binary file itself (device, inode,
// size, mtime). The same file by another path shares it; another file does not; an unreadable one has none.
import t from 'tap';
import { copyFileSync, lstatSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { runtimeCacheDir } from '../lib/broker/code-cache.js';
import { compileCacheDir } from '../lib/broker/compile-cache.js';

t.test('one directory per binary file, inside the compile-cache directory, the broker\'s and 0755', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'bulkhead-code-cache-binary-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  // Stand-ins for two builds of one version: files with the same bytes, different inodes.
  const first = join(work, 'node-a');
  const second = join(work, 'node-b');
  copyFileSync('/bin/sh', first);
  copyFileSync('/bin/sh', second);
  const link = join(work, 'node-link');
  symlinkSync(first, link);
  const a = runtimeCacheDir(first);
  const b = runtimeCacheDir(second);
  const made = [a, b].filter((d): d is string => d !== undefined);
  t.teardown(() => { for (const dir of made) rmSync(dir, { recursive: true, force: true }); });
  t.ok(a !== undefined && b !== undefined, 'both get one');
  t.not(a, b, 'another file of the same bytes: another directory');
  t.equal(runtimeCacheDir(link), a, 'the same file through a symlink: the same directory');
  t.equal(dirname(a!), compileCacheDir(), 'inside the compile-cache directory');
  t.match(basename(a!), /^runtime-[0-9a-f]{8}$/);
  t.ok(lstatSync(a!).isDirectory(), 'a real directory');
  t.equal(statSync(a!).mode & 0o777, 0o755, 'readable by helpers of other uids, writable by the broker only');
  t.equal(runtimeCacheDir(join(work, 'missing')), undefined, 'no binary there: no cache directory');
  t.equal(runtimeCacheDir(process.execPath), runtimeCacheDir(process.execPath), 'stable for the broker\'s own node');
});

t.test('a directory another binary\'s writer evicted is made again at the next hand-out (not a dead path for the broker\'s life)', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'bulkhead-code-cache-evicted-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const binary = join(work, 'node-c');
  copyFileSync('/bin/sh', binary);
  const dir = runtimeCacheDir(binary);
  t.teardown(() => { if (dir !== undefined) rmSync(dir, { recursive: true, force: true }); });
  t.ok(dir !== undefined && lstatSync(dir).isDirectory(), 'positive control: made at the first hand-out');
  rmSync(dir!, { recursive: true }); // what lib/util/cache-eviction.ts does to an old binary's directory
  t.equal(runtimeCacheDir(binary), dir, 'the same name');
  t.ok(lstatSync(dir!).isDirectory(), 'and it exists again');
});
