// A sandboxed launch takes the compile its service's launch reserve made ahead for the reserved scratch dir and cgroup
// (lib/sandbox/prepared-compile.ts) only when it is the compile the launch would make: the same profile and input,
// every real path it bound resolving as before, the cgroup it named. A symlink repointed, a profile with other limits
// (by planLaunch, and by a broker's reload) make the launch compile afresh; nothing is left once the reserve is released.
import t from 'tap';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startBroker } from 'bulkhead/testing';
import { planLaunch, probeHost, type SandboxLaunchInput, type SandboxLaunchPlan } from '../lib/sandbox/index.js';
import { LaunchReserve } from '../lib/sandbox/launch-reserve.js';
import { HELPER_ENV } from '../lib/wire/helper-env.js';
import { runtimeReadPaths } from '../lib/broker/package-paths.js';
import { brokerTag } from '../lib/sandbox/broker-tag.js';
import { answersHold, recordingAnswers, resolvConf } from '../lib/sandbox/fs-answers.js';
import { withRealPath } from '../lib/sandbox/paths.js';
import { RESOLV_CONF_ENV, RESOLV_UPSTREAM_ENV } from '../lib/sandbox/pasta-dns.js';
import { FIXTURES, REPO_ROOT } from './helpers.js';

const probe = await probeHost();
const skip = probe.bwrap === null ? 'needs bubblewrap' : probe.cgroup === null ? 'needs a usable cgroup hierarchy' : false;
const MIB = 1024 * 1024;
const PURE = JSON.parse(readFileSync(join(REPO_ROOT, 'sandbox-profiles', 'pure-compute.json'), 'utf8')) as { limits: Record<string, number> };

/** A profile that reads `${data}` (a symlink the test repoints), with `memoryMiB`. */
function profile(memoryMiB: number): unknown {
  return { ...PURE, fs: { read: ['${data}'], write: [] }, limits: { ...PURE.limits, memoryMiB } };
}

/** The reserve compiles on the turn after its refill. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The memory limit file of a helper cgroup directory (v1 or v2), read as a number. */
function memoryLimit(plan: SandboxLaunchPlan): number | undefined {
  const file = (plan.report.cgroup?.paths ?? []).flatMap((dir) => [join(dir, 'memory.max'), join(dir, 'memory.limit_in_bytes')]).find((f) => existsSync(f));
  return file === undefined ? undefined : Number(readFileSync(file, 'utf8'));
}

t.test('a launch takes the compile made ahead while it is the same, and compiles afresh when a bound path or the limits changed', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-prepared-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [a, b] = [join(dir, 'a'), join(dir, 'b')];
  mkdirSync(a);
  mkdirSync(b);
  const data = join(dir, 'data');
  symlinkSync(a, data);
  const reserve = new LaunchReserve();
  t.teardown(() => reserve.release());
  const input = (memoryMiB: number): SandboxLaunchInput => ({
    service: 'prepared', entry: join(FIXTURES, 'echo-service.js'), serviceDir: FIXTURES.replace(/\/$/, ''),
    implicitReads: [...runtimeReadPaths(), join(FIXTURES, 'protocols', 'com.test.echo.json')], nodePath: process.execPath, nodeArgs: [], env: {},
    profile: { name: 'prepared', document: profile(memoryMiB) }, paths: { data }, reserve,
  });
  /** Plans with the reserve, cleans up, refills (as the broker does after a teardown) and waits for the compile. */
  const launch = async (memoryMiB: number): Promise<{ plan: SandboxLaunchPlan; scratch: string; cgroups: string[]; limit: number | undefined }> => {
    const plan = await planLaunch(input(memoryMiB));
    const seen = { plan, scratch: plan.cwd, cgroups: plan.report.cgroup?.paths ?? [], limit: memoryLimit(plan) };
    await plan.cleanup();
    reserve.refill();
    await nextTurn();
    return seen;
  };

  const first = await launch(512);
  t.equal(reserve.compilesTaken, 0, 'the first launch had nothing made ahead');
  t.ok(reserve.compilePrepared, 'after its teardown, the next launch\'s compile is made');
  const held = reserve.paths;
  const second = await launch(512);
  t.equal(reserve.compilesTaken, 1, 'the next launch took it');
  t.equal(second.scratch, held.scratch, 'with the reserved scratch dir');
  t.same(second.cgroups, held.cgroup, 'and the reserved cgroup');
  t.equal(second.limit, 512 * MIB, 'whose limit is written');
  // The same compile as a fresh one: the first launch's command line but for its own scratch dir and cgroup names.
  const rename = (args: string[], from: { scratch: string; cgroups: string[] }, to: { scratch: string; cgroups: string[] }): string[] =>
    args.map((arg) => from.cgroups.reduce((s, c, i) => s.replaceAll(c, to.cgroups[i]!), arg.replaceAll(from.scratch, to.scratch)));
  t.same(second.plan.args, rename(first.plan.args, first, second), 'its command line is the one a fresh compile makes');
  t.ok(second.plan.args.includes(realpathSync(a)), 'control: the data dir\'s target is bound');

  // The symlink now names another directory: the compile made ahead bound the old one.
  rmSync(data);
  symlinkSync(b, data);
  const third = await launch(512);
  t.equal(reserve.compilesTaken, 1, 'a launch after the symlink was repointed compiles afresh');
  t.ok(third.plan.args.includes(realpathSync(b)), 'and binds the new target');
  t.notOk(third.plan.args.includes(realpathSync(a)), 'not the old one');

  const fourth = await launch(512);
  t.equal(reserve.compilesTaken, 2, 'control: unchanged again, the next launch takes the compile made ahead');
  t.equal(fourth.limit, 512 * MIB, 'control: 512 MiB');

  const fifth = await launch(256);
  t.equal(reserve.compilesTaken, 2, 'a launch with other limits compiles afresh');
  t.equal(fifth.limit, 256 * MIB, 'its cgroup has the new limit');
  t.ok(fifth.plan.args.some((arg) => arg.startsWith('--max-old-space-size=')), 'control: the heap flag is planned');
  t.notSame(fifth.plan.args.filter((arg) => arg.startsWith('--max-old-space-size=')), fourth.plan.args.filter((arg) => arg.startsWith('--max-old-space-size=')), 'and it follows the new limit');

  const kept = reserve.paths;
  t.ok(reserve.compilePrepared && kept.scratch !== undefined && existsSync(kept.scratch) && kept.cgroup.every((c) => existsSync(c)), 'control: the reserve holds its pieces and a compile');
  await reserve.release();
  t.notOk(reserve.compilePrepared, 'release forgets the compile');
  t.notOk(existsSync(kept.scratch!), 'and removes the scratch dir');
  t.same(kept.cgroup.filter((c) => existsSync(c)), [], 'and the cgroup');
});

t.test('a prewarmed service\'s reserve makes no compile ahead (its next launch is a spare, off the callers\' path)', { skip }, async (t) => {
  const reserve = new LaunchReserve();
  t.teardown(() => reserve.release());
  const base = (extra: Partial<SandboxLaunchInput>): SandboxLaunchInput => ({
    service: 'prepared-prewarm', entry: join(FIXTURES, 'echo-service.js'), serviceDir: FIXTURES.replace(/\/$/, ''),
    implicitReads: [...runtimeReadPaths(), join(FIXTURES, 'protocols', 'com.test.echo.json')], nodePath: process.execPath, nodeArgs: [], env: {},
    profile: { name: 'prepared', document: PURE }, paths: {}, reserve, ...extra,
  });
  const cases: Array<[string, Partial<SandboxLaunchInput>, boolean]> = [
    ['control: a service without a spare', {}, true],
    ['a spare\'s launch', { env: { [HELPER_ENV.entry]: join(FIXTURES, 'echo-service.js') } }, false],
    ['a launch of a service that keeps a spare (mm holder asked)', { mmHolder: true }, false],
  ];
  for (const [what, extra, prepared] of cases) {
    const plan = await planLaunch(base(extra));
    await plan.cleanup();
    reserve.refill();
    await nextTurn();
    t.equal(reserve.compilePrepared, prepared, `${what}: ${prepared ? 'a compile is made ahead' : 'none is made ahead'}`);
    t.ok(reserve.paths.scratch !== undefined, `${what}: the scratch dir is still made ahead`);
  }
});

t.test('a reload to a profile with other limits: the next launch runs with the new ones, and nothing is left after close', { skip }, async (t) => {
  const profiles = mkdtempSync(join(tmpdir(), 'bulkhead-prepared-profiles-'));
  t.teardown(() => rmSync(profiles, { recursive: true, force: true }));
  const write = (name: string, memoryMiB: number): void => writeFileSync(join(profiles, `${name}.json`), JSON.stringify({ ...PURE, limits: { ...PURE.limits, memoryMiB } }));
  write('small', 512);
  write('smaller', 256);
  const manifest = { name: 'reloaded', entry: './echo-service.js', protocol: 'com.test.echo', sandbox: 'small', launch: { throttleMs: 0 } };
  const kit = await startBroker({ root: FIXTURES, profilesDir: profiles, services: [manifest] });
  let closed = false;
  t.teardown(() => (closed ? undefined : kit.close()));
  const launched = async (): Promise<{ limit: number; cgroups: string[]; scratch: string }> => {
    await kit.broker.connect('reloaded').call('echo', { text: 'hi' });
    const sandbox = kit.broker.status('reloaded').sandbox;
    const cgroups = sandbox?.cgroup?.paths ?? [];
    const file = cgroups.flatMap((dir) => [join(dir, 'memory.max'), join(dir, 'memory.limit_in_bytes')]).find((f) => existsSync(f));
    return { limit: file === undefined ? Number.NaN : Number(readFileSync(file, 'utf8')), cgroups, scratch: sandbox?.grants?.write[0] ?? '' };
  };
  t.equal((await launched()).limit, 512 * MIB, 'the first helper runs with 512 MiB');
  await kit.broker.stop('reloaded');
  t.equal((await launched()).limit, 512 * MIB, 'control: so does the next one');
  await kit.broker.stop('reloaded');
  await nextTurn(); // the reserve's compile for the next launch is made
  // (A reload compares manifests: a profile file changed under the same name is read at the next manifest change.)
  await kit.broker.reload({ services: [{ ...manifest, sandbox: 'smaller' }] });
  const after = await launched();
  t.equal(after.limit, 256 * MIB, 'after the reload, the helper runs with the new 256 MiB');
  await kit.broker.stop('reloaded');
  await nextTurn();
  await kit.close();
  closed = true;
  const ours = (service: string): string[] => readdirSync(tmpdir()).filter((f) => f.startsWith(`bulkhead-scratch.${process.pid}-`) && f.includes(`.${service}-`));
  t.same(ours('reloaded'), [], 'no scratch dir is left once the broker closed');
  const parents = [...new Set(after.cgroups.map((c) => dirname(c)))];
  t.same(parents.flatMap((p) => (existsSync(p) ? readdirSync(p) : []).filter((n) => n.startsWith(`reloaded.${brokerTag() ?? process.pid}.`))), [], 'no cgroup is left');
});

t.test('fs-answers: recorded answers hold until a link or the resolv.conf plan changes', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-answers-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'a'));
  mkdirSync(join(dir, 'b'));
  symlinkSync(join(dir, 'a'), join(dir, 'link'));
  const resolvFile = join(dir, 'resolv.conf');
  writeFileSync(resolvFile, 'nameserver 127.0.0.53\n');
  writeFileSync(join(dir, 'upstream.conf'), 'nameserver 192.0.2.1\n');
  process.env[RESOLV_CONF_ENV] = resolvFile;
  process.env[RESOLV_UPSTREAM_ENV] = join(dir, 'upstream.conf');
  t.teardown(() => {
    Reflect.deleteProperty(process.env, RESOLV_CONF_ENV);
    Reflect.deleteProperty(process.env, RESOLV_UPSTREAM_ENV);
  });
  const { value, answers } = recordingAnswers(() => [withRealPath(join(dir, 'link', 'x')), withRealPath(join(dir, 'link')), resolvConf()?.path]);
  t.same(value[1], [join(dir, 'link'), realpathSync(join(dir, 'a'))], 'the link and its target');
  t.equal(answers.size, 3, 'three questions recorded (a missing path among them)');
  t.same(withRealPath(join(dir, 'a')), [realpathSync(join(dir, 'a'))], 'a question asked outside a recording is not recorded');
  t.equal(answers.size, 3, 'still three');
  t.ok(answersHold(answers), 'nothing changed: every answer holds');
  writeFileSync(resolvFile, 'nameserver 127.0.0.53\nnameserver 127.0.0.54\n');
  t.notOk(answersHold(answers), 'the host\'s resolv.conf changed: the helper\'s would be another file');
  writeFileSync(resolvFile, 'nameserver 127.0.0.53\n');
  t.ok(answersHold(answers), 'control: back as it was, the answers hold again');
  rmSync(join(dir, 'link'));
  symlinkSync(join(dir, 'b'), join(dir, 'link'));
  t.notOk(answersHold(answers), 'the link repointed: its answer does not hold');
  rmSync(join(dir, 'link'));
  symlinkSync(join(dir, 'a'), join(dir, 'link'));
  t.ok(answersHold(answers), 'control: pointed back, it holds');
  mkdirSync(join(dir, 'a', 'x'));
  t.notOk(answersHold(answers), 'a path missing when it was asked now exists: that answer does not hold');
  t.end();
});

t.test('audit15: a changed sandboxPaths value, nodeArgs or compile cache (a broker option) makes the launch compile afresh', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-prepared-inputs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [a, b, cache] = [join(dir, 'a'), join(dir, 'b'), join(dir, 'cache')];
  for (const d of [a, b, cache]) mkdirSync(d);
  const reserve = new LaunchReserve();
  t.teardown(() => reserve.release());
  const launch = async (data: string, nodeArgs: string[], compileCache?: string): Promise<SandboxLaunchPlan> => {
    const plan = await planLaunch({
      service: 'prepared-inputs', entry: join(FIXTURES, 'echo-service.js'), serviceDir: FIXTURES.replace(/\/$/, ''),
      implicitReads: [...runtimeReadPaths(), join(FIXTURES, 'protocols', 'com.test.echo.json'), ...(compileCache !== undefined ? [compileCache] : [])], nodePath: process.execPath, nodeArgs, env: {},
      profile: { name: 'prepared', document: profile(512) }, paths: { data }, reserve, ...(compileCache !== undefined ? { compileCache } : {}),
    });
    await plan.cleanup();
    reserve.refill();
    await nextTurn();
    return plan;
  };
  await launch(a, []);
  t.ok(reserve.compilePrepared, 'a compile is made ahead');
  const other = await launch(b, []);
  t.equal(reserve.compilesTaken, 0, 'sandboxPaths.data now names another directory: compiled afresh');
  t.ok(other.args.includes(b) && !other.args.includes(a), 'it binds the new directory, not the old one');
  await launch(b, []);
  t.equal(reserve.compilesTaken, 1, 'control: the same again, the compile made ahead is taken');
  const flagged = await launch(b, ['--stack-size=900']);
  t.equal(reserve.compilesTaken, 1, 'other nodeArgs: compiled afresh');
  t.ok(flagged.args.includes('--stack-size=900'), 'the new flag is on the command line');
  const cached = await launch(b, ['--stack-size=900'], cache);
  t.equal(reserve.compilesTaken, 1, 'a compile cache given now (a broker option): compiled afresh');
  t.ok(cached.args.some((arg) => arg.includes(cache)), 'the cache directory is on the command line');
  await launch(b, ['--stack-size=900'], cache);
  t.equal(reserve.compilesTaken, 2, 'control: unchanged again, taken');
});
