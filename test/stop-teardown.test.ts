// broker.stop() resolves once the helper exited *and* its sandbox was torn
// down: its scratch dir and cgroup removed and, under network "full", its
// pasta ended. Before, stop() resolved at the exit and the teardown ran on,
// so a launch right after stop() shared the machine with it (bench/README.md,
// "Round seven: cold launch"). Each check has its positive control: the same
// thing exists while the helper runs.
import t from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { startBroker } from 'bulkhead/testing';
import { probeHost } from '../lib/sandbox/index.js';
import { FIXTURES, REPO_ROOT, ourPastas } from './helpers.js';

const probe = await probeHost();
const KOFFI = join(REPO_ROOT, 'node_modules', 'koffi');

/** This process's scratch dirs for `service` (lib/sandbox/scratch.ts names them `bulkhead-scratch.<broker pid>-….<service>-…`). */
function scratchDirs(service: string): string[] {
  return readdirSync(tmpdir()).filter((f) => f.startsWith(`bulkhead-scratch.${process.pid}-`) && f.includes(`.${service}-`));
}

t.test('stop() resolves after the scratch dir and the cgroup are gone', { skip: probe.bwrap !== null ? false : 'needs bubblewrap' }, async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [{ name: 'stopper', entry: './echo-service.js', protocol: 'com.test.echo', sandbox: 'pure-compute', launch: { throttleMs: 0 } }] });
  t.teardown(() => kit.close());
  const connection = kit.broker.connect('stopper');
  for (let round = 0; round < 3; round++) {
    t.equal(((await connection.call('echo', { text: 'hi' })) as { text: string }).text, 'hi');
    const cgroups = kit.broker.status('stopper').sandbox?.cgroup?.paths ?? [];
    const scratch = kit.broker.status('stopper').sandbox?.grants?.write[0] ?? '';
    t.same(scratchDirs('stopper'), [basename(scratch)], 'control: the running helper has its scratch dir (the only one: the reserve made none while it runs)');
    if (probe.cgroup !== null) t.ok(cgroups.length > 0 && cgroups.every((p) => existsSync(p)), 'control: and its cgroup');
    await kit.broker.stop('stopper');
    t.notOk(existsSync(scratch), 'its scratch dir is gone once stop() resolved');
    // What is left is the next launch's, made ahead (lib/sandbox/launch-reserve.ts; test/launch-reserve.test.ts): another, empty one.
    t.ok(scratchDirs('stopper').every((name) => name !== basename(scratch) && readdirSync(join(tmpdir(), name)).join() === 'tmp'), 'any scratch dir left is another, empty one (the reserve\'s)');
    t.same(cgroups.filter((p) => existsSync(p)), [], 'no cgroup once stop() resolved');
  }
});

t.test('stop() resolves after the helper\'s pasta exited', { skip: probe.bwrap !== null && probe.pasta !== null ? false : 'needs bubblewrap and pasta (apt-get install -y passt)' }, async (t) => {
  const kit = await startBroker({ root: FIXTURES, services: [{ name: 'netstop', entry: './sandbox/kernel-service.js', protocol: 'com.test.sandbox-kernel', sandbox: 'network-client', sandboxPaths: { koffi: KOFFI }, launch: { throttleMs: 0 } }] });
  t.teardown(() => kit.close());
  for (let round = 0; round < 3; round++) {
    await kit.broker.kickstart('netstop');
    t.ok(kit.broker.status('netstop').sandbox?.rules.find((r) => r.rule === 'network')?.layers.includes('pasta'), 'the helper is networked by pasta');
    t.equal(ourPastas().length, 1, 'control: its pasta runs while it does');
    const scratch = kit.broker.status('netstop').sandbox?.grants?.write[0] ?? '';
    t.same(scratchDirs('netstop'), [basename(scratch)], 'control: and its scratch dir exists');
    await kit.broker.stop('netstop');
    t.same(ourPastas(), [], 'no pasta once stop() resolved');
    t.notOk(existsSync(scratch), 'its scratch dir is gone once stop() resolved');
  }
});
