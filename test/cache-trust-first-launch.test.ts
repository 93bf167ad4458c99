// A broker that is not root (the usual developer machine) gives the broker's caches of code to its very first
// unsandboxed launch when the host keeps helpers from writing them (a working bubblewrap): the broker starts
// bubblewrap's test run when it is made, and a launch waits for that run rather than going without the caches
// (lib/sandbox/cache-trust.ts). On a simulated host without bubblewrap or a uid drop the first launch still gets none.
// Each broker runs in a child process dropped to uid 65534 with setpriv, with a TMPDIR of its own.
import t, { type Test } from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES } from './helpers.js';

const NOBODY = 65534;
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
const BWRAP = ['/usr/bin/bwrap', '/bin/bwrap'].find((p) => existsSync(p));
const asNobody = [`--reuid=${String(NOBODY)}`, `--regid=${String(NOBODY)}`, '--clear-groups'];
const CACHE_VARS = ['NODE_COMPILE_CACHE', 'BULKHEAD_CODE_CACHE', 'BULKHEAD_VALIDATORS'] as const;

const cannotDrop = process.getuid?.() !== 0 ? 'the test drops the broker to another uid: run as root' : SETPRIV === undefined ? 'no setpriv' : false;
/** Whether bubblewrap works for that uid, tested as the broker's own probe tests it: else no host trusts the caches. */
const bwrapWorks = (): boolean => {
  if (cannotDrop !== false || BWRAP === undefined) return false;
  try {
    execFileSync(SETPRIV!, [...asNobody, BWRAP, '--unshare-user', '--unshare-net', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '--', '/bin/true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const noTrustedHost = cannotDrop !== false ? cannotDrop : !bwrapWorks() && `bubblewrap does not work for uid ${String(NOBODY)} here`;

interface Seen { uid: number; report: { env: Record<string, string | null>; ajvCompiler: boolean; plantedRuns: number }; greeting: string }

/** Runs test/fixtures/first-launch-broker.js as uid 65534 with a fresh TMPDIR; its broker's first launch reports. */
async function firstLaunch(t: Test, mode: 'trusted' | 'untrusted'): Promise<Seen & { tmp: string }> {
  const tmp = mkdtempSync(join(tmpdir(), 'bulkhead-first-launch-'));
  chownSync(tmp, NOBODY, NOBODY);
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(SETPRIV!, [...asNobody, process.execPath, join(FIXTURES, 'first-launch-broker.js'), mode], { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', TMPDIR: tmp } }, (err, out, stderr) => {
      if (err === null) resolve(out);
      else reject(new Error(`the broker child failed: ${err.message}\n${stderr}`));
    });
  });
  return { ...(JSON.parse(stdout) as Seen), tmp };
}

t.test('trusted host: a non-root broker\'s first unsandboxed launch is given the caches', { skip: noTrustedHost }, async (t) => {
  const seen = await firstLaunch(t, 'trusted');
  t.equal(seen.uid, NOBODY, 'the broker ran as a uid that is not root (so "root with setpriv" did not decide)');
  for (const name of CACHE_VARS) t.ok(seen.report.env[name]?.startsWith(seen.tmp), `given ${name}, in the broker's own TMPDIR`);
  t.ok(existsSync(seen.report.env['BULKHEAD_VALIDATORS'] ?? ''), 'the validators module it was given exists');
  t.equal(seen.report.ajvCompiler, false, 'it loaded no ajv compiler');
  t.equal(seen.greeting, 'hello ab', 'and it serves');
});

t.test('simulated host with no OS layer over the caches: the first launch still gets none', { skip: cannotDrop }, async (t) => {
  const seen = await firstLaunch(t, 'untrusted');
  t.equal(seen.uid, NOBODY, 'the broker ran as a uid that is not root');
  t.same(seen.report.env, Object.fromEntries(CACHE_VARS.map((name) => [name, null])), 'given none of the cache variables');
  t.equal(seen.report.ajvCompiler, false, 'it compiled the validators module\'s text the broker passed by value');
  t.equal(seen.greeting, 'hello ab', 'and it serves');
});
