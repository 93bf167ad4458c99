// Profile validation (one clear error per bad field, by JSON pointer), the
// shipped profiles, exit explanations, and planLaunch's handling of inputs.
import t from 'tap';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { isBulkheadError, type BulkheadError } from 'bulkhead';
import { checkProfile, parseProfile, planLaunch, type SandboxLaunchInput } from '../lib/sandbox/index.js';
import { explainExit } from '../lib/sandbox/exit-reason.js';
import { REPO_ROOT } from './helpers.js';

const SHIPPED = join(REPO_ROOT, 'sandbox-profiles');

function thrown(fn: () => unknown): BulkheadError {
  try {
    fn();
  } catch (err) {
    if (isBulkheadError(err)) return err;
    throw err;
  }
  throw new Error('expected a throw');
}

async function rejected(promise: Promise<unknown>): Promise<BulkheadError> {
  try {
    await promise;
  } catch (err) {
    if (isBulkheadError(err)) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

t.test('the shipped profiles are valid and are the four documented ones', async (t) => {
  const names = readdirSync(SHIPPED).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
  t.same(names, ['fs-reader', 'network-client', 'no-network', 'pure-compute']);
  for (const name of names) t.same(checkProfile(JSON.parse(readFileSync(join(SHIPPED, `${name}.json`), 'utf8'))), [], name);
  const docs = readFileSync(join(REPO_ROOT, 'docs', 'sandbox.md'), 'utf8');
  for (const name of names) t.match(docs, `\`${name}\``, `docs/sandbox.md documents ${name}`);
});

t.test('defaults are the most restrictive choice', async (t) => {
  const p = parseProfile('empty', {});
  t.same(p, {
    name: 'empty', description: '', network: 'none', fs: { read: [], write: [] }, processes: { children: false, workers: false },
    addons: false, syscalls: { ioUring: false, onViolation: 'error' }, limits: {}, user: { uid: 65534, gid: 65534 }, env: [], enforcement: 'strict',
  });
});

t.test('every bad field is named by its JSON pointer', async (t) => {
  const err = thrown(() => parseProfile('bad', {
    network: 'internet',
    fs: { read: ['relative/path', '/ok', '/a/../etc'], exec: [] },
    limits: { memoryMiB: 16, cpuSeconds: 1.5 },
    user: { uid: 0, gid: 0 },
    env: ['NOT-A-NAME'],
    extra: true,
  }));
  t.equal(err.code, 'ERR_INVALID_PROFILE');
  const problems = err.data['problems'] as { pointer: string; message: string }[];
  t.same(problems.map((p) => p.pointer).sort(), ['/env/0', '/extra', '/fs/exec', '/fs/read/0', '/fs/read/2', '/limits/cpuSeconds', '/limits/memoryMiB', '/network', '/user/gid', '/user/uid'].sort());
  t.same(problems.find((p) => p.pointer === '/network'), { pointer: '/network', message: 'must be one of "none", "loopback", "full"' });
  t.same(problems.find((p) => p.pointer === '/limits/memoryMiB'), { pointer: '/limits/memoryMiB', message: 'must be >= 128' });
  t.match(problems.find((p) => p.pointer === '/extra')?.message, /^unknown field "extra" \(allowed: description, network, fs, processes, addons, syscalls, limits, user, env, enforcement\)$/);
  t.match(err.message, /^Sandbox profile "bad" is not valid: /);
  t.equal(thrown(() => parseProfile('x', 'not an object')).data['pointer'], '/');
});

t.test('explainExit names the limit, whether the signal arrives as such or as 128+n from bubblewrap', async (t) => {
  const limits = { memoryMiB: 256, cpuSeconds: 2, fileSizeMiB: 1 };
  t.equal(explainExit(limits, null, 'SIGXCPU'), 'CPU time limit (2 s)');
  t.equal(explainExit(limits, 152, null), 'CPU time limit (2 s)');
  t.equal(explainExit(limits, 153, null), 'file size limit (1 MiB)');
  t.equal(explainExit(limits, 134, null), 'memory limit (256 MiB), probably: the helper aborted');
  t.equal(explainExit(limits, 134, null, ['FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory']), 'memory limit (256 MiB)');
  t.equal(explainExit(limits, 1, null), undefined);
  t.equal(explainExit({}, null, 'SIGXCPU'), undefined, 'no limit, no blame');
  t.equal(explainExit(limits, null, 'SIGKILL'), undefined);
});

const input = (over: Partial<SandboxLaunchInput> = {}): SandboxLaunchInput => ({
  service: 'unit', entry: join(REPO_ROOT, 'test', 'fixtures', 'sandbox', 'escape-service.js'), serviceDir: join(REPO_ROOT, 'test', 'fixtures', 'sandbox'),
  implicitReads: [], nodePath: process.execPath, nodeArgs: [], env: { BULKHEAD_PROTOCOL_FILE: '/p.json' }, profile: { name: 'pure-compute', document: {} }, ...over,
});

t.test('no profile: plain node, scrubbed env, report "none"', async (t) => {
  process.env['BULKHEAD_TEST_SECRET'] = 'x';
  const plan = await planLaunch(input({ profile: undefined }));
  t.equal(plan.command, process.execPath);
  t.same(plan.report, { profile: 'none', enforcement: 'none', rules: [] });
  t.equal(plan.env['BULKHEAD_TEST_SECRET'], undefined);
  t.equal(plan.env['BULKHEAD_PROTOCOL_FILE'], '/p.json');
});

t.test('a plan owns a fresh scratch dir, removed by cleanup() (idempotent)', async (t) => {
  const plan = await planLaunch(input());
  t.equal(plan.cwd, plan.env['HOME']);
  t.equal(existsSync(plan.cwd), true);
  await plan.cleanup();
  await plan.cleanup();
  t.equal(existsSync(plan.cwd), false);
});

t.test('manifests cannot loosen the sandbox, and placeholders must be granted', async (t) => {
  t.equal((await rejected(planLaunch(input({ nodeArgs: ['--allow-fs-read=/'] })))).code, 'ERR_INVALID_MANIFEST');
  t.equal((await rejected(planLaunch(input({ env: { NODE_OPTIONS: '--allow-fs-read=/' } })))).code, 'ERR_INVALID_MANIFEST');
  t.equal((await rejected(planLaunch(input({ profile: { name: 'p', document: { env: ['LD_PRELOAD'] } } })))).code, 'ERR_INVALID_PROFILE');
  const err = await rejected(planLaunch(input({ profile: { name: 'fs-reader', document: { fs: { read: ['${data}'] } } } })));
  t.equal(err.code, 'ERR_INVALID_MANIFEST');
  t.equal(err.data['pointer'], '/sandboxPaths/data');
  const plan = await planLaunch(input({ profile: { name: 'fs-reader', document: { fs: { read: ['${data}/sub'] } } }, paths: { data: '/srv/data' } }));
  t.teardown(() => plan.cleanup());
  t.ok(plan.args.includes('--allow-fs-read=/srv/data/sub'), 'expanded into the node permission flags');
});
