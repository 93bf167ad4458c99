// With the broker's cache off (NODE_DISABLE_COMPILE_CACHE=1), a manifest's env cannot hand a helper a
// cache directory of its choosing (BULKHEAD_CODE_CACHE, NODE_COMPILE_CACHE: bytecode the helper would run).
import t from 'tap';
import { startBroker } from 'bulkhead/testing';
import { COMPILE_CACHE_OFF_ENV, compileCacheDir } from '../lib/broker/compile-cache.js';
import { FIXTURES } from './helpers.js';

interface Probe { codeCache: string; dir: string | null; env: { NODE_COMPILE_CACHE: string | null; BULKHEAD_TEST_MARK: string | null } }

t.test('cache off: the manifest env\'s cache variables do not reach the helper, its other variables do', async (t) => {
  process.env[COMPILE_CACHE_OFF_ENV] = '1';
  t.teardown(() => delete process.env[COMPILE_CACHE_OFF_ENV]);
  t.equal(compileCacheDir(), undefined, 'the broker\'s cache is off');
  const env = { BULKHEAD_CODE_CACHE: '/tmp/x', NODE_COMPILE_CACHE: '/tmp/x', BULKHEAD_TEST_MARK: 'passed' };
  const kit = await startBroker({
    root: FIXTURES,
    services: [
      { name: 'plain', entry: './code-cache-service.js', protocol: 'com.test.code-cache', env },
      { name: 'sandboxed', entry: './code-cache-service.js', protocol: 'com.test.code-cache', sandbox: 'pure-compute', env },
    ],
  });
  t.teardown(() => kit.close());
  for (const name of ['plain', 'sandboxed']) {
    const probe = (await kit.broker.connect(name).call('probe', { write: false })) as Probe;
    t.equal(probe.env.BULKHEAD_TEST_MARK, 'passed', `${name}: positive control, another manifest env variable reaches the helper`);
    t.equal(probe.dir, null, `${name}: BULKHEAD_CODE_CACHE from the manifest does not`);
    t.equal(probe.env.NODE_COMPILE_CACHE, null, `${name}: NODE_COMPILE_CACHE from the manifest does not`);
    t.equal(probe.codeCache, 'off', `${name}: the runtime compiled from source`);
  }
});
