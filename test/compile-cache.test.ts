// V8's compile cache for helpers (lib/broker/compile-cache.ts): the broker alone writes it; a helper
// runs with it on (unsandboxed and under pure-compute's permission model), reads it, and cannot write it;
// a changed file is never served from a stale entry.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, type TestBroker } from 'bulkhead/testing';
import { compileCacheDir, compileCacheWrites, plannedNodeFlags, writerFlags } from '../lib/broker/compile-cache.js';
import { FIXTURES } from './helpers.js';

interface Probe { dir: string | null; entries: number; readBytes: number; overwrite: string | null; plant: string | null }

const major = Number(process.versions.node.split('.')[0]);
const PROTOCOL = 'com.test.compile-cache';
const ENTRY = './compile-cache-service.js';

t.test('plannedNodeFlags: what stands between node and the entry, wrappers excluded', async (t) => {
  t.same(plannedNodeFlags(['/usr/bin/node', '/a/entry.js'], '/usr/bin/node', '/a/entry.js'), []);
  t.same(plannedNodeFlags(['/usr/bin/bwrap', '--ro-bind', '/usr/bin/node', '/usr/bin/node', '--', '/usr/bin/node', '--permission', '--max-old-space-size=64', '/a/entry.js'], '/usr/bin/node', '/a/entry.js'), ['--permission', '--max-old-space-size=64']);
  t.equal(plannedNodeFlags(['/usr/bin/other', '/a/entry.js'], '/usr/bin/node', '/a/entry.js'), undefined, 'no node in the command');
});

const NO_CACHE = major < 22 ? 'no compile cache before Node 22' : false;

t.test('writerFlags: the cache writer (unsandboxed) gets V8 flags only, never one that loads code or reads a file', async (t) => {
  t.same(writerFlags(['--permission', '--allow-fs-read=/x', '--max-old-space-size=64', '--import', './x.js', '--require=/a.js', '-r', 'b.js', '--env-file=.env', '--stack-size=900', '--cpu-prof', '--expose-gc', '--loader=./l.js', '--max-old-space-size=../x']), ['--max-old-space-size=64', '--stack-size=900', '--expose-gc']);
});

t.test('a changed file is never served from its old cache entry, even at the same length', { skip: NO_CACHE }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-cc-stale-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'm.mjs');
  const run = () => execFileSync(process.execPath, [file], { env: { PATH: process.env['PATH'] ?? '', NODE_COMPILE_CACHE: join(dir, 'cache') }, encoding: 'utf8' }).trim();
  writeFileSync(file, 'console.log("first");\n');
  t.equal(run(), 'first');
  t.equal(run(), 'first', 'second run (from the cache)');
  t.ok(readdirSync(join(dir, 'cache')).length > 0, 'node wrote a cache');
  writeFileSync(file, 'console.log("other");\n');
  t.equal(run(), 'other', 'the new source runs');
});

let kit: TestBroker;
t.before(async () => {
  kit = await startBroker({
    root: FIXTURES,
    services: [
      { name: 'plain', entry: ENTRY, protocol: PROTOCOL, launch: { throttleMs: 0 } },
      { name: 'pure', entry: ENTRY, protocol: PROTOCOL, sandbox: 'pure-compute', launch: { throttleMs: 0 } },
    ],
  });
});
t.teardown(() => kit.close());

/** Launches `service` once (its launch starts the cache writer), waits for the writer, then probes a fresh launch. */
async function probeWarm(service: string, overwrite: boolean): Promise<Probe> {
  await kit.broker.connect(service).call('probe', { overwrite: false });
  await compileCacheWrites();
  await kit.broker.stop(service);
  return (await kit.broker.connect(service).call('probe', { overwrite })) as Probe;
}

t.test('unsandboxed: the helper runs with the broker-written cache on', async (t) => {
  const probe = await probeWarm('plain', false);
  if (major < 22) {
    t.equal(probe.dir, null, 'Node 20 has no compile cache; NODE_COMPILE_CACHE is ignored');
    return;
  }
  const dir = compileCacheDir();
  t.ok(dir !== undefined, 'a cache directory exists');
  t.ok(probe.dir?.startsWith(`${dir!}/`), `node uses a subdirectory of ${dir!} (${probe.dir})`);
  t.ok(probe.entries > 0 && probe.readBytes > 0, 'it holds entries the helper can read');
  // Positive control for the sandboxed case: where nothing forbids it, the same write works.
  t.equal(probe.plant, null, 'an unsandboxed helper (the broker\'s uid, no sandbox) can write there');
  rmSync(join(probe.dir!, 'planted'), { force: true });
  // The broker makes what its writer produced readable to helpers of other uids, and writable by no one else.
  for (const name of readdirSync(dir!)) {
    const st = lstatSync(join(dir!, name));
    if (st.isDirectory()) t.equal(st.mode & 0o777, 0o755, `${name}/ is 0755`);
  }
});

t.test('pure-compute: the helper reads the cache and cannot write it', { skip: NO_CACHE }, async (t) => {
  const before = await probeWarm('pure', false);
  t.ok(before.dir !== null, `node runs with the compile cache under its permission model (${before.dir})`);
  t.ok(before.entries > 0 && before.readBytes > 0, 'and reads its entries (positive control)');
  const entries = readdirSync(before.dir!).filter((n) => /^[0-9a-f]{8}$/.test(n)).sort();
  const digest = (name: string) => createHash('sha256').update(readFileSync(join(before.dir!, name))).digest('hex');
  const sums = new Map(entries.map((n) => [n, digest(n)]));
  const after = await kit.broker.connect('pure').call('probe', { overwrite: true }) as Probe;
  t.match(after.overwrite, /^(EROFS|EACCES|EPERM)$/, `overwriting an entry is refused (${after.overwrite})`);
  t.match(after.plant, /^(EROFS|EACCES|EPERM)$/, `planting a file is refused (${after.plant})`);
  t.notOk(existsSync(join(before.dir!, 'planted')), 'nothing was planted');
  t.same([...sums].filter(([name, sum]) => digest(name) !== sum).map(([name]) => name), [], `all ${sums.size} entries unchanged`);
  const st = statSync(before.dir!);
  t.equal(st.uid, process.getuid?.(), 'the cache directory the helper reads is the broker\'s');
});
