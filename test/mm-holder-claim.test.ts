// What the broker accepts as a spare's mm holder (lib/broker/warm-frame.ts → lib/broker/mm-holder-reaper.ts), over an
// in-memory socket, without a broker: only a pid it asked that spare for, that is the broker's child named
// bh-mm-holder and shares the spare's address space; and the reaper's wait ends with that process gone from /proc.
// The positive control is a real holder: a node child of this test loads the addon, and the holder (CLONE_PARENT)
// is this test's child, as a spare's holder is the broker's. A holder slow to die is a real one frozen
// (test/freezer.ts: it does not act on SIGKILL until thawed).
import t from 'tap';
import type { Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { awaitWarmSpare } from '../lib/broker/warm-frame.js';
import { expectMmHolder, mmHolderAddon, mmHolderReaped } from '../lib/broker/mm-holder-reaper.js';
import { encodeItem } from '../lib/wire/codec.js';
import { REPO_ROOT, firstStdoutLine, polledUntil } from './helpers.js';
import { freeze, noFreezer, sigkillPending } from './freezer.js';

const ADDON = join(REPO_ROOT, 'dist', 'native', 'mm_holder.node');
const skip = (!existsSync(ADDON) && 'the mm-holder addon is not built') || (mmHolderAddon() === undefined && 'this host cannot check and reap a holder (pidfd, waitid P_PIDFD, kcmp)');

/** A frame as a spare writes it: 4-byte big-endian length, then the CBOR body. */
function frame(value: unknown): Buffer {
  const body = encodeItem(value);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

/** Feeds `value` as the spare's first frame on a fresh socket; resolves with the refusal's message, or null when accepted. */
async function warm(value: unknown, expectFor?: number): Promise<{ socket: PassThrough; refused: string | null }> {
  const socket = new PassThrough();
  if (expectFor !== undefined) expectMmHolder(socket, expectFor);
  const outcome = awaitWarmSpare(socket, () => undefined, Promise.resolve()).then(() => null, (err: unknown) => (err as Error).message);
  socket.write(frame(value));
  return { socket, refused: await outcome };
}

/** A node child of this test that started an mm holder: its pid and the holder's. */
async function nodeWithHolder(): Promise<{ child: ChildProcess; node: number; holder: number }> {
  const child = spawn(process.execPath, ['-e', `const m = { exports: {} }; process.dlopen(m, ${JSON.stringify(ADDON)}); process.stdout.write(String(m.exports.start(20)) + '\\n'); setInterval(() => {}, 1 << 30);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  const holder = Number(await firstStdoutLine(child));
  return { child, node: child.pid!, holder };
}

const inProc = (pid: number): boolean => existsSync(`/proc/${pid}`);

const skipFrozen = skip || noFreezer();

t.test('a plain warm frame is accepted as before; one that names a holder the broker did not ask for is refused', async (t) => {
  t.equal((await warm({ t: 'warm' })).refused, null);
  t.match((await warm({ t: 'warm', holder: process.pid })).refused, /did not ask for/);
  const { refused } = await warm({ t: 'warm', holder: 'x'.repeat(80) }, 1234);
  t.match(refused, /something other than its warm frame/, 'the 64-byte limit still holds');
});

t.test('a real holder is accepted, reaped once its node is gone, and gone from /proc then', { skip }, async (t) => {
  const { child, node, holder } = await nodeWithHolder();
  t.ok(holder > 0 && inProc(holder), 'positive control: the holder runs');
  t.match(readFileSync(`/proc/${holder}/stat`, 'latin1'), new RegExp(`^${holder} \\(bh-mm-holder\\) \\S+ ${process.pid} `), 'named bh-mm-holder, this process\'s child');
  const { socket, refused } = await warm({ t: 'warm', holder }, node);
  t.equal(refused, null, 'accepted');
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  await mmHolderReaped(socket);
  t.notOk(inProc(holder), 'reaped: not even a zombie is left');
  t.equal(await mmHolderReaped(socket), undefined, 'a second wait ends at once');
});

/** A warm spare's holder, accepted, then frozen (SIGKILL waits for the thaw), and its node SIGKILLed and exited. */
async function frozenHolderOfDeadNode(t: Test): Promise<{ socket: Awaited<ReturnType<typeof warm>>['socket']; holder: number; thaw: () => void }> {
  const { child, node, holder } = await nodeWithHolder();
  const { socket, refused } = await warm({ t: 'warm', holder }, node);
  t.equal(refused, null, 'accepted');
  const thaw = await freeze(t, holder);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  return { socket, holder, thaw };
}

t.test('a holder slow to die (frozen): SIGKILLed after its grace, and the wait ends only with its real reap', { skip: skipFrozen }, async (t) => {
  const { socket, holder, thaw } = await frozenHolderOfDeadNode(t);
  const order: string[] = [];
  const reaped = mmHolderReaped(socket).then((why) => {
    order.push('resolved');
    return why;
  });
  // The bound below is a hang guard (the grace is 1.6 s), not a speed claim.
  t.ok(await polledUntil(() => sigkillPending(holder), 30_000, 10), 'the reaper sent SIGKILL (pending: the holder is frozen)');
  // The holder's death is held off 2 s past that SIGKILL: longer than the old reaper's 10 tries 100 ms apart.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  t.ok(inProc(holder), 'positive control: still there, frozen');
  t.same(order, [], 'the wait has not ended while the holder lives');
  order.push('thawed');
  thaw();
  t.equal(await reaped, undefined, 'resolved as reaped, not given up');
  t.same(order, ['thawed', 'resolved'], 'only after the thaw');
  t.notOk(inProc(holder), 'reaped: not even a zombie is left');
});

t.test('a holder that does not die within the bound: reported, the wait ends, and it is still reaped when it dies', { skip: skipFrozen }, async (t) => {
  const { socket, holder, thaw } = await frozenHolderOfDeadNode(t);
  const why = await mmHolderReaped(socket, { graceMs: 0, killedWaitMs: 300 });
  t.equal(why, `its mm holder (pid ${holder}) did not die within 300 ms of SIGKILL; it is reaped when it does`, 'reported, not hidden');
  t.ok(inProc(holder) && sigkillPending(holder), 'the holder lives on, SIGKILLed and frozen');
  thaw();
  // Its SIGCHLD reaps it (this process is its parent; libuv never waits for it): polled, bounded, as nothing tells the test.
  t.ok(await polledUntil(() => !inProc(holder), 30_000, 10), 'reaped once it died: not even a zombie is left');
});

t.test('pids that are no holder of that spare are refused', { skip }, async (t) => {
  const a = await nodeWithHolder();
  const b = await nodeWithHolder();
  t.match((await warm({ t: 'warm', holder: a.holder }, b.node)).refused, /does not share the spare's memory/, 'another node\'s holder');
  t.match((await warm({ t: 'warm', holder: a.node }, a.node)).refused, /is a helper's/, 'the spare itself');
  t.match((await warm({ t: 'warm', holder: b.node }, a.node)).refused, /is not one \(comm "[^"]*", parent \d+\)/, 'another child of this process that is no holder');
  t.match((await warm({ t: 'warm', holder: process.pid }, a.node)).refused, /is not one/, 'the broker itself');
  const thread = readdirSync(`/proc/${a.node}/task`).map(Number).find((tid) => tid !== a.node);
  if (thread !== undefined) t.match((await warm({ t: 'warm', holder: thread }, a.node)).refused, /is no process/, 'a thread of the spare (same address space, no pidfd)');
  t.match((await warm({ t: 'warm', holder: 1 }, a.node)).refused, /not a pid/, 'pid 1');
  t.match((await warm({ t: 'warm', holder: -5 }, a.node)).refused, /not a pid/);
  t.match((await warm({ t: 'warm', holder: 2 ** 31 }, a.node)).refused, /is no process/);
  // Positive control: the right pair is accepted (and the claim is then reaped with its node).
  const right = await warm({ t: 'warm', holder: a.holder }, a.node);
  t.equal(right.refused, null, 'the same holder, named by its own spare');
  t.match((await warm({ t: 'warm', holder: a.holder }, a.node)).refused, /another spare's/, 'a holder claimed twice');
  a.child.kill('SIGKILL');
  await mmHolderReaped(right.socket);
  t.notOk(inProc(a.holder), 'reaped');
  t.ok(inProc(b.holder), 'the holder never claimed is left alone');
});
