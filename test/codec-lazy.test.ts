// cbor-x is loaded on first need (lib/wire/codec.ts), not at a helper's start: the hello and the first call of a
// small service go through plain-encode.ts / plain-decode.ts, so a helper's start skips cbor-x's module body
// (bench/README.md, "Round ten: the helper's start-up CPU"). What must still hold: a helper loads it as soon as a
// frame needs it (a byte string, which only cbor-x decodes), in the runtime bundle (scripts/build-runtime.mjs maps
// the lazy require to the bundled copy) and unbundled, as the broker uses the codec, with the same bytes either way.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startBroker } from 'bulkhead/testing';
import { cborLoaded, decodeItem, encodeItem } from '../lib/wire/codec.js';
import { encodePlain } from '../lib/wire/plain-encode.js';
import { RUNTIME_SCRIPT } from '../lib/broker/code-cache.js';
import { FIXTURES, REPO_ROOT } from './helpers.js';

for (const sandbox of [undefined, 'pure-compute'] as const) {
  t.test(`${sandbox ?? 'unsandboxed'}: a helper answers its first call without cbor-x, and loads it for a byte string`, async (t) => {
    const kit = await startBroker({ root: FIXTURES, services: [{ name: 'lazy', entry: './codec-lazy-service.js', protocol: 'com.test.codec-lazy', ...(sandbox === undefined ? {} : { sandbox }) }] });
    t.teardown(() => kit.close());
    const client = kit.broker.connect('lazy');
    t.same(await client.call('probe', {}), { cborLoaded: false }, 'hello and first call: cbor-x not loaded');
    const data = new Uint8Array([0, 1, 2, 250, 255]);
    const echoed = (await client.call('bytes', { data })) as { data: Uint8Array; cborLoaded: boolean };
    t.equal(echoed.cborLoaded, true, 'a call with a byte string: loaded (its decoder built the params)');
    t.same([...echoed.data], [...data], 'and the byte string came back whole');
    t.same(await client.call('probe', {}), { cborLoaded: true }, 'still loaded afterwards');
    t.equal(kit.status('lazy').launches, 1, 'one helper throughout');
  });
}

t.test('unbundled (the broker\'s codec): cbor-x through node\'s loader on first need, the same bytes as the plain encoder', async (t) => {
  // A fresh process: this one's brokers above have used cbor-x already.
  const script = `import { cborLoaded, decodeItem } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'dist/lib/wire/codec.js')).href)};
import { encodePlain } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'dist/lib/wire/plain-encode.js')).href)};
const before = cborLoaded();
const plain = { kind: 'x', n: 1, list: ['a', null, true, 1.5] };
const same = JSON.stringify(decodeItem(encodePlain(plain))) === JSON.stringify(plain);
const after = cborLoaded();
decodeItem(new Uint8Array([0x41, 7]));
process.stdout.write(JSON.stringify([before, same, after, cborLoaded()]));`;
  const seen = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as boolean[];
  t.same(seen, [false, true, false, true], 'not loaded at import nor by a plain round trip; loaded by a byte string to decode');
  const plain = { kind: 'x', n: 1, list: ['a', null, true, 1.5] };
  const value = { data: new Uint8Array([9, 8, 7]), big: 2n ** 70n };
  const bytes = encodeItem(value);
  t.equal(cborLoaded(), true, 'loaded (here by the brokers above, or this encode)');
  t.same(decodeItem(bytes), value, 'and its output decodes');
  t.same(encodeItem(plain), encodePlain(plain), 'cbor-x and the plain encoder still write the same bytes');
});

t.test('the runtime bundle holds cbor-x once, behind the lazy require only', async (t) => {
  const runtime = readFileSync(RUNTIME_SCRIPT, 'latin1');
  const calls = runtime.match(/require_index_no_eval\(\)/g) ?? [];
  t.equal(calls.length, 1, 'one call of the bundled cbor-x module');
  t.match(runtime, /function loadCbor\(\)\{[^}]*require_index_no_eval\(\)/, 'inside codec.ts\'s loadCbor(), not at the top level');
  t.notMatch(runtime, /cborRequire\(\)\("cbor-x/, 'no require of the package from node_modules is left');
  t.ok(readFileSync(join(REPO_ROOT, 'dist/lib/wire/codec.js'), 'utf8').includes("cborRequire()('cbor-x/index-no-eval')"), 'the unbundled codec keeps node\'s loader');
});
