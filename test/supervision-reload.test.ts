// Issue 14, item 7: a failed reload changes nothing. A reload starts the new helper of
// every changed service beside the old one and switches all of them only once every new
// one is ready; when one does not start (its entry throws at import), the others are
// killed and every service keeps its pid, its manifest and its old code, under load,
// without losing a call. The success case stays a zero-downtime restart of all of them.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isBulkheadError, type ServiceManifest } from 'bulkhead';
import { startBroker, type TestBroker } from 'bulkhead/testing';
import { alive, FIXTURES, recordUncaught } from './helpers.js';
import { steadyLoad as load } from './steady-load.js';

const uncaught = recordUncaught();

const OLD = './supervision/spin-service.js';
const NEW = './supervision/spin-service-v2.js';
const THROWS = './supervision/throws-at-start.js';
const NAMES = ['a', 'b', 'c'];

const manifest = (name: string, extra: Partial<ServiceManifest> = {}): ServiceManifest => ({
  name, entry: OLD, protocol: 'com.test.supervision', launch: { throttleMs: 0, exitTimeoutMs: 2000 }, ...extra,
});

/** Callers per service busy with echo calls (old code echoes the text as is, the new one prefixes "v2:"). */
const steadyLoad = (kit: TestBroker, names: string[], perService = 3) => load(kit, names, perService);

/** Pids of the processes whose command line names `file` (read from /proc). */
function processesRunning(file: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(file)) pids.push(Number(entry));
    } catch {
      // It exited while we looked.
    }
  }
  return pids;
}

/** Collects, every few ms until stopped, the pids of processes running `file`. */
function watchProcesses(file: string): { seen: Set<number>; stop(): void } {
  const seen = new Set<number>();
  const timer = setInterval(() => {
    for (const pid of processesRunning(file)) seen.add(pid);
  }, 5);
  return { seen, stop: () => clearInterval(timer) };
}

for (const failing of ['b', 'c']) {
  t.test(`a reload of 3 changed services whose ${failing === 'b' ? '2nd' : '3rd'} new entry throws at import rolls back: pids, manifests, services and code unchanged, zero calls lost`, async (t) => {
    const kit = await startBroker({ root: FIXTURES, services: [...NAMES.map((n) => manifest(n)), manifest('gone')] });
    t.teardown(() => kit.close());
    for (const name of [...NAMES, 'gone']) await kit.broker.kickstart(name);
    const pids = NAMES.map((n) => kit.broker.status(n).pid);
    const load = steadyLoad(kit, NAMES);
    await load.after(150);
    // The new code's helpers, as /proc shows them while the reload runs (a staged helper has no broker event).
    const newHelpers = watchProcesses(join(FIXTURES, NEW.slice(2)));
    const logged: string[] = [];
    kit.broker.on('log', (line) => {
      if (line.line.includes('Reload rolled back')) logged.push(`${line.service}: ${line.line}`);
    });
    // Every kind of change at once: three restarts, one service removed, one added.
    const next = NAMES.map((n) => manifest(n, { entry: n === failing ? THROWS : NEW }));
    const err = await kit.broker.reload({ services: [...next, manifest('added')] }).then(() => undefined, (e: unknown) => e);
    newHelpers.stop();
    const during = load.stats.ok;
    await load.after(150);
    await load.stop();

    t.ok(isBulkheadError(err) && err.code === 'ERR_RELOAD_FAILED', `refused with ERR_RELOAD_FAILED (${isBulkheadError(err) ? err.code : String(err)})`);
    if (!isBulkheadError(err, 'ERR_RELOAD_FAILED')) return;
    t.equal(err.data.service, failing, 'the error names the service whose new helper failed');
    t.same(err.data.failed, [failing]);
    t.equal(err.data.cause, 'ERR_LAUNCH_FAILED', 'and the code its start failed with');
    t.match(err.data.thrown, 'API_KEY is not set', 'and the line it threw');
    t.match(err.message, `${failing}'s new helper did not start`);
    t.match(logged, [new RegExp(`^${failing}: bulkhead: Reload rolled back`)], 'the failure is logged for that service');

    t.same(NAMES.map((n) => kit.broker.status(n).pid), pids, 'every pid unchanged');
    t.same(NAMES.map((n) => kit.broker.manifest(n).entry), [OLD, OLD, OLD], 'every manifest unchanged');
    t.same(NAMES.map((n) => kit.broker.status(n).state), ['running', 'running', 'running']);
    t.same(kit.broker.serviceNames().sort(), [...NAMES, 'gone'].sort(), 'nothing added, nothing removed');
    t.equal(kit.broker.status('gone').state, 'running', 'the service the new config dropped still runs');
    for (const name of NAMES) {
      const answer = await kit.broker.connect(name).call('echo', { text: 'after' }) as { pid: number; text: string };
      t.same(answer, { text: 'after', pid: kit.broker.status(name).pid }, `${name}: the old helper answers, with the old code`);
    }
    // The new helpers that did start were killed, not left running beside the old ones.
    t.ok(newHelpers.seen.size > 0, `positive control: the other new helpers were started (pids ${[...newHelpers.seen].join(', ')})`);
    for (const pid of newHelpers.seen) t.notOk(alive(pid), `new helper ${pid} is gone`);
    t.same(processesRunning(join(FIXTURES, NEW.slice(2))), [], 'no process runs the new code');
    t.equal(load.stats.failed, 0, `zero calls lost (${load.stats.ok} succeeded, ${during} before the reload settled) ${load.stats.errors.join('; ')}`);
    t.same([...load.stats.texts].sort(), NAMES, 'every call of the load was answered by the old code');
    t.same([...load.stats.pids].sort(), [...pids].sort(), 'by the old helpers only');
    t.same(NAMES.map((n) => kit.broker.status(n).crashes), [0, 0, 0], 'no crash counted against any service');
    t.comment(`failed reload under load (${failing} fails): ${load.stats.ok} calls ok, ${load.stats.failed} lost`);
  });
}

t.test('a reload of 3 changed services under load: all switch to their new code, zero calls lost', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: NAMES.map((n) => manifest(n)) });
  t.teardown(() => kit.close());
  for (const name of NAMES) await kit.broker.kickstart(name);
  const before = NAMES.map((n) => kit.broker.status(n).pid!);
  const load = steadyLoad(kit, NAMES);
  await load.after(150);
  const oldExits = NAMES.map((n) => kit.nextExit(n));
  const result = await kit.broker.reload({ services: NAMES.map((n) => manifest(n, { entry: NEW })) });
  t.same(result, { added: [], removed: [], replaced: NAMES, editedProfiles: [], relaunched: NAMES });
  await load.after(150);
  await load.stop();
  const after = NAMES.map((n) => kit.broker.status(n).pid!);
  for (let i = 0; i < NAMES.length; i++) t.not(after[i], before[i], `${NAMES[i]!} runs a new helper`);
  t.same(NAMES.map((n) => kit.broker.manifest(n).entry), [NEW, NEW, NEW], 'with its new manifest');
  for (const name of NAMES) {
    const answer = await kit.broker.connect(name).call('echo', { text: 'x' }) as { text: string };
    t.equal(answer.text, 'v2:x', `${name} answers with the new code`);
  }
  t.equal(load.stats.failed, 0, `zero calls lost (${load.stats.ok} succeeded) ${load.stats.errors.join('; ')}`);
  t.ok(load.stats.texts.has('a') && load.stats.texts.has('v2:a'), 'the load was served by the old code, then the new');
  const exits = await Promise.all(oldExits);
  t.same(exits.map((e) => e.reason), ['reloaded', 'reloaded', 'reloaded'], 'each old helper stopped as requested');
  t.comment(`successful reload of 3 services under load: ${load.stats.ok} calls ok, ${load.stats.failed} lost`);
});

t.test('a new helper killed before it was ready rolls the reload back too', async (t) => {
  const SLOW = './supervision/slow-start.js';
  const kit = await startBroker({ root: FIXTURES, services: [manifest('a'), manifest('b')] });
  t.teardown(() => kit.close());
  await kit.broker.kickstart('a');
  await kit.broker.kickstart('b');
  const pids = [kit.broker.status('a').pid, kit.broker.status('b').pid];
  const reload = kit.broker.reload({ services: [manifest('a', { entry: NEW }), manifest('b', { entry: SLOW })] }).then(() => undefined, (e: unknown) => e);
  // What an OOM kill or an operator does to the new helper while the broker waits for its hello.
  let victims: number[] = [];
  while (victims.length === 0) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    victims = processesRunning(join(FIXTURES, SLOW.slice(2)));
  }
  for (const pid of victims) process.kill(pid, 'SIGKILL');
  const err = await reload;
  t.ok(isBulkheadError(err, 'ERR_RELOAD_FAILED') && err.data.service === 'b' && err.data.cause === 'ERR_LAUNCH_FAILED', `ERR_RELOAD_FAILED naming b, cause ERR_LAUNCH_FAILED (${isBulkheadError(err) ? `${err.code} ${String(err.data.service)} ${String(err.data['cause'])}: ${err.message}` : String(err)})`);
  t.same([kit.broker.status('a').pid, kit.broker.status('b').pid], pids, 'pids unchanged');
  t.same([kit.broker.manifest('a').entry, kit.broker.manifest('b').entry], [OLD, OLD], 'manifests unchanged');
  t.same(await kit.broker.connect('a').call('echo', { text: 'old' }), { text: 'old', pid: pids[0] }, 'a still runs its old code');
});

t.test('a helper relaunched with the old code while the new one was starting is replaced as well', async (t) => {
  const launch = { throttleMs: 0, exitTimeoutMs: 2000, keepAlive: true };
  const kit = await startBroker({ root: FIXTURES, services: [manifest('a', { launch })] });
  t.teardown(() => kit.close());
  await kit.waitFor('a', 'running');
  const reload = kit.broker.reload({ services: [manifest('a', { entry: NEW, env: { SERVE_AFTER_MS: '1500' }, launch })] });
  // While the new helper starts, the old one crashes and keepAlive relaunches the old code.
  while (processesRunning(join(FIXTURES, NEW.slice(2))).length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  const relaunched = new Promise<number>((resolve) => kit.broker.on('launch', (service, pid) => service === 'a' && resolve(pid)));
  await kit.crash('a');
  const oldCode = await relaunched;
  t.same(await reload, { added: [], removed: [], replaced: ['a'], editedProfiles: [], relaunched: ['a'] });
  t.equal(kit.broker.manifest('a').entry, NEW, 'the new manifest is recorded');
  const oldCodeExit = kit.nextExit('a', 20_000);
  const conn = kit.broker.connect('a');
  let answer = await conn.call('echo', { text: 'x' }) as { text: string; pid: number };
  const giveUpAt = performance.now() + 20_000;
  while (answer.text !== 'v2:x' && performance.now() < giveUpAt) answer = await conn.call('echo', { text: 'x' }) as { text: string; pid: number };
  t.equal(answer.text, 'v2:x', 'the new code answers');
  t.not(answer.pid, oldCode, 'the service was switched to the new code');
  t.equal((await oldCodeExit).reason, 'reloaded', 'and the relaunched old helper stopped on request');
});

t.test('a service whose protocol changed is re-registered only once its new helper started: a throwing one rolls back and its connections live on', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [manifest('a'), manifest('b')] });
  t.teardown(() => kit.close());
  await kit.broker.kickstart('a');
  await kit.broker.kickstart('b');
  const pids = [kit.broker.status('a').pid, kit.broker.status('b').pid];
  const conn = kit.broker.connect('b');
  const err = await kit.broker.reload({ services: [manifest('a', { entry: NEW }), manifest('b', { protocol: 'com.test.echo', entry: THROWS })] }).then(() => undefined, (e: unknown) => e);
  t.ok(isBulkheadError(err, 'ERR_RELOAD_FAILED') && err.data.service === 'b', `ERR_RELOAD_FAILED naming b (${isBulkheadError(err) ? `${err.code} ${String(err.data.service)}` : String(err)})`);
  t.same([kit.broker.status('a').pid, kit.broker.status('b').pid], pids, 'pids unchanged');
  t.equal(kit.broker.manifest('b').protocol, 'com.test.supervision', 'b keeps its protocol');
  t.same(await conn.call('echo', { text: 'still' }), { text: 'still', pid: pids[1] }, 'b\'s connection was not invalidated: it still reaches the old helper');
  t.same(await kit.broker.connect('a').call('echo', { text: 'old' }), { text: 'old', pid: pids[0] }, 'a still runs its old code');
});

t.test('a changed service that does not run is not started by a reload; a later call runs its new code', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [manifest('a'), manifest('idle')] });
  t.teardown(() => kit.close());
  await kit.broker.kickstart('a');
  const result = await kit.broker.reload({ services: [manifest('a', { entry: NEW }), manifest('idle', { entry: NEW })] });
  t.same(result.replaced, ['a', 'idle']);
  t.same(result.relaunched, ['a'], 'only a ran: it alone was relaunched');
  t.equal(kit.broker.status('idle').pid, null, 'idle was not launched by the reload');
  t.same(await kit.broker.connect('idle').call('echo', { text: 'x' }), { text: 'v2:x', pid: kit.broker.status('idle').pid });
});

t.test('reloads run one at a time: the second is planned against what the first left', async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [manifest('a')] });
  t.teardown(() => kit.close());
  await kit.broker.kickstart('a');
  const first = kit.broker.reload({ services: [manifest('a', { entry: NEW })] });
  const second = kit.broker.reload({ services: [manifest('a', { entry: NEW }), manifest('x')] });
  t.same(await first, { added: [], removed: [], replaced: ['a'], editedProfiles: [], relaunched: ['a'] });
  t.same(await second, { added: ['x'], removed: [], replaced: [], editedProfiles: [], relaunched: [] }, 'a was already reloaded: only x is new');
  t.same(await kit.broker.connect('a').call('echo', { text: 'y' }), { text: 'v2:y', pid: kit.broker.status('a').pid });
});

t.test('no uncaught exception', async (t) => {
  t.same(uncaught, []);
});
