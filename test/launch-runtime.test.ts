// What a helper does at start, made cheaper (issue 19, round four): the broker's precompiled validators
// module carries the protocol document and its schema hash, so a helper neither reads, parses nor hashes
// its protocol file; the schema hash (now node:crypto, loaded on first use) is the same as before.
import t from 'tap';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker } from 'bulkhead/testing';
import { loadProtocol } from '../lib/protocol/registry.js';
import { CompiledProtocol } from '../lib/protocol/compiled-protocol.js';
import { loadPrecompiled, loadPrecompiledValidators, precompileValidators } from '../lib/protocol/precompiled.js';
import { schemaHash } from '../lib/protocol/hash.js';
import { FIXTURES } from './helpers.js';

t.test('schemaHash: the same hex SHA-256 of the canonical JSON as every earlier release (golden value)', async (t) => {
  // Computed by the @noble/hashes implementation this replaced; a peer of another release compares it in its hello.
  const doc = { name: 'com.test.golden', version: '1.0.0', methods: { 'échо': { params: { type: 'object' }, result: { type: 'string', description: 'ünïcode ✓' } } } };
  t.equal(schemaHash(doc), '629dc69c69157a21447f0dab390a8a5990b9ebe64a2c08183932b647aac2302b');
  t.equal(schemaHash({ b: 1, a: [true, null, 'x'] }), schemaHash({ a: [true, null, 'x'], b: 1 }), 'key order does not matter');
});

t.test('the precompiled module carries the document and hash the broker checked; an old-format module still loads', async (t) => {
  const protocol = loadProtocol(join(FIXTURES, 'protocols'), 'com.test.echo');
  const file = precompileValidators(protocol);
  if (file === undefined) return t.fail('no validators cache directory');
  t.match(file, /-d\.cjs$/, 'a file name of its own, so a module of the old format is never taken for one with the document');
  const loaded = loadPrecompiled(file);
  t.equal(loaded.hash, protocol.hash);
  t.same(loaded.document, protocol.document);
  t.ok(typeof loaded.validators['params:echo'] === 'function');
  const trusted = CompiledProtocol.from(loaded.document, file, { eager: false, trusted: true, validators: loaded.validators, hash: loaded.hash! });
  t.equal(trusted.hash, protocol.hash);
  t.equal(trusted.check('params', 'echo', { text: 'hi' }), undefined);
  t.equal(trusted.check('params', 'echo', { text: 1 })?.code, 'ERR_INVALID_PARAMS', 'validation still runs');

  // A module written before this format: validators only, so the helper reads its protocol file as before.
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-precompiled-old-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const old = join(dir, 'old.cjs');
  writeFileSync(old, readFileSync(file, 'utf8').replace(/\nmodule\.exports\.__hash = [^\n]*\nmodule\.exports\.__document = [^\n]*\n$/, '\n'));
  const oldLoaded = loadPrecompiled(old);
  t.equal(oldLoaded.document, undefined);
  t.equal(oldLoaded.hash, undefined);
  t.same(Object.keys(oldLoaded.validators).sort(), Object.keys(loadPrecompiledValidators(file)).sort());
});

// The protocol file is overwritten with something no parser accepts once the broker has loaded it:
// a helper that still read it would fail at start (ERR_INVALID_PROTOCOL, so the call gets ERR_LAUNCH_FAILED).
// Positive control: the first launch, before the overwrite, answers too, so the helper did run.
for (const sandbox of [undefined, 'pure-compute'] as const) {
  t.test(`a helper serves the broker's document without reading its protocol file (${sandbox ?? 'unsandboxed'})`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'bulkhead-launch-doc-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    copyFileSync(join(FIXTURES, 'protocols', 'com.test.echo.json'), join(dir, 'com.test.echo.json'));
    const kit = await startBroker({
      root: FIXTURES,
      protocolsDir: dir,
      services: [{ name: 'echo', entry: './echo-service.js', protocol: 'com.test.echo', launch: { throttleMs: 0 }, ...(sandbox === undefined ? {} : { sandbox }) }],
    });
    t.teardown(() => kit.close());
    const echo = kit.broker.connect('echo');
    const first = await echo.call('echo', { text: 'before' }) as { text: string };
    t.equal(first.text, 'before', 'positive control: the helper ran');
    const launches = kit.broker.status('echo').launches;
    writeFileSync(join(dir, 'com.test.echo.json'), '{ not json');
    await kit.broker.stop('echo');
    const second = await echo.call('echo', { text: 'after' }) as { text: string };
    t.equal(second.text, 'after');
    t.equal(kit.broker.status('echo').launches, launches + 1, 'a new helper answered');
    const err = await echo.call('echo', { text: 7 }).then(() => undefined, (e: unknown) => e as { code?: string });
    t.equal(err?.code, 'ERR_INVALID_PARAMS', 'and it still validates params');
  });
}
