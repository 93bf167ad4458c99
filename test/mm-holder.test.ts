// The mm holder (native/mm-holder, lib/broker/mm-holder-reaper.ts): an unsandboxed prewarmed spare starts a process
// that shares its node's memory, the broker's child, named bh-mm-holder; a crash of its helper then relaunches as
// before (one takeover, one launch, the exit's signal, the call in flight interrupted and retried), and the broker
// reaps the holder (after the exit, when it dies alone, at close and kill), never anything else: a warm frame that
// names another pid is refused and the process it names keeps its exit; a holder slow to die (frozen: test/freezer.ts)
// holds close() until it is reaped. Holders are found in /proc; every wait for one to go is a bounded poll, never a sleep.
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isBulkheadError, type BulkheadError } from 'bulkhead';
import { startBroker, type TestBroker } from 'bulkhead/testing';
import { alive, FIXTURES, REPO_ROOT, firstStdoutLine, nextSpare, rejection } from './helpers.js';
import { freeze, noFreezer, sigkillPending } from './freezer.js';

const ADDON = join(REPO_ROOT, 'dist', 'native', 'mm_holder.node');
const noAddon = !existsSync(ADDON) && 'the mm-holder addon is not built (no C compiler or node_api.h)';

/** The fields of /proc/<pid>/stat this test reads, or undefined when the process is gone (reaped). */
function stat(pid: number): { comm: string; state: string; ppid: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { comm: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')), state: fields[0] ?? '', ppid: Number(fields[1]) };
  } catch {
    return undefined;
  }
}

/** Every process named bh-mm-holder whose parent is this process (the embedded broker's holders). */
function ourHolders(): number[] {
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => {
    const s = stat(pid);
    return s?.comm === 'bh-mm-holder' && s.ppid === process.pid;
  });
}

/** The address-space map of a process, or undefined once it is gone. */
function maps(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/maps`, 'latin1');
  } catch {
    return undefined;
  }
}

/** The holder that shares `node`'s address space: its maps read equal (read again while node maps or unmaps). */
function holderOf(node: number): number | undefined {
  for (let attempt = 0; attempt < 20; attempt++) {
    const want = maps(node);
    const found = ourHolders().find((pid) => maps(pid) === want);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** Polls until `pid` is no longer in /proc at all (a zombie still is: gone means reaped), at most `withinMs`. */
async function reaped(pid: number, withinMs = 30_000): Promise<boolean> {
  const deadline = performance.now() + withinMs;
  while (stat(pid) !== undefined) {
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

/**
 * The number of fds `pid` holds once it has only one left, polled at most `withinMs`. A holder is cloned with a copy
 * of its node's fd table and closes all but its pipe on its own thread (close_range), which may not have run yet
 * when the warm frame arrives: nothing signals that moment, so this is a bounded poll.
 */
async function settledFdCount(pid: number, withinMs = 30_000): Promise<number> {
  const deadline = performance.now() + withinMs;
  for (;;) {
    const count = readdirSync(`/proc/${pid}/fd`).length;
    if (count <= 1 || performance.now() > deadline) return count;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** What test/fixtures/mm-holder/host.js prints once a helper launched from a spare serves and the next spare is warm. */
interface Printed { helper: number; spare: number; holders: number[] }

/** test/fixtures/mm-holder/host.js of the package at `root`, running (SIGKILLed at the end of the file at the latest). */
function startHost(root: string): { host: ChildProcess; printed: Promise<Printed> } {
  const host = spawn(process.execPath, [join(root, 'test', 'fixtures', 'mm-holder', 'host.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    host.kill('SIGKILL');
  });
  const printed = firstStdoutLine(host).then((line) => JSON.parse(line) as Printed);
  printed.catch(() => undefined); // its test awaits it (and fails on it); not an unhandled rejection before then
  return { host, printed };
}

/**
 * A copy of the built package without dist/native/mm_holder.node (the service and the host inside it, so that they
 * and the spare's entry load that copy's runtime). Code only: type declarations and source maps (three files in
 * four) are never read at run time, and copying and removing them was most of its test's time.
 */
function copyWithoutAddon(): string {
  const root = mkdtempSync(join(tmpdir(), 'bulkhead-no-holder-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  cpSync(join(REPO_ROOT, 'package.json'), join(root, 'package.json'));
  cpSync(join(REPO_ROOT, 'dist', 'lib'), join(root, 'dist', 'lib'), { recursive: true, filter: (source) => !source.endsWith('.map') && !source.endsWith('.d.ts') });
  cpSync(join(REPO_ROOT, 'dist', 'native'), join(root, 'dist', 'native'), { recursive: true, filter: (source) => !source.endsWith('mm_holder.node') });
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'));
  const fixtures = join(root, 'test', 'fixtures');
  mkdirSync(join(fixtures, 'protocols'), { recursive: true });
  for (const file of ['takeover-service.js', 'protocols/com.test.takeover.json', 'mm-holder/host.js']) cpSync(join(FIXTURES, file), join(fixtures, file));
  return root;
}

// The two tests whose broker is another process start it now, so that it launches its helpers while the tests before
// them run: its holders are its own children, never this process's, so none of the counts of ours below sees them.
const parentDeath = noAddon === false ? startHost(REPO_ROOT) : undefined;
const copy = copyWithoutAddon();
const inCopy = startHost(copy);

async function start(t: Test, sandbox?: string, entry = './takeover-service.js', env?: Record<string, string>): Promise<TestBroker> {
  const kit = await startBroker({
    root: FIXTURES,
    services: [{ name: 'tk', entry, protocol: 'com.test.takeover', ...(sandbox === undefined ? {} : { sandbox }), ...(env === undefined ? {} : { env }), launch: { prewarm: true, throttleMs: 0 } }],
  });
  t.teardown(() => kit.close());
  return kit;
}

/** The warm spare waiting now, or the next one. */
function warmSpare(kit: TestBroker): Promise<number> {
  const pid = kit.broker.status('tk').sparePid;
  return pid === null ? nextSpare(kit, 'tk') : Promise.resolve(pid);
}

/** A helper launched from a spare serves (the first, plain launch SIGKILLed if need be) and the next spare is warm. */
async function servedBySpare(t: Test, kit: TestBroker): Promise<{ helper: number; spare: number }> {
  const conn = kit.broker.connect('tk');
  let helper = (await conn.call('whoami', {})).pid;
  let spare = await warmSpare(kit);
  if (holderOf(helper) === undefined) {
    const exit = kit.nextExit('tk');
    process.kill(helper, 'SIGKILL');
    await exit;
    helper = (await conn.call('whoami', {})).pid;
    t.equal(helper, spare, 'the spare took over');
    spare = await warmSpare(kit);
  }
  return { helper, spare };
}

t.test('an unsandboxed spare has a holder: the broker\'s child, comm bh-mm-holder, node\'s address space', { skip: noAddon }, async (t) => {
  const kit = await start(t);
  const { helper, spare } = await servedBySpare(t, kit);
  for (const [what, node] of [['the serving helper (launched from a spare)', helper], ['the warm spare', spare]] as const) {
    const holder = holderOf(node);
    t.ok(holder !== undefined, `${what} has a holder`);
    if (holder === undefined) continue;
    t.not(holder, node, 'a process of its own');
    t.same({ comm: stat(holder)?.comm, ppid: stat(holder)?.ppid }, { comm: 'bh-mm-holder', ppid: process.pid }, 'named bh-mm-holder, the broker\'s child');
    const status = readFileSync(`/proc/${holder}/status`, 'latin1');
    t.match(status, /^Threads:\s+1$/m, 'one thread');
    t.match(status, /^SigBlk:\s+fffffffffffbfeff$/m, 'every signal blocked (all but SIGKILL and SIGSTOP, which cannot be)');
    t.same(await settledFdCount(holder), 1, 'one fd: its pipe (once its close_range ran)');
  }
  t.equal(ourHolders().length, 2, 'no other holder');
});

t.test('an external SIGKILL: one takeover, one launch, the exit\'s signal, the call in flight interrupted and retried; the holder reaped after the exit', { skip: noAddon }, async (t) => {
  const kit = await start(t);
  const { helper, spare } = await servedBySpare(t, kit);
  const holder = holderOf(helper);
  t.ok(holder !== undefined, 'the helper has a holder');
  const before = kit.status('tk');
  const conn = kit.broker.connect('tk');
  const inFlight = rejection(conn.call('hang', {}));
  const order: string[] = [];
  kit.broker.on('takeover', (service, pid, replaced) => service === 'tk' && order.push(`takeover ${pid} from ${replaced}`));
  kit.broker.on('launch', (service, pid) => service === 'tk' && order.push(`launch ${pid}`));
  kit.broker.on('exit', (service, info) => service === 'tk' && order.push(`exit ${info.signal ?? info.code}`));
  const exit = kit.nextExit('tk');
  process.kill(helper, 'SIGKILL');
  // As the bench's caller: a call right after the kill, retried once on ERR_INTERRUPTED.
  const answered = await conn.call('whoami', {}).catch((err: unknown) => {
    if (!isBulkheadError(err) || err.code !== 'ERR_INTERRUPTED') throw err;
    return conn.call('whoami', {});
  });
  const info = await exit;
  t.equal(answered.pid, spare, 'answered by the spare');
  t.same({ signal: info.signal, code: info.code }, { signal: 'SIGKILL', code: null }, 'the exit is node\'s own: SIGKILL, code null');
  const err: BulkheadError = await inFlight;
  t.same({ code: err.code, signal: err.data?.['signal'] }, { code: 'ERR_INTERRUPTED', signal: 'SIGKILL' }, 'the call in flight failed with its signal');
  t.same(order.filter((e) => e.startsWith('takeover')), [`takeover ${spare} from ${helper}`], 'one takeover');
  t.same(order.filter((e) => e.startsWith('launch')), [`launch ${spare}`], 'one launch');
  t.same(order.filter((e) => e.startsWith('exit')), ['exit SIGKILL'], 'one exit');
  const after = kit.status('tk');
  t.same({ launches: after.launches - before.launches, crashes: after.crashes - before.crashes }, { launches: 1, crashes: 1 }, 'one relaunch and one crash counted');
  if (holder !== undefined) t.ok(await reaped(holder), 'the dead helper\'s holder was reaped (gone from /proc, no zombie)');
  t.ok(holderOf(spare) !== undefined, 'the new helper keeps its own holder');
});

t.test('a holder SIGKILLed alone: its helper keeps serving, and the holder is reaped', { skip: noAddon }, async (t) => {
  const kit = await start(t);
  const { helper } = await servedBySpare(t, kit);
  const holder = holderOf(helper);
  t.ok(holder !== undefined, 'the helper has a holder');
  if (holder === undefined) return;
  const launches = kit.status('tk').launches;
  process.kill(holder, 'SIGKILL');
  t.ok(await reaped(holder), 'reaped (on SIGCHLD)');
  const conn = kit.broker.connect('tk');
  t.equal((await conn.call('whoami', {})).pid, helper, 'the same helper answers');
  t.equal(kit.status('tk').launches, launches, 'nothing relaunched');
  t.ok(alive(helper));
});

t.test('broker.kill(), then broker.close(): no holder left', { skip: noAddon }, async (t) => {
  const kit = await start(t);
  const { helper, spare } = await servedBySpare(t, kit);
  const holder = holderOf(helper);
  t.ok(holder !== undefined && holderOf(spare) !== undefined, 'positive control: helper and spare have holders');
  const exit = kit.nextExit('tk');
  t.equal(kit.broker.kill('tk', 'SIGKILL'), helper);
  await exit;
  if (holder !== undefined) t.ok(await reaped(holder), 'the killed helper\'s holder was reaped after its exit');
  await kit.broker.connect('tk').call('whoami', {});
  t.ok(ourHolders().length > 0, 'positive control: the helpers now running have holders');
  await kit.close();
  t.same(ourHolders(), [], 'none left once close() resolved (not even a zombie)');
});

t.test('a holder slow to die (frozen) after its helper\'s kill: close() resolves only once it is reaped, nothing reported', { skip: noAddon || noFreezer() }, async (t) => {
  const kit = await start(t);
  const { helper } = await servedBySpare(t, kit);
  const holder = holderOf(helper);
  t.ok(holder !== undefined, 'the helper has a holder');
  if (holder === undefined) return;
  const reported: string[] = [];
  kit.broker.on('cleanupFailed', (_service, _pid, message) => reported.push(message));
  const thaw = await freeze(t, holder);
  const exit = kit.nextExit('tk');
  kit.broker.kill('tk', 'SIGKILL');
  await exit;
  // broker.kill() signals the helper's process group, which the holder is in: it has SIGKILL pending, frozen.
  t.ok(sigkillPending(holder), 'positive control: the holder was SIGKILLed too, and lives on, frozen');
  const order: string[] = [];
  const closed = kit.close().then(() => order.push('closed'));
  // Its death is held off 4 s past the exit: longer than the old reaper waited in all (2.6 s) before it gave up.
  await new Promise((resolve) => setTimeout(resolve, 4000));
  t.same(order, [], 'close() has not resolved while the holder lives');
  order.push('thawed');
  thaw();
  await closed;
  t.same(order, ['thawed', 'closed'], 'close() resolved after the thaw');
  t.same(ourHolders(), [], 'none left once close() resolved (not even a zombie)');
  t.same(reported, [], 'a holder that died late is no failure: nothing reported');
});

t.test('the broker SIGKILLed: its helper, its spare and their holders end (parent-death)', { skip: noAddon }, async (t) => {
  const { host, printed } = parentDeath!;
  const { helper, spare, holders } = await printed;
  t.equal(holders.length, 2, 'positive control: two holders (the helper\'s and the spare\'s)');
  for (const pid of [helper, spare, ...holders]) t.ok(alive(pid), `positive control: ${pid} runs`);
  const hostExit = new Promise((resolve) => host.once('exit', resolve));
  host.kill('SIGKILL');
  await hostExit;
  // Orphans are reaped by pid 1 (here only every second or two): gone, or a zombie, is ended.
  const ended = async (pid: number): Promise<boolean> => {
    const deadline = performance.now() + 30_000;
    for (;;) {
      const s = stat(pid);
      if (s === undefined || s.state === 'Z' || s.state === 'X') return true;
      if (performance.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  for (const pid of [helper, spare, ...holders]) t.ok(await ended(pid), `${pid} ended with the broker`);
});

t.test('a build without the addon: no holder, and the relaunch after a crash takes over as before', async (t) => {
  t.notOk(existsSync(join(copy, 'dist', 'native', 'mm_holder.node')), 'the copy has no addon');
  t.teardown(() => {
    inCopy.host.kill('SIGKILL');
  });
  const { helper, spare, holders } = await inCopy.printed;
  t.same(holders, [], 'no holder');
  t.ok(helper > 0 && spare > 0 && helper !== spare, 'a helper launched from a spare after a SIGKILL serves, and the next spare is warm');
});

t.test('a sandboxed spare (pure-compute) has no holder and relaunches as before', async (t) => {
  const kit = await start(t, 'pure-compute');
  const conn = kit.broker.connect('tk');
  await conn.call('whoami', {});
  const spare = await warmSpare(kit);
  t.same(ourHolders(), [], 'no holder');
  // whoami answers a pid of the sandbox's own namespace: the broker kills its helper.
  const exit = kit.nextExit('tk');
  kit.broker.kill('tk', 'SIGKILL');
  await conn.call('whoami', {}).catch(() => conn.call('whoami', {}));
  t.equal((await exit).signal, 'SIGKILL');
  t.equal(kit.status('tk').pid, spare, 'the spare serves');
  t.same(ourHolders(), [], 'still none');
});

for (const lie of ['self', 'parent'] as const) {
  t.test(`a warm frame naming ${lie === 'self' ? 'the spare itself (renamed bh-mm-holder)' : 'the broker'} as its holder is refused; the spare's exit is still seen`, async (t) => {
    const kit = await start(t, undefined, './mm-holder/liar-service.js', { LIAR_HOLDER: lie });
    const refused: Array<{ pid: number; reason: string }> = [];
    const threeRefused = new Promise<void>((resolve) => {
      kit.broker.on('spareRefused', (service, pid, reason) => {
        if (service !== 'tk') return;
        refused.push({ pid, reason });
        if (refused.length === 3) resolve();
      });
    });
    // Each refused spare is killed; only its exit (seen by libuv, not reaped by the broker) starts the next one.
    await threeRefused;
    t.equal(new Set(refused.map((r) => r.pid)).size, 3, 'three spares, one after the other\'s exit');
    for (const { pid, reason } of refused) {
      t.match(reason, lie === 'self' ? /is a helper's/ : /is not one|does not share|not the broker's child/, 'refused for naming a pid that is no holder');
      t.ok(await reaped(pid), `spare ${pid} was reaped`);
    }
    t.ok(alive(process.pid));
    const conn = kit.broker.connect('tk');
    t.ok((await conn.call('whoami', {})).pid > 0, 'the service still launches (plainly)');
    t.same(ourHolders(), [], 'no holder anywhere');
  });
}
