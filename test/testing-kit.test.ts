// bulkhead/testing as a user would use it: a broker on a temp dir written
// from files, crash a helper, await its relaunch, read the status.
import t from 'tap';
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { startBroker } from 'bulkhead/testing';
import { REPO_ROOT } from './helpers.js';

const serviceUrl = pathToFileURL(join(REPO_ROOT, 'dist/lib/service.js')).href;

t.test('a temp-dir broker: crash, wait for states, relaunch on the next call', async (t) => {
  const kit = await startBroker({
    files: {
      'protocols/com.user.counter.json': {
        name: 'com.user.counter',
        version: '1.0.0',
        methods: { next: { params: { type: 'object' }, result: { type: 'object', required: ['n', 'pid'], properties: { n: { type: 'integer' }, pid: { type: 'integer' } } } } },
      },
      'counter.js': `import { serve } from ${JSON.stringify(serviceUrl)};\nlet n = 0;\nserve('com.user.counter', { next: () => ({ n: ++n, pid: process.pid }) });\n`,
    },
    services: [{ name: 'counter', entry: './counter.js', protocol: 'com.user.counter', launch: { throttleMs: 0 } }],
  });
  const root = kit.root;
  t.ok(existsSync(join(root, 'counter.js')));
  const counter = kit.broker.connect('counter');
  t.same(kit.status('counter'), { state: 'idle', pid: null, launches: 0, crashes: 0, lastExit: null });

  const first = await counter.call('next', {});
  t.equal(first.n, 1);
  await kit.waitFor('counter', 'running');
  t.equal(kit.status('counter').pid, first.pid);

  const idle = kit.waitFor('counter', 'idle');
  const exit = await kit.crash('counter');
  await idle;
  t.equal(exit.signal, 'SIGKILL');
  t.equal(kit.status('counter').lastExit?.signal, 'SIGKILL');
  t.equal(kit.status('counter').crashes, 1);

  const second = await counter.call('next', {});
  t.equal(second.n, 1, 'a fresh helper: state did not survive the crash');
  t.not(second.pid, first.pid);
  t.equal(kit.status('counter').launches, 2);

  await t.rejects(kit.waitFor('counter', 'failed', 50), { code: 'ERR_DEADLINE' }, 'a wait that cannot happen times out with a code');
  await kit.close();
  t.equal(existsSync(root), false, 'the temp root is removed');
  await t.rejects(kit.crash('counter'), { code: 'ERR_UNKNOWN_SERVICE' }, 'nothing runs after close');
});
