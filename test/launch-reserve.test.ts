// A sandboxed service's next launch takes the scratch dir and cgroup its broker made ahead, once the previous
// helper's teardown was done (lib/sandbox/launch-reserve.ts): only while they are as good as fresh ones (a
// scratch dir nothing was planted in, a cgroup nothing joined, the profile's limits written again), and
// nothing of the reserve outlives the broker. Each refusal has its positive control: the untouched reserve is used.
import t, { type Test } from 'tap';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startBroker, type TestBroker } from 'bulkhead/testing';
import { probeHost } from '../lib/sandbox/index.js';
import { LaunchReserve } from '../lib/sandbox/launch-reserve.js';
import { brokerTag } from '../lib/sandbox/broker-tag.js';
import { FIXTURES, REPO_ROOT, pathGone } from './helpers.js';

const probe = await probeHost();
const skip = probe.bwrap === null ? 'needs bubblewrap' : probe.cgroup === null ? 'needs a usable cgroup hierarchy' : false;
const MIB = 1024 * 1024;
// The sandboxed tests below are independent (a broker and a service name of their own each; the reserve is per
// service) and mostly wait for their helpers: they run side by side.
t.jobs = 3;

/** This process's scratch dirs for `service`, as paths. */
function scratchDirs(service: string): string[] {
  return readdirSync(tmpdir()).filter((f) => f.startsWith(`bulkhead-scratch.${process.pid}-`) && f.includes(`.${service}-`)).map((f) => join(tmpdir(), f));
}

/**
 * This process's cgroup directories named for `service` beside `paths` (the running helper's, the reserve's). The
 * parent is shared by every broker on the host: another process running this file at the same time has the same
 * service names, told apart by the broker tag in the name.
 */
function cgroupDirs(service: string, paths: readonly string[]): string[] {
  const ours = `${service}.${brokerTag() ?? process.pid}.`;
  return [...new Set(paths.map((p) => dirname(p)))].flatMap((parent) => {
    try {
      return readdirSync(parent).filter((n) => n.startsWith(ours)).map((n) => join(parent, n));
    } catch {
      return [];
    }
  });
}

/** The memory limit file of a helper cgroup directory (v1 or v2). */
function memoryFile(dir: string): string | undefined {
  return [join(dir, 'memory.max'), join(dir, 'memory.limit_in_bytes')].find((f) => existsSync(f));
}

interface Launched { scratch: string; cgroups: string[]; pid: number }

async function launch(t: Test, kit: TestBroker, service: string): Promise<Launched> {
  t.equal(((await kit.broker.connect(service).call('echo', { text: 'hi' })) as { text: string }).text, 'hi');
  const status = kit.broker.status(service);
  return { scratch: status.sandbox?.grants?.write[0] ?? '', cgroups: status.sandbox?.cgroup?.paths ?? [], pid: status.pid ?? -1 };
}

async function kitWith(t: Test, service: string): Promise<TestBroker> {
  const kit = await startBroker({ root: FIXTURES, services: [{ name: service, entry: './echo-service.js', protocol: 'com.test.echo', sandbox: 'pure-compute', launch: { throttleMs: 0 } }] });
  t.teardown(() => kit.close());
  return kit;
}

/** After stop(): the one reserved scratch dir and the reserved cgroup directories, asserted to exist and be other than `used`'s. */
function reserved(t: Test, service: string, used: Launched): { scratch: string; cgroups: string[] } {
  const scratch = scratchDirs(service);
  t.equal(scratch.length, 1, 'one scratch dir is held for the next launch');
  t.not(scratch[0], used.scratch, 'it is not the stopped helper\'s');
  t.same(readdirSync(scratch[0]!), ['tmp'], 'it is empty but for tmp/');
  const cgroups = cgroupDirs(service, used.cgroups);
  t.equal(cgroups.length, used.cgroups.length, 'one cgroup directory per hierarchy is held');
  t.ok(cgroups.every((c) => !used.cgroups.includes(c)), 'not the stopped helper\'s');
  return { scratch: scratch[0]!, cgroups };
}

t.test('the next launch runs in the reserved scratch dir and cgroup, with the profile\'s limits; closing the broker removes the reserve', { skip }, async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [{ name: 'reserved', entry: './echo-service.js', protocol: 'com.test.echo', sandbox: 'pure-compute', launch: { throttleMs: 0 } }] });
  let closed = false;
  t.teardown(() => (closed ? undefined : kit.close()));
  const first = await launch(t, kit, 'reserved');
  t.same(scratchDirs('reserved'), [first.scratch], 'nothing is reserved while the first helper runs');
  await kit.broker.stop('reserved');
  t.notOk(existsSync(first.scratch), 'the stopped helper\'s scratch dir is gone');
  t.same(first.cgroups.filter((c) => existsSync(c)), [], 'and its cgroup');
  const held = reserved(t, 'reserved', first);

  const second = await launch(t, kit, 'reserved');
  t.equal(second.scratch, held.scratch, 'the next helper works in the reserved scratch dir');
  t.same([...second.cgroups].sort(), [...held.cgroups].sort(), 'and runs in the reserved cgroup');
  for (const dir of second.cgroups) t.ok(readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').includes(String(second.pid)), `its processes are in ${dir}`);
  const memory = second.cgroups.map(memoryFile).find((f) => f !== undefined);
  t.ok(memory, 'the cgroup has a memory limit file');
  t.equal(Number(readFileSync(memory!, 'utf8')), 512 * MIB, 'the profile\'s memory limit (512 MiB) is written');
  t.same(scratchDirs('reserved'), [second.scratch], 'a taken piece is not held any more');

  await kit.broker.stop('reserved');
  const next = reserved(t, 'reserved', second);
  t.ok(existsSync(next.scratch) && next.cgroups.every((c) => existsSync(c)), 'control: the reserve holds its pieces before the broker closes');
  await kit.close();
  closed = true;
  t.same(scratchDirs('reserved'), [], 'no scratch dir is left once the broker closed');
  t.same(cgroupDirs('reserved', second.cgroups), [], 'no cgroup is left once the broker closed');
});

t.test('a reserved scratch dir with anything planted in it is not used, and is removed', { skip }, async (t) => {
  const kit = await kitWith(t, 'planted');
  const first = await launch(t, kit, 'planted');
  await kit.broker.stop('planted');
  const held = reserved(t, 'planted', first);
  writeFileSync(join(held.scratch, 'tmp', 'planted.js'), 'throw new Error("planted")');
  const second = await launch(t, kit, 'planted');
  t.not(second.scratch, held.scratch, 'the next helper got a fresh scratch dir');
  t.ok(await pathGone(held.scratch, 10_000), 'the planted one was removed (asynchronously, while the next launch went on)');
  t.same([...second.cgroups].sort(), [...held.cgroups].sort(), 'control: the untouched cgroup was still used');
});

t.test('a reserved scratch dir whose mode was opened is not used', { skip }, async (t) => {
  const kit = await kitWith(t, 'opened');
  const first = await launch(t, kit, 'opened');
  await kit.broker.stop('opened');
  const held = reserved(t, 'opened', first);
  chmodSync(held.scratch, 0o777);
  const second = await launch(t, kit, 'opened');
  t.not(second.scratch, held.scratch, 'the next helper got a fresh scratch dir');
  t.ok(await pathGone(held.scratch, 10_000), 'the opened one was removed (asynchronously, while the next launch went on)');
});

t.test('a reserved cgroup a process joined is not used; the process is killed and the cgroup removed', { skip }, async (t) => {
  const kit = await kitWith(t, 'joined');
  const first = await launch(t, kit, 'joined');
  await kit.broker.stop('joined');
  const held = reserved(t, 'joined', first);
  const squatter = spawn('sleep', ['60'], { stdio: 'ignore' });
  const gone = new Promise<NodeJS.Signals | null>((resolve) => squatter.once('exit', (_code, signal) => resolve(signal)));
  t.teardown(() => squatter.kill('SIGKILL'));
  for (const dir of held.cgroups) writeFileSync(join(dir, 'cgroup.procs'), String(squatter.pid));
  const second = await launch(t, kit, 'joined');
  t.ok(second.cgroups.every((c) => !held.cgroups.includes(c)), 'the next helper got a fresh cgroup');
  t.equal(await gone, 'SIGKILL', 'the process in the reserved cgroup was killed');
  t.equal(second.scratch, held.scratch, 'control: the untouched scratch dir was still used');
  await kit.broker.stop('joined');
  t.same(held.cgroups.filter((c) => existsSync(c)), [], 'the joined cgroup is removed');
});

t.test('a reserved cgroup gets the profile\'s limits written again when it is taken', { skip }, async (t) => {
  const kit = await kitWith(t, 'raised');
  const first = await launch(t, kit, 'raised');
  await kit.broker.stop('raised');
  const held = reserved(t, 'raised', first);
  const memory = held.cgroups.map(memoryFile).find((f) => f !== undefined);
  t.ok(memory, 'the reserved cgroup has a memory limit file');
  writeFileSync(memory!, String(2048 * MIB));
  t.equal(Number(readFileSync(memory!, 'utf8')), 2048 * MIB, 'control: the raised limit was written');
  const second = await launch(t, kit, 'raised');
  t.same([...second.cgroups].sort(), [...held.cgroups].sort(), 'the next helper runs in the reserved cgroup');
  t.equal(Number(readFileSync(memory!, 'utf8')), 512 * MIB, 'with the profile\'s limit, not the raised one');
});

t.test('LaunchReserve alone: holds only what a launch used, hands each piece out once, forgets on release', async (t) => {
  const reserve = new LaunchReserve();
  reserve.refill();
  t.notOk(reserve.holds, 'nothing is made before a launch said what it uses');
  t.equal(reserve.takeScratch('svc', undefined), undefined, 'nothing to take');
  reserve.remember({ scratch: { service: 'alone', owner: undefined } });
  reserve.refill();
  const path = reserve.paths.scratch!;
  t.ok(existsSync(path), 'refill made the scratch dir');
  const taken = reserve.takeScratch('alone', undefined);
  t.equal(taken?.path, path, 'the launch it was made for takes it');
  t.equal(reserve.takeScratch('alone', undefined), undefined, 'only once');
  await taken!.remove();
  reserve.refill();
  const other = reserve.paths.scratch!;
  t.equal(reserve.takeScratch('another-service', undefined), undefined, 'another service\'s launch does not take it');
  reserve.refill();
  t.ok(reserve.holds, 'refill makes a new one');
  await reserve.release();
  t.notOk(existsSync(other), 'the refused one is removed (release waits for it)');
  t.notOk(reserve.holds, 'release empties the reserve');
  t.same(scratchDirs('alone'), [], 'and removes what it held');
  reserve.refill();
  t.notOk(reserve.holds, 'after release, nothing is made until a launch says what it uses again');
});

t.test('a process that exits without closing its broker removes the reserve at exit', { skip }, async (t) => {
  // The child launches and stops a sandboxed helper (the reserve is made), reports the reserve's pieces and whether
  // they exist (the positive control), and exits without broker.close().
  const script = `
    import { Broker } from ${JSON.stringify(join(REPO_ROOT, 'dist', 'lib', 'index.js'))};
    import { existsSync, readdirSync } from 'node:fs';
    import { tmpdir } from 'node:os';
    import { dirname, join } from 'node:path';
    const broker = new Broker({ root: ${JSON.stringify(FIXTURES)} });
    broker.register({ name: 'exiter', entry: './echo-service.js', protocol: 'com.test.echo', sandbox: 'pure-compute', launch: { throttleMs: 0 } });
    await broker.connect('exiter').call('echo', { text: 'hi' });
    const used = broker.status('exiter').sandbox.cgroup.paths;
    await broker.stop('exiter');
    const scratch = readdirSync(tmpdir()).filter((f) => f.startsWith('bulkhead-scratch.' + process.pid + '-') && f.includes('.exiter-')).map((f) => join(tmpdir(), f));
    const cgroups = [...new Set(used.map((p) => dirname(p)))].flatMap((d) => readdirSync(d).filter((n) => n.startsWith('exiter.' + process.pid + '-')).map((n) => join(d, n)));
    console.log(JSON.stringify({ scratch, cgroups, exist: [...scratch, ...cgroups].every((p) => existsSync(p)) }));
    process.exit(0);
  `;
  // Not spawnSync: the tests beside this one need the event loop meanwhile.
  const child = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
    });
  });
  t.equal(child.status, 0, `the child ran: ${child.stderr.slice(0, 500)}`);
  const held = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}') as { scratch: string[]; cgroups: string[]; exist: boolean };
  t.equal(held.scratch.length, 1, 'control: the reserve held a scratch dir');
  t.ok(held.cgroups.length > 0, 'control: and a cgroup');
  t.ok(held.exist, 'control: both existed before the exit');
  t.same([...held.scratch, ...held.cgroups].filter((p) => existsSync(p)), [], 'none is left after the exit');
});
