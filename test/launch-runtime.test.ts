// What a helper does at start, made cheaper (issue 19, round four): the broker's precompiled validators
// module carries the canonical JSON and schema hash of the protocol document, so a helper whose protocol
// file is unchanged does not hash it (nor load node:crypto); a changed file is still hashed, and refused
// by the broker's hello check (core-lifecycle.test.ts). The schema hash itself is the same as before.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker } from 'bulkhead/testing';
import { loadProtocol } from '../lib/protocol/registry.js';
import { CompiledProtocol } from '../lib/protocol/compiled-protocol.js';
import { loadPrecompiled, precompileValidators } from '../lib/protocol/precompiled.js';
import { canonicalJson, schemaHash } from '../lib/protocol/hash.js';
import { FIXTURES } from './helpers.js';

t.test('schemaHash: the same hex SHA-256 of the canonical JSON as every earlier release (golden value)', async (t) => {
  // Computed by the @noble/hashes implementation this replaced; a peer of another release compares it in its hello.
  const doc = { name: 'com.test.golden', version: '1.0.0', methods: { 'échо': { params: { type: 'object' }, result: { type: 'string', description: 'ünïcode ✓' } } } };
  t.equal(schemaHash(doc), '629dc69c69157a21447f0dab390a8a5990b9ebe64a2c08183932b647aac2302b');
  t.equal(schemaHash({ b: 1, a: [true, null, 'x'] }), schemaHash({ a: [true, null, 'x'], b: 1 }), 'key order does not matter');
});

t.test('the precompiled module carries the canonical JSON and hash the broker computed; an old-format module still loads', async (t) => {
  const protocol = loadProtocol(join(FIXTURES, 'protocols'), 'com.test.echo');
  const file = precompileValidators(protocol);
  if (file === undefined) return t.fail('no validators cache directory');
  t.match(file, /-d\.cjs$/, 'a file name of its own, so a module of an older format is never taken for this one');
  const loaded = loadPrecompiled(file);
  t.equal(loaded.known?.hash, protocol.hash);
  t.equal(loaded.known?.canonical, canonicalJson(protocol.document));
  t.ok(typeof loaded.validators['params:echo'] === 'function');
  const same = CompiledProtocol.from(JSON.parse(JSON.stringify(protocol.document)), file, { eager: false, trusted: true, validators: loaded.validators, known: loaded.known! });
  t.equal(same.hash, protocol.hash);
  t.equal(same.check('params', 'echo', { text: 'hi' }), undefined);
  t.equal(same.check('params', 'echo', { text: 1 })?.code, 'ERR_INVALID_PARAMS', 'validation still runs');
  // A changed document is hashed, never given the known hash: the broker's hello check then sees the difference.
  const changed = { ...protocol.document, version: '9.9.9' };
  const other = CompiledProtocol.from(changed, file, { eager: false, trusted: true, validators: loaded.validators, known: loaded.known! });
  t.not(other.hash, protocol.hash);
  t.equal(other.hash, schemaHash(changed));
  // A hash claimed for another document is not taken either.
  t.equal(CompiledProtocol.from(changed, file, { eager: false, trusted: true, known: { canonical: 'x', hash: 'f'.repeat(64) } }).hash, schemaHash(changed));

  // A module written before this format: validators only, so the helper reads its protocol file as before.
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-precompiled-old-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const old = join(dir, 'old.cjs');
  const current = readFileSync(file, 'utf8');
  const stripped = current.replace(/\nmodule\.exports\.__hash = [^\n]*\nmodule\.exports\.__canonical = [^\n]*\n$/, '\n');
  t.not(stripped, current, 'the old format is the current one without its last two lines');
  writeFileSync(old, stripped);
  const oldLoaded = loadPrecompiled(old);
  t.equal(oldLoaded.known, undefined);
  t.same(Object.keys(oldLoaded.validators).sort(), Object.keys(loadPrecompiled(file).validators).sort());
});

// node:crypto is what a helper hashes with (lib/protocol/hash.ts): not loaded means it did not hash its protocol.
// Positive control: the same helper reports crypto once it has loaded it itself. Sandboxed only: tap instruments
// the unsandboxed children of a test (NODE_OPTIONS=--import its processinfo), and that loads node:crypto itself.
for (const sandbox of ['pure-compute', 'no-network'] as const) {
  t.test(`a helper with an unchanged protocol file does not hash it at start (${sandbox})`, async (t) => {
    const kit = await startBroker({
      root: FIXTURES,
      services: [{ name: 'launch', entry: './launch-service.js', protocol: 'com.test.launch', launch: { throttleMs: 0 }, sandbox }],
    });
    t.teardown(() => kit.close());
    const launch = kit.broker.connect('launch');
    t.same(await launch.call('loaded', { hash: false }), { crypto: false }, 'no node:crypto in the helper');
    t.same(await launch.call('loaded', { hash: true }), { crypto: true }, 'positive control: the check sees it once loaded');
  });
}
