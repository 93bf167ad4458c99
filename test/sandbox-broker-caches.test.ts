// The fast tier of the broker's caches inside a write path (lib/sandbox/broker-caches.ts; no process spawned): which
// caches a write path reaches, on which hosts they are bound read-only again (bubblewrap), left to the uid drop, or
// withheld (neither), and what the fs.write rule then says. test/cache-write-path.test.ts tries the writes for real.
import t from 'tap';
import { compileProfile, type CompileInput } from '../lib/sandbox/compile.js';
import { cachesInWritePaths, withoutCacheVariables } from '../lib/sandbox/broker-caches.js';
import { isolateReserveMiB, type HostProbe } from '../lib/sandbox/host-probe.js';
import { parseProfile } from '../lib/sandbox/index.js';

const probe = (over: { root: boolean; bwrap: boolean; setpriv: boolean }): HostProbe => ({
  isRoot: over.root, uid: over.root ? 0 : 1000, bwrap: over.bwrap ? '/usr/bin/bwrap' : null, bwrapTmpfsSize: true, bwrapDisableUserns: true, bwrapProblem: over.bwrap ? null : 'simulated', userNamespaces: true,
  kernel: { seccompProblem: 'not needed by these tests', libseccomp: null, landlockAbi: 0, execGuardProblem: 'not needed by these tests' },
  unshare: '/usr/bin/unshare', setpriv: over.setpriv ? '/usr/bin/setpriv' : null, prlimit: '/usr/bin/prlimit', pasta: null, env: '/usr/bin/env', sh: '/bin/sh',
  node: { flag: '--permission', allowAddons: true, disableWarning: true, allowNet: false, major: 24, isolateReserveMiB: isolateReserveMiB(24) },
  runtimeRoots: [{ path: '/usr', symlink: null }],
  cgroup: null,
});

const CACHES = ['/nonexistent-tmp/cache', '/nonexistent-tmp/validators'];
const input = (writes: string[]): CompileInput => ({
  service: 's', nodePath: '/usr/bin/node', nodeArgs: [], entry: '/app/s.js', reads: ['/app/s.js', CACHES[0]!], writes, scratch: '/nonexistent-tmp/scr', scratchTmp: '/nonexistent-tmp/scr/tmp',
  compileCache: CACHES[0]!, brokerCaches: CACHES, cgroupFor: () => [],
});
const profile = parseProfile('p', { enforcement: 'best-effort' });
const pair = (argv: string[], flag: string, value: string) => argv.findIndex((a, i) => a === flag && argv[i + 1] === value);

t.test('cachesInWritePaths: a write path containing a cache, or inside one, reaches it; a sibling does not', async (t) => {
  t.same(cachesInWritePaths(CACHES, ['/nonexistent-tmp'], true, []).exposedCaches, CACHES, 'the parent reaches both');
  t.same(cachesInWritePaths(CACHES, ['/nonexistent-tmp/cache/sub'], true, []).exposedCaches, [CACHES[0]], 'a path inside one reaches that one');
  t.same(cachesInWritePaths(CACHES, ['/nonexistent-tmp/cache2', '/app'], true, []).exposedCaches, [], 'a sibling with a common prefix does not');
  t.same(cachesInWritePaths(CACHES, ['/'], false, []), { exposedCaches: CACHES, withholdCaches: true }, 'no OS layer: withheld');
  t.same(cachesInWritePaths([], ['/'], false, []), { exposedCaches: [], withholdCaches: false }, 'no caches: nothing to withhold');
  t.same(withoutCacheVariables({ A: '1', B: '2', C: '3' }, { dirs: [], env: ['A', 'C'] }), { B: '2' }, 'the named variables are removed');
});

t.test('bubblewrap: the caches a write path reaches are bound read-only after it, and the helper keeps them', async (t) => {
  const c = compileProfile(profile, probe({ root: false, bwrap: true, setpriv: true }), input(['/nonexistent-tmp']));
  t.same([c.exposedCaches, c.withholdCaches], [CACHES, false]);
  const write = pair(c.args, '--bind-try', '/nonexistent-tmp');
  t.ok(write > 0, 'the write path is writable');
  for (const dir of CACHES) t.ok(pair(c.args, '--ro-bind', dir) > write, `${dir} bound read-only after it`);
  const unreached = compileProfile(profile, probe({ root: false, bwrap: true, setpriv: true }), input(['/app/out']));
  t.same(unreached.exposedCaches, [], 'a write path elsewhere: nothing extra');
  t.equal(pair(unreached.args, '--ro-bind', CACHES[1]!), -1, 'and no read-only bind of the validators directory');
});

t.test('no bubblewrap: a uid drop keeps them the broker\'s files; with neither, they are withheld and the report says so', async (t) => {
  const dropped = compileProfile(profile, probe({ root: true, bwrap: false, setpriv: true }), input(['/nonexistent-tmp']));
  t.same([dropped.exposedCaches, dropped.withholdCaches], [CACHES, false], 'root with setpriv: the helper runs as another uid');
  t.ok(dropped.args.includes('--allow-fs-write=/nonexistent-tmp/cache'), 'Node gets the write grant it needs to read its compile cache');
  for (const host of [{ root: false, bwrap: false, setpriv: true }, { root: true, bwrap: false, setpriv: false }]) {
    const c = compileProfile(profile, probe(host), input(['/nonexistent-tmp']));
    t.equal(c.withholdCaches, true, `withheld (${JSON.stringify(host)})`);
    t.match(c.rules.find((r) => r.rule === 'fs.write')?.detail, /broker's caches of code \(\/nonexistent-tmp\/cache, \/nonexistent-tmp\/validators\).*not given them/);
  }
  const elsewhere = compileProfile(profile, probe({ root: false, bwrap: false, setpriv: true }), input(['/app/out']));
  t.equal(elsewhere.withholdCaches, false, 'a write path elsewhere: given them');
  t.notMatch(elsewhere.rules.find((r) => r.rule === 'fs.write')?.detail, /caches/);
});
