// Scratch that cannot leak (issue 12, item 5): shipped profiles cap the scratch dir (a
// private tmpfs) and file sizes, so a helper writing 528 MiB gets ENOSPC; a tree nested
// past PATH_MAX, which Node's fs.rm cannot remove, is removed; a removal that fails is
// reported, never swallowed; and the scratch of a broker killed with SIGKILL is reaped by
// the next broker, while a live broker's is left alone.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker } from 'bulkhead/testing';
import { createScratch, removeTree } from '../lib/sandbox/scratch.js';
import { FIXTURES, gone, recordUncaught } from './helpers.js';

const MiB = 1024 * 1024;
const uncaught = recordUncaught();
const DEEP = 450;
const NAME = 'dddddddddd';

const manifest = (name: string, sandbox: string, extra: Record<string, unknown> = {}) => ({ name, entry: './sandbox/limits-service.js', protocol: 'com.test.sandbox-limits', sandbox, launch: { throttleMs: 0, exitTimeoutMs: 500 }, ...extra });

/** Builds DEEP nested dirs under `base` by relative mkdir + chdir, as a helper would. */
function nestByChdir(base: string): void {
  const r = spawnSync(process.execPath, ['-e', `const fs = require('node:fs'); process.chdir(process.argv[1]); for (let i = 0; i < ${DEEP}; i++) { fs.mkdirSync('${NAME}'); process.chdir('${NAME}'); }`, base]);
  if (r.status !== 0) throw new Error(`could not build the tree: ${String(r.stderr)}`);
}

t.test('every shipped profile caps the scratch dir: writing 528 MiB ends in ENOSPC, and the helper lives on', async (t) => {
  const data = mkdtempSync(join(tmpdir(), 'bulkhead-data-'));
  t.teardown(() => rmSync(data, { recursive: true, force: true }));
  const profiles = ['pure-compute', 'no-network', 'network-client', 'fs-reader'];
  const kit = await startBroker({ root: FIXTURES, services: profiles.map((p) => manifest(p, p, p === 'fs-reader' ? { sandboxPaths: { data } } : {})) });
  t.teardown(() => kit.close());
  // One file past the file-size limit: EFBIG (node ignores SIGXFSZ), the helper lives on.
  const big = await kit.broker.connect('pure-compute').call('fill', { files: 1, fileMiB: 48 }, { timeoutMs: 30_000 }) as { written: number; error: string | null };
  t.same(big, { written: 32 * MiB, error: 'EFBIG' }, 'pure-compute: one file stops at its 32 MiB file-size limit, inside its 64 MiB scratch');
  for (const profile of profiles) {
    const conn = kit.broker.connect(profile);
    await conn.call('ping', {}, { timeoutMs: 20_000 });
    const cap = kit.broker.status(profile).sandbox!.rules.find((r) => r.rule === 'limits.scratchMiB')!;
    t.same(cap.layers, ['bubblewrap:tmpfs-size'], `${profile}: the scratch dir is a capped tmpfs`);
    const capMiB = Number(/of (\d+) MiB/.exec(cap.detail ?? '')?.[1]);
    // 66 files of 8 MiB: each under the file-size limit, 528 MiB in all.
    const r = await conn.call('fill', { files: 66, fileMiB: 8 }, { timeoutMs: 60_000 }) as { written: number; error: string | null };
    t.equal(r.error, 'ENOSPC', `${profile}: ENOSPC after ${(r.written / MiB).toFixed(1)} MiB (cap ${capMiB} MiB)`);
    t.ok(r.written <= capMiB * MiB, `${profile}: never more than the cap`);
    await conn.call('ping', {});
    t.equal(kit.status(profile).launches, 1, `${profile}: still its first launch`);
  }
  t.same(uncaught, []);
});

t.test('a scratch tree nested past PATH_MAX is removed after the helper; fs.rm alone cannot', async (t) => {
  // Control: Node's fs.rm fails on such a tree, so the test below tests something.
  const control = mkdtempSync(join(tmpdir(), 'bulkhead-deep-'));
  nestByChdir(control);
  let rmError: string | undefined;
  try {
    rmSync(control, { recursive: true, force: true });
  } catch (err) {
    rmError = (err as NodeJS.ErrnoException).code;
  }
  // Measured: Node 20 and 22 fail with ENAMETOOLONG; Node 24's native rm walks the tree and succeeds.
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 24) t.equal(rmError, 'ENAMETOOLONG', `fs.rm on node ${process.version} fails with ENAMETOOLONG on a ${DEEP}-deep tree`);
  else t.equal(rmError, undefined, `fs.rm on node ${process.version} removes a ${DEEP}-deep tree itself`);
  await removeTree(control); // what fs.rm left
  const tree = mkdtempSync(join(tmpdir(), 'bulkhead-deep-'));
  nestByChdir(tree);
  await removeTree(tree);
  t.notOk(existsSync(tree) || existsSync(control), `removeTree removes a ${DEEP}-deep tree on every node line`);

  // The real thing: the helper nests its own scratch, the broker removes it after exit.
  const failures: string[] = [];
  const kit = await startBroker({ root: FIXTURES, profilesDir: join(FIXTURES, 'sandbox', 'limits-profiles'), services: [manifest('deep', 'limits-deep')] });
  kit.broker.on('cleanupFailed', (_service, _pid, message) => failures.push(message));
  const conn = kit.broker.connect('deep');
  const { cwd } = await conn.call('ping', {}, { timeoutMs: 20_000 }) as { cwd: string };
  t.equal(kit.broker.status('deep').sandbox!.rules.find((r) => r.rule === 'limits.scratchMiB'), undefined, 'this profile keeps its scratch on the host\'s disk');
  const r = await conn.call('nest', { depth: DEEP, name: NAME }, { timeoutMs: 30_000 }) as { depth: number; pathLength: number; error: string | null };
  // Node's permission model refuses a path once it resolves past 4096 characters (ERR_ACCESS_DENIED,
  // 369 levels here); the OS would go on. Either way the tree reaches past PATH_MAX, which is what breaks fs.rm.
  t.ok(r.error === null || r.error === 'ERR_ACCESS_DENIED', `the helper nested ${r.depth} dirs (${r.error ?? 'all of them'})`);
  t.ok(r.pathLength > 4096, `its deepest path is ${r.pathLength} characters, past PATH_MAX`);
  t.ok(existsSync(join(cwd, NAME)), 'the tree is on the host');
  await kit.close();
  t.notOk(existsSync(cwd), 'the scratch dir is gone once the broker closed');
  t.same(failures, [], 'no cleanup failed');
});

t.test('a removal that fails is reported, naming what stayed', { skip: process.getuid?.() !== 0 ? 'needs root to mount a tmpfs' : false }, async (t) => {
  const scratch = createScratch('stuck');
  const mount = join(scratch.path, 'mnt');
  mkdirSync(mount);
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mount]);
  if (mounted.status !== 0) return t.plan(0, `cannot mount here: ${String(mounted.stderr)}`);
  t.teardown(() => {
    spawnSync('umount', [mount]);
    rmSync(scratch.path, { recursive: true, force: true });
  });
  const err = await scratch.remove().then(() => undefined, (e: unknown) => e as Error);
  t.ok(err instanceof Error, 'remove() rejects instead of swallowing the failure');
  t.match(err?.message, `could not remove scratch dir ${scratch.path}`, 'and names the dir');
  t.ok(existsSync(scratch.path), 'which really is still there');
});

t.test('the scratch dir and cgroup of a broker killed with SIGKILL are reaped by the next broker; a live broker\'s are not', async (t) => {
  const script = join(FIXTURES, 'sandbox', 'scratch-broker.js');
  // A live broker in this process, whose scratch must survive the reaping.
  const kit = await startBroker({ root: FIXTURES, profilesDir: join(FIXTURES, 'sandbox', 'limits-profiles'), services: [manifest('live', 'limits-deep')] });
  t.teardown(() => kit.close());
  const { cwd: liveScratch } = await kit.broker.connect('live').call('ping', {}, { timeoutMs: 20_000 }) as { cwd: string };

  const first = spawn(process.execPath, [script, 'wait'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => first.kill('SIGKILL'));
  const line = await new Promise<string>((resolve, reject) => {
    first.stdout.once('data', (chunk: Buffer) => resolve(String(chunk)));
    first.once('exit', (code) => reject(new Error(`the first broker exited with ${code}`)));
  });
  const left = JSON.parse(line) as { cwd: string; cgroup: string[] };
  first.kill('SIGKILL');
  t.ok(await gone(first.pid!, 10_000), 'the first broker is dead');
  t.ok(existsSync(left.cwd), `it left its helper's scratch dir behind: ${left.cwd}`);

  const second = spawn(process.execPath, [script, 'once'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exitCode = await new Promise<number | null>((resolve) => second.once('exit', resolve));
  t.equal(exitCode, 0, 'the next broker started, launched its helper and closed');
  t.notOk(existsSync(left.cwd), 'the dead broker\'s scratch dir was reaped');
  t.same(left.cgroup.filter((p) => existsSync(p)), [], 'and its helper\'s cgroup');
  t.ok(existsSync(liveScratch), 'the live broker\'s scratch dir was left alone');
});
