// The bulkhead/service facade loads the runtime file the broker names in the helper environment (HELPER_ENV.runtime)
// when that file is its own build's runtime, which spares it Node's import.meta set-up at every helper start
// (lib/util/runtime-loader.ts, loadRuntimeFor). Any other file there (another build id, missing, unreadable, relative)
// is ignored and the facade's own copy loads: the helper always runs the runtime its facade was built with.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startBroker } from 'bulkhead/testing';
import { RUNTIME_SCRIPT } from '../lib/broker/code-cache.js';
import { FIXTURES, REPO_ROOT } from './helpers.js';

const FACADE = pathToFileURL(join(REPO_ROOT, 'dist/lib/service.bundle.js')).href;

/** Imports the facade in a fresh node with BULKHEAD_RUNTIME set to `runtime` (unset: undefined); what it loaded, and one constant of the code that runs. */
function facade(runtime: string | undefined): { from: string; protocolFile: string } {
  const script = `const m = await import(${JSON.stringify(FACADE)}); process.stdout.write(JSON.stringify({ from: m.runtimeLoad.runtimeFrom, protocolFile: m.HELPER_ENV.protocolFile }));`;
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '', ...(runtime === undefined ? {} : { BULKHEAD_RUNTIME: runtime }) };
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8' })) as { from: string; protocolFile: string };
}

t.test('the facade takes the named runtime only when it is its own build\'s', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-runtime-from-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.same(facade(RUNTIME_SCRIPT), { from: 'environment', protocolFile: 'BULKHEAD_PROTOCOL_FILE' }, 'the broker\'s runtime, same build: taken from the environment');
  t.same(facade(undefined), { from: 'own', protocolFile: 'BULKHEAD_PROTOCOL_FILE' }, 'unset: its own copy');
  // Another build: its code changed, and with it the build id in its first line (a hash of the rest).
  const text = readFileSync(RUNTIME_SCRIPT, 'latin1');
  const other = join(dir, 'other.runtime.cjs');
  const changed = text.replace(/^\/\*bulkhead-runtime:[0-9a-f]{16}\*\//, '/*bulkhead-runtime:0123456789abcdef*/').replace("'BULKHEAD_PROTOCOL_FILE'", "'BULKHEAD_PROTOCOL_FILX'").replace('"BULKHEAD_PROTOCOL_FILE"', '"BULKHEAD_PROTOCOL_FILX"');
  t.not(changed, text, 'the other build differs');
  writeFileSync(other, changed, 'latin1');
  t.same(facade(other), { from: 'own', protocolFile: 'BULKHEAD_PROTOCOL_FILE' }, 'another build id: ignored, its code never runs');
  const noId = join(dir, 'no-id.runtime.cjs');
  writeFileSync(noId, text.replace(/^\/\*bulkhead-runtime:[0-9a-f]{16}\*\//, ''), 'latin1');
  t.same(facade(noId), { from: 'own', protocolFile: 'BULKHEAD_PROTOCOL_FILE' }, 'no build id: ignored');
  t.same(facade(join(dir, 'missing.cjs')), { from: 'own', protocolFile: 'BULKHEAD_PROTOCOL_FILE' }, 'a missing file: ignored');
  t.same(facade('dist/lib/service.runtime.cjs'), { from: 'own', protocolFile: 'BULKHEAD_PROTOCOL_FILE' }, 'a relative path: ignored');
});

for (const sandbox of [undefined, 'pure-compute'] as const) {
  t.test(`${sandbox ?? 'unsandboxed'}: a helper (and a prewarmed spare) loads the broker's runtime named in its environment`, async (t) => {
    const kit = await startBroker({
      root: FIXTURES,
      services: [
        { name: 'plain', entry: './code-cache-service.js', protocol: 'com.test.code-cache', ...(sandbox === undefined ? {} : { sandbox }) },
        { name: 'spare', entry: './code-cache-service.js', protocol: 'com.test.code-cache', launch: { prewarm: true }, ...(sandbox === undefined ? {} : { sandbox }) },
        // A manifest cannot point the facade elsewhere: the broker's value wins.
        { name: 'env', entry: './code-cache-service.js', protocol: 'com.test.code-cache', env: { BULKHEAD_RUNTIME: '/nowhere/service.runtime.cjs' }, ...(sandbox === undefined ? {} : { sandbox }) },
      ],
    });
    t.teardown(() => kit.close());
    for (const name of ['plain', 'spare', 'env']) {
      const probe = (await kit.broker.connect(name).call('probe', { write: false })) as { runtimeFrom: string; codeCache: string };
      t.equal(probe.runtimeFrom, 'environment', `${name}: the broker's runtime file`);
    }
  });
}
