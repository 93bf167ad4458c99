// bwrapArgs, bubblewrap's part of a launch, called with its options object (no process spawned):
// each named field changes exactly the arguments its TSDoc says, so a swapped or dropped field shows.
import t from 'tap';
import { bwrapArgs, type BwrapArgsOptions } from '../lib/sandbox/bwrap-args.js';
import { isolateReserveMiB, type HostProbe } from '../lib/sandbox/host-probe.js';
import { parseProfile } from '../lib/sandbox/index.js';

const probe = (isRoot: boolean): HostProbe => ({
  isRoot, uid: isRoot ? 0 : 1000, bwrap: '/usr/bin/bwrap', bwrapTmpfsSize: true, bwrapDisableUserns: true, bwrapProblem: null, userNamespaces: true,
  kernel: { seccompProblem: 'not needed by these tests', libseccomp: null, landlockAbi: 0, execGuardProblem: 'not needed by these tests' },
  unshare: '/usr/bin/unshare', setpriv: '/usr/bin/setpriv', prlimit: '/usr/bin/prlimit', pasta: null, env: '/usr/bin/env', sh: '/bin/sh',
  node: { flag: '--permission', allowAddons: true, disableWarning: true, allowNet: false, major: 24, isolateReserveMiB: isolateReserveMiB(24) },
  runtimeRoots: [{ path: '/usr', symlink: null }, { path: '/lib', symlink: 'usr/lib' }],
  cgroup: null,
});

const base: BwrapArgsOptions = {
  profile: parseProfile('p', {}),
  probe: probe(true),
  reads: ['/app/service.js', '/app/data', '/usr/lib/node_modules/x'],
  writes: ['/tmp/scr', '/app/data/out'],
  nodePath: '/usr/bin/node',
  scratch: '/tmp/scr',
  scratchTmp: '/tmp/scr/tmp',
  capDrop: false,
  scratchBytes: undefined,
  kernelArgs: [],
  kernelReads: [],
};
const args = (over: Partial<BwrapArgsOptions> = {}) => bwrapArgs({ ...base, ...over });
/** Index of the pair `flag path` (e.g. `--ro-bind-try /app/data`), or -1. */
const pair = (argv: string[], flag: string, value: string) => argv.findIndex((a, i) => a === flag && argv[i + 1] === value);

t.test('namespaces: profile.network and probe.isRoot decide --unshare-net and --unshare-user', async (t) => {
  t.ok(args().includes('--unshare-net'), 'network "none" unshares the network');
  t.notOk(args({ profile: parseProfile('p', { network: 'full' }) }).includes('--unshare-net'), 'network "full" keeps the host network');
  t.notOk(args().includes('--unshare-user'), 'root needs no user namespace');
  t.ok(args({ probe: probe(false) }).includes('--unshare-user'), 'not root: a user namespace');
});

t.test('capDrop and kernelArgs: placed after the unshares, before any bind', async (t) => {
  t.equal(pair(args(), '--cap-drop', 'ALL'), -1, 'capDrop false: capabilities untouched');
  const argv = args({ capDrop: true, kernelArgs: ['--seccomp', '5'] });
  const cap = pair(argv, '--cap-drop', 'ALL');
  const seccomp = pair(argv, '--seccomp', '5');
  t.ok(cap > argv.indexOf('--unshare-net'), 'cap-drop after the unshares');
  t.ok(seccomp > cap && seccomp < argv.indexOf('--ro-bind'), 'kernel args after cap-drop, before the first bind');
});

t.test('reads and writes: read-only and writable binds, parents first, runtime roots not bound twice', async (t) => {
  const argv = args();
  const data = pair(argv, '--ro-bind-try', '/app/data');
  const out = pair(argv, '--bind-try', '/app/data/out');
  t.ok(data > 0 && out > data, 'a writable dir inside a read-only one is bound after it');
  t.ok(pair(argv, '--ro-bind-try', '/app/service.js') > 0, 'a read file is bound read-only');
  t.ok(pair(argv, '--bind-try', '/tmp/scr') > 0, 'scratch is writable');
  t.equal(pair(argv, '--ro-bind-try', '/usr/lib/node_modules/x'), -1, 'a read under a runtime root is covered by it');
  t.ok(pair(argv, '--ro-bind', '/usr') > 0, 'the runtime root is bound');
  t.ok(argv.join(' ').includes('--symlink usr/lib /lib'), 'a symlinked runtime root stays a symlink');
});

t.test('nodePath and kernelReads: bound only when outside the runtime roots', async (t) => {
  t.equal(pair(args(), '--ro-bind-try', '/usr/bin/node'), -1, 'node under /usr needs no bind');
  const argv = args({ nodePath: '/opt/node/bin/node', kernelReads: ['/opt/bulkhead/landlock-exec'] });
  t.ok(pair(argv, '--ro-bind-try', '/opt/node/bin/node') > 0, 'node outside /usr is bound');
  t.ok(pair(argv, '--ro-bind-try', '/opt/bulkhead/landlock-exec') > 0, 'what the kernel layers need is bound');
});

t.test('fileBinds: a file bound read-only at a path of the sandbox\'s own, its directory made first (the mm holder\'s library)', async (t) => {
  const source = '/home/u/My Projects/a:b/mm_preload.so';
  t.equal(args().join('\0').includes('/.bh-mm-holder'), false, 'none given: none made');
  const argv = args({ fileBinds: [{ path: '/.bh-mm-holder/mm_preload.so', source }] });
  const dir = argv.findIndex((a, i) => a === '--dir' && argv[i + 1] === '/.bh-mm-holder');
  const bind = argv.findIndex((a, i) => a === '--ro-bind-try' && argv[i + 1] === source && argv[i + 2] === '/.bh-mm-holder/mm_preload.so');
  t.ok(dir > 0 && argv[dir - 2] === '--perms' && argv[dir - 1] === '0755', 'its directory is made 0755 (a dropped uid traverses it)');
  t.ok(bind > dir, 'the source, one argument whatever it holds, bound read-only at that path (a missing source is skipped, as a read is)');
  t.ok(bind < argv.indexOf('--remount-ro'), 'before the root is frozen');
});

t.test('scratchBytes, scratch and scratchTmp: a capped tmpfs, its tmp/, and the cwd', async (t) => {
  t.notOk(args().includes('--tmpfs'), 'no size: scratch stays a plain bind');
  const argv = args({ scratchBytes: 64 * 1024 * 1024 });
  const size = argv.indexOf('--size');
  t.same(argv.slice(size, size + 4), ['--size', String(64 * 1024 * 1024), '--tmpfs', '/tmp/scr']);
  t.ok(pair(argv, '--dir', '/tmp/scr/tmp') > size, 'tmp/ recreated on the tmpfs');
  t.same(argv.slice(-4), ['--remount-ro', '/', '--chdir', '/tmp/scr'], 'the root is frozen and the helper starts in scratch');
});

t.test('readOnlyOver: the broker\'s caches bound read-only after every bind, over a write path that contains them or lies inside them', async (t) => {
  t.equal(args().indexOf('--ro-bind', args().lastIndexOf('--bind-try')), -1, 'none given: no read-only bind after the writable ones');
  const argv = args({ writes: ['/tmp', '/tmp/cache/sub'], readOnlyOver: ['/tmp/cache', '/tmp/validators'] });
  const tmp = pair(argv, '--bind-try', '/tmp');
  const inside = pair(argv, '--bind-try', '/tmp/cache/sub');
  const cache = pair(argv, '--ro-bind', '/tmp/cache');
  const validators = pair(argv, '--ro-bind', '/tmp/validators');
  t.ok(tmp > 0 && inside > tmp, 'the write paths are bound writable');
  t.ok(cache > inside && validators > inside, 'the caches after them, with --ro-bind (a missing one fails the launch rather than leaving a writable gap)');
  t.ok(cache < argv.indexOf('--remount-ro'), 'before the root is frozen');
});

t.test('readOnlyOver: a read inside a cache directory is left to that directory\'s bind (one mount, not two); a read beside it is bound', async (t) => {
  const reads = ['/app/service.js', '/tmp/cache', '/tmp/validators/v-1.cjs', '/tmp/cache2/x.js'];
  const before = args({ reads });
  t.ok(pair(before, '--ro-bind-try', '/tmp/validators/v-1.cjs') > 0 && pair(before, '--ro-bind-try', '/tmp/cache') > 0, 'control: without readOnlyOver both reads are bound');
  const argv = args({ reads, readOnlyOver: ['/tmp/cache', '/tmp/validators'] });
  t.equal(pair(argv, '--ro-bind-try', '/tmp/validators/v-1.cjs'), -1, 'the validators file is not bound on its own');
  t.equal(pair(argv, '--ro-bind-try', '/tmp/cache'), -1, 'the cache directory is not bound twice');
  t.equal(argv.filter((a, i) => a === '--ro-bind' && argv[i + 1] === '/tmp/cache').length, 1, 'the cache directory: one read-only bind');
  const last = Math.max(pair(argv, '--bind-try', '/tmp/scr'), pair(argv, '--bind-try', '/app/data/out'));
  t.ok(pair(argv, '--ro-bind', '/tmp/cache') > last && pair(argv, '--ro-bind', '/tmp/validators') > last, 'both directories bound read-only after every writable bind');
  t.ok(pair(argv, '--ro-bind-try', '/tmp/cache2/x.js') > 0, 'a read beside a cache directory (a shared name prefix) is still bound');
  t.ok(pair(argv, '--ro-bind-try', '/app/service.js') > 0, 'other reads are still bound');
  const dirs = (a: string[]) => a.flatMap((x, i) => (x === '--dir' ? [a[i + 1]] : []));
  t.same(dirs(argv), dirs(before), 'the same mount points are made 0755 as before');
});
