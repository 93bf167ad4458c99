// What a helper does at start, made cheaper (issue 19, round four): the broker's precompiled validators
// module carries the canonical JSON and schema hash of the protocol document, so a helper whose protocol
// file is unchanged does not hash it (nor load node:crypto); a changed file is still hashed, and refused
// by the broker's hello check (core-lifecycle.test.ts). The schema hash itself is the same as before.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChildProcess } from 'node:child_process';
import { startBroker } from 'bulkhead/testing';
import { loadProtocol } from '../lib/protocol/registry.js';
import { CompiledProtocol } from '../lib/protocol/compiled-protocol.js';
import { loadPrecompiled, precompileValidators } from '../lib/protocol/precompiled.js';
import { canonicalEquals, canonicalJson, schemaHash } from '../lib/protocol/hash.js';
import { loadRuntime } from '../lib/util/runtime-loader.js';
import { RUNTIME_SCRIPT } from '../lib/broker/code-cache.js';
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

t.test('canonicalEquals (how a helper compares its document with the broker\'s canonical JSON) agrees with comparing canonical JSON', async (t) => {
  // Pairs chosen at the edges: key order, -0, arrays against objects with index keys, an own __proto__ key, null;
  // strings and keys that need an escape or hold surrogates (the walk leaves those to canonicalJson), non-JSON values.
  const values: unknown[] = [
    {}, [], null, 0, -0, 1, 1.5, '', '0', 'é€😀', true, false, [0], { 0: 0 }, ['a', 'b'], ['b', 'a'], { a: 1 }, { a: 1, b: 2 }, { b: 2, a: 1 },
    { a: { b: [1, { c: null }] } }, { a: { b: [1, { c: 0 }] } }, { a: 1, b: [] }, { a: 1, b: {} },
    JSON.parse('{"__proto__": {"x": 1}}'), JSON.parse('{"__proto__": {"x": 2}}'), { x: 1 }, [[]], [{}], [null], { a: [] }, { a: {} },
    'a"b', 'a\\b', '\n', '\u2028', '\ud800', 'é', { 'a"': 1 }, { 'a\\': 1 }, { é: 1 }, { '😀': 1 }, { '\ud800': 1 }, { '\n': 1 },
    [undefined], { a: undefined }, { a: undefined, b: 1 }, { b: 1 }, Object.create({ inherited: 1 }) as unknown, 1e21, 1e-7,
  ];
  // And random JSON values, some sharing structure, with keys in random order.
  let seed = 7;
  const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
  const gen = (depth: number): unknown => {
    const k = rnd(depth > 2 ? 4 : 6);
    if (k === 0) return rnd(3) - 1;
    if (k === 1) return ['a', 'b', ''][rnd(3)];
    if (k === 2) return [null, true, false][rnd(3)];
    if (k === 3) return [rnd(2), 'a'][rnd(2)];
    if (k === 4) return Array.from({ length: rnd(3) }, () => gen(depth + 1));
    const keys = ['p', 'q', 'r'].filter(() => rnd(2) === 0);
    if (rnd(2) === 0) keys.reverse();
    return Object.fromEntries(keys.map((key) => [key, gen(depth + 1)]));
  };
  for (let i = 0; i < 400; i++) values.push(gen(0));
  let equal = 0;
  for (const a of values) {
    for (const b of values) {
      const expected = canonicalJson(a) === canonicalJson(b);
      if (expected) equal++;
      if (canonicalEquals(a, canonicalJson(b)) !== expected) t.fail(`canonicalEquals(${canonicalJson(a)}, ${canonicalJson(b)}) is ${!expected}`);
    }
  }
  t.ok(equal > values.length, `equal pairs beyond the diagonal were tried (${equal} of ${values.length ** 2})`);
  // Texts no canonicalJson writes (whitespace, keys out of order or twice, escapes, cut short, trailing bytes): the same answer.
  const texts = ['', ' ', '{ "a":1}', '{"b":2,"a":1}', '{"a":1,"a":1}', '{"a":1', '{"a":1}x', '{"a":1,}', '{"a"1}', '{"\\u0061":1}',
    '"\\u0061"', '"a', '[1,]', '[1', '[1 ]', 'nul', 'nullx', 'true ', '-0', '0', '01', '1.50', '{"a":undefined}', '[]', '{}', '{"a":1}', '"é"'];
  for (const a of values) for (const text of texts) if (canonicalEquals(a, text) !== (canonicalJson(a) === text)) t.fail(`canonicalEquals(${canonicalJson(a)}, ${JSON.stringify(text)})`);
  // What the helper does: the document against the broker's canonical JSON.
  const doc = JSON.parse(readFileSync(join(FIXTURES, 'protocols', 'com.test.echo.json'), 'utf8')) as unknown;
  t.ok(canonicalEquals(doc, canonicalJson(doc)), 'a document equals its own canonical JSON');
  t.notOk(canonicalEquals(doc, canonicalJson(doc).replace('"echo"', '"echp"')), 'a changed canonical JSON does not');
});

t.test('the runtime script exports plain values, the facade\'s names (no esbuild getters: scripts/build-runtime.mjs)', async (t) => {
  const { exports } = loadRuntime(RUNTIME_SCRIPT, undefined);
  const facade = await import('bulkhead/service');
  t.same(Object.keys(exports).sort(), Object.keys(facade).sort(), 'the same names as bulkhead/service');
  for (const name of Object.keys(exports)) {
    const d = Object.getOwnPropertyDescriptor(exports, name)!;
    if (d.get !== undefined || !('value' in d) || d.value === undefined) t.fail(`${name}: not a plain value`);
  }
  t.equal(typeof exports['serve'], 'function');
  t.equal((exports['HELPER_ENV'] as Record<string, string>)['runtime'], facade.HELPER_ENV.runtime, 'constants initialised');
});

// node:crypto is what a helper hashes with (lib/protocol/hash.ts): not loaded means it did not hash its protocol.
// Positive control: the same helper reports crypto once it has loaded it itself. Sandboxed: a spawn hook's
// NODE_OPTIONS (the test below) cannot reach these helpers.
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

/**
 * A spawn hook in the broker's process (a test runner's instrumentation, an APM agent) that adds NODE_OPTIONS to
 * every child after the launch plan is made: compile.ts strips it again right before the sandbox's first wrapper.
 * The hook here is what process-on-spawn (tap's processinfo) does, wrapping ChildProcess.prototype.spawn; its
 * NODE_OPTIONS loads node:crypto, which the launch fixture reports. (tap's own hook is kept out of the test's
 * children by test/uninstrumented-children.ts, so this test supplies one.)
 */
function withSpawnHook(t: { teardown(fn: () => void): void }, nodeOptions: string): void {
  const proto = ChildProcess.prototype as unknown as { spawn(options: { envPairs?: string[] }): unknown };
  const spawn = proto.spawn;
  proto.spawn = function (this: ChildProcess, options: { envPairs?: string[] }) {
    options.envPairs = [...(options.envPairs ?? []).filter((pair) => !pair.startsWith('NODE_OPTIONS=')), `NODE_OPTIONS=${nodeOptions}`];
    return spawn.call(this, options);
  };
  t.teardown(() => {
    proto.spawn = spawn;
  });
}

for (const sandbox of ['pure-compute', 'no-network', undefined] as const) {
  const confined = sandbox !== undefined;
  t.test(`NODE_OPTIONS added by a spawn hook after the plan: ${confined ? `stripped for a sandboxed helper (${sandbox})` : 'positive control, reaches an unsandboxed helper'}`, async (t) => {
    withSpawnHook(t, '--import=node:crypto');
    const kit = await startBroker({
      root: FIXTURES,
      services: [{ name: 'launch', entry: './launch-service.js', protocol: 'com.test.launch', launch: { throttleMs: 0 }, ...(confined ? { sandbox } : {}) }],
    });
    t.teardown(() => kit.close());
    const launch = kit.broker.connect('launch');
    t.same(await launch.call('loaded', { hash: false }), { crypto: !confined }, confined ? 'the hook\'s --import did not run in the helper' : 'the hook\'s --import ran in the helper');
  });
}

