// A sandboxed prewarmed helper's node held by a pidfd (lib/broker/node-pidfd.ts): at its channel's close the broker
// reads node's end from the pidfd once another process (bubblewrap's init) reaped it, where /proc shows nothing
// until the wrappers relayed it. Real processes: a shell stands for the wrapper that reaps node and lives on (the
// window exit-at-close.ts could not read, made to last), then a real pure-compute helper under the broker.
// Controls: the same chain read without the pidfd shows nothing final; a live node is never read as ended; an
// unsandboxed helper (node is the broker's own child) holds none. In the broker test an orphan put into the sandbox's
// pid namespace keeps bubblewrap's init alive after it reaped node and the outer bubblewrap is stopped, so a /proc
// read at the close cannot see the end and the exit cannot come first.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { BulkheadError } from 'bulkhead';
import { startBroker, type TestBroker } from 'bulkhead/testing';
import { helperNode, makeDeathCertain } from '../lib/broker/certain-death.js';
import { childrenOf, endAtClose, RELAYING, type HeldNode } from '../lib/broker/exit-at-close.js';
import { loadFfi } from '../lib/sandbox/ffi.js';
import { FIXTURES, nextSpare, rejection } from './helpers.js';

const ffi = loadFfi();
const libc = ffi.ok ? ffi.libc : undefined;

/** This process's pidfds, by the pid each names (from /proc/self/fdinfo: `Pid:` lines). */
function heldPids(): number[] {
  const pids: number[] = [];
  for (const fd of readdirSync('/proc/self/fdinfo')) {
    let info: string;
    try {
      info = readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1');
    } catch {
      continue; // closed meanwhile (readdir's own fd)
    }
    const pid = /^Pid:\s+(-?\d+)$/m.exec(info);
    if (pid !== null) pids.push(Number(pid[1]));
  }
  return pids;
}

/**
 * A shell (the wrapper) runs node with a socket on fd 3 (its own copy closed, so node's end is the EOF), reaps it when it ends, says so on stdout, then lives on
 * with a child that is not node: the chain a sandbox's init leaves between node's reap and its own exit.
 */
async function wrapperChain(t: Test, script: string): Promise<{ shell: number; node: number; ended: Promise<void>; reaped: Promise<void> }> {
  const shell = spawn('/bin/sh', ['-c', '"$0" -e "$1" & exec 3>&-; wait; echo reaped; sleep 1000; :', process.execPath, script], { stdio: ['ignore', 'pipe', 'ignore', 'pipe'] });
  t.teardown(() => {
    for (const child of childrenOf(shell.pid!)) process.kill(child, 'SIGKILL');
    shell.kill('SIGKILL');
  });
  const channel = shell.stdio[3] as Socket;
  await new Promise((resolve) => channel.once('data', resolve));
  const ended = new Promise<void>((resolve) => channel.on('end', resolve).resume());
  const reaped = new Promise<void>((resolve) => shell.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('reaped') && resolve()));
  const [node] = childrenOf(shell.pid!);
  return { shell: shell.pid!, node: node!, ended, reaped };
}

/** What endAtClose gives when no end shows: undefined, or RELAYING (the shell forked its `sleep` already or not yet). */
const nothingFinal = (end: unknown): boolean => end === undefined || end === RELAYING;

/** A pidfd on `pid` as node-pidfd.ts holds one. */
function hold(t: Test, pid: number): HeldNode {
  const pidfd = libc!.pidfdOpen(pid);
  t.ok(pidfd >= 0, `a pidfd opens on node (${pid})`);
  return { pid, reapedStatus: () => libc!.pidfdExitStatus(pidfd) };
}

/** True when this kernel gives a reaped process's exit status to a pidfd holder (PIDFD_INFO_EXIT, Linux 6.15). */
async function kernelHasExitInfo(): Promise<boolean> {
  if (libc === undefined) return false;
  const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
  const pidfd = libc.pidfdOpen(child.pid!);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited; // libuv reaped it
  return pidfd >= 0 && libc.pidfdExitStatus(pidfd) === 9;
}

const exitInfo = await kernelHasExitInfo();
const skip = exitInfo ? false : 'this kernel gives no exit status through a pidfd (PIDFD_INFO_EXIT, Linux 6.15), or koffi is missing';

t.test('node reaped by its wrapper, the wrapper alive: the end is read from the pidfd, and only from it', { skip }, async (t) => {
  const chain = await wrapperChain(t, "require('node:fs').writeSync(3, 'up'); setInterval(() => {}, 1000)");
  const node = hold(t, chain.node);
  t.equal(node.reapedStatus(), null, 'running: no exit status');
  t.equal(endAtClose(chain.shell, process.execPath, node), undefined, 'a live node is never read as ended');
  process.kill(chain.node, 'SIGKILL');
  await chain.ended;
  await chain.reaped;
  t.ok(nothingFinal(endAtClose(chain.shell, process.execPath)), 'control, without the pidfd: node is gone from /proc and nothing shows its end');
  t.equal(node.reapedStatus(), 9, 'the pidfd: killed by SIGKILL, reaped by the shell');
  t.same(endAtClose(chain.shell, process.execPath, node), { code: 137, signal: null }, 'read as a wrapper relays it (128 + 9), as the exit will report it');
});

t.test('an exit code of its own, and 0 (a real exit code through the pidfd, not a reader\'s lack of access)', { skip }, async (t) => {
  for (const code of [3, 0]) {
    const chain = await wrapperChain(t, `require('node:fs').writeSync(3, 'up'); setTimeout(() => process.exit(${code}), 50)`);
    const node = hold(t, chain.node);
    await chain.ended;
    await chain.reaped;
    t.ok(nothingFinal(endAtClose(chain.shell, process.execPath)), `exit ${code}, control: nothing in /proc`);
    t.same(endAtClose(chain.shell, process.execPath, node), { code, signal: null }, `exit ${code} read from the pidfd`);
  }
});

t.test('makeDeathCertain with a held node: an ended node is judged dying from the pidfd alone; a live one is walked and killed', { skip }, async (t) => {
  const alive = (pid: number): boolean => {
    try {
      return !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
    } catch {
      return false;
    }
  };
  const script = "require('node:fs').writeSync(3, 'up'); setInterval(() => {}, 1000)";
  // A node that crashed and was reaped by its wrapper, held by a pidfd.
  const dead = await wrapperChain(t, script);
  const held = hold(t, dead.node);
  process.kill(dead.node, 'SIGKILL');
  await dead.ended;
  await dead.reaped;
  // A live node under another wrapper: what a walk from that wrapper finds and kills.
  const live = await wrapperChain(t, script);
  let groupKills = 0;
  t.equal(makeDeathCertain(live.shell, process.execPath, () => groupKills++, held), 'dying', 'the held node ended: dying, from the pidfd');
  t.ok(alive(live.node) && groupKills === 0, 'no walk: the live node under the wrapper passed was not signalled');
  // A held node that is alive: the walk runs as without a pidfd, finds it and kills it.
  const heldLive = hold(t, live.node);
  t.equal(makeDeathCertain(live.shell, process.execPath, () => groupKills++, heldLive), 'killed', 'a held live node: walked and killed');
  t.equal(groupKills, 1, 'and its group signalled');
  // Reaped, not just its channel ended: at the channel's EOF a killed node may still be in do_exit (neither Z nor gone).
  await live.ended;
  await live.reaped;
  t.notOk(alive(live.node), 'it is dead');
  // Control: without the pidfd, the same ended node's wrapper is walked (it holds no node any more: dying too).
  const other = await wrapperChain(t, script);
  t.equal(makeDeathCertain(other.shell, process.execPath, () => groupKills++), 'killed', 'control: without a held node the walk finds the live node and kills it');
  await other.ended;
});

async function start(t: Test, sandbox: 'none' | 'pure-compute'): Promise<TestBroker> {
  const kit = await startBroker({
    root: FIXTURES,
    services: [{ name: 'tk', entry: './takeover-service.js', protocol: 'com.test.takeover', ...(sandbox === 'none' ? {} : { sandbox }), launch: { prewarm: true, throttleMs: 0, maxRestarts: 100 } }],
  });
  t.teardown(() => kit.close());
  return kit;
}

/**
 * Starts a `sleep` in the pid namespace of the sandbox spawned as `spawned` (nsenter into its init's namespace, a shell
 * that backgrounds it and exits): orphaned there, it becomes a child of bubblewrap's init. Resolves with its pid here.
 */
async function orphanIn(t: Test, spawned: number, node: number): Promise<number> {
  const [init] = childrenOf(spawned);
  const enter = spawn('nsenter', ['-t', String(init), '-p', '--', '/bin/sh', '-c', 'sleep 1000 >/dev/null 2>&1 &'], { stdio: 'ignore' });
  await new Promise((resolve) => enter.once('exit', resolve));
  const orphan = childrenOf(init!).find((pid) => pid !== node);
  if (orphan === undefined) throw new Error(`no orphan under the sandbox's init ${init}`);
  t.teardown(() => {
    try {
      process.kill(orphan, 'SIGKILL');
    } catch {
      // gone already
    }
  });
  return orphan;
}

const details = (err: BulkheadError): unknown => ({ code: err.code, exitCode: err.data?.['exitCode'], signal: err.data?.['signal'] });

t.test('pure-compute: the broker holds a pidfd on node; every crash fails the calls in flight at the close; the pidfd goes with the exit', { skip }, async (t) => {
  const kit = await start(t, 'pure-compute');
  const conn = kit.broker.connect('tk');
  await conn.call('whoami', {});
  // Four crashes: the first helper was launched plainly (held from its hello), the next ones are former spares (held once warm).
  for (let n = 1; n <= 4; n++) {
    const old = kit.status('tk').pid!;
    const spare = kit.broker.status('tk').sparePid ?? await nextSpare(kit, 'tk');
    const node = helperNode(old, process.execPath)!;
    t.not(node, old, `crash ${n}: node (${node}) runs below the sandbox's wrappers (${old})`);
    t.ok(heldPids().includes(node), `crash ${n}: the broker holds a pidfd on that node`);
    const order: string[] = [];
    const subs = [
      kit.broker.on('takeover', (service) => service === 'tk' && order.push('takeover')),
      kit.broker.on('exit', (service) => service === 'tk' && order.push('exit')),
    ];
    const exit = kit.nextExit('tk');
    const call = rejection(conn.call('hang', {})).then((err) => {
      order.push('rejected');
      return err;
    });
    await conn.call('whoami', {}); // the hanging call reached node before the kill
    // An orphan in the sandbox's pid namespace keeps bubblewrap's init waiting after it reaped node, and the outer
    // bubblewrap is stopped so that it cannot read the init's relay and exit: the window in which nothing in /proc
    // shows node's end (a /proc read at the close gives RELAYING), and in which the exit cannot be seen first, lasts
    // until both are released, once the call failed. If it never fails, the bound releases them and the order says so.
    const orphan = await orphanIn(t, old, node);
    process.kill(old, 'SIGSTOP');
    let held = true;
    const release = (): void => {
      clearTimeout(bound);
      if (!held) return;
      held = false;
      for (const [pid, signal] of [[old, 'SIGCONT'], [orphan, 'SIGKILL']] as const) {
        try {
          process.kill(pid, signal);
        } catch {
          // gone already (the broker may have killed the tree: a stopped outer bubblewrap looks alive)
        }
      }
    };
    const bound = setTimeout(release, 5000);
    t.teardown(release);
    process.kill(node, 'SIGKILL');
    const err = await call;
    release();
    await exit;
    for (const sub of subs) sub.dispose();
    t.same(details(err), { code: 'ERR_INTERRUPTED', exitCode: null, signal: 'SIGKILL' }, `crash ${n}: the signal its exit reports`);
    t.same(order, ['takeover', 'rejected', 'exit'], `crash ${n}: the call failed at the close, before the exit`);
    t.same({ code: kit.status('tk').lastExit?.code, signal: kit.status('tk').lastExit?.signal }, { code: null, signal: 'SIGKILL' }, `crash ${n}: the exit says the same`);
    t.notOk(heldPids().includes(node), `crash ${n}: the pidfd was closed with the exit`);
    t.equal(kit.status('tk').pid, spare, `crash ${n}: the spare serves`);
    t.ok(((await conn.call('whoami', {})) as { pid: number }).pid > 0, `crash ${n}: and answers`);
  }
});

t.test('control: an unsandboxed helper\'s node is the broker\'s own child; no pidfd is held on it', async (t) => {
  const kit = await start(t, 'none');
  const conn = kit.broker.connect('tk');
  await conn.call('whoami', {});
  const pid = kit.status('tk').pid!;
  t.equal(helperNode(pid, process.execPath), pid, 'node is the spawned child');
  t.notOk(heldPids().includes(pid), 'no pidfd on it');
});
