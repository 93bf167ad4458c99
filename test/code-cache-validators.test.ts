// V8's code cache of a protocol's precompiled validators module (lib/protocol/validators-loader.ts,
// lib/validators-cache-writer.ts): the broker's writer makes it from source; a helper's loader uses it only for the
// module it was made from, and compiles from source when it is missing, stale, corrupt or made for other flags.
// The sandboxed tier (accepted under every shipped profile, not writable there) is in code-cache.test.ts.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadProtocolFile } from '../lib/protocol/registry.js';
import { precompileValidators } from '../lib/protocol/precompiled.js';
import { validatorsCacheFile, WRAPPER_ID } from '../lib/protocol/validators-loader.js';
import { cachedDataFor } from '../lib/util/runtime-loader.js';
import { REPO_ROOT } from './helpers.js';

const LOADER = pathToFileURL(join(REPO_ROOT, 'dist/lib/protocol/validators-loader.js')).href;
const WRITER = join(REPO_ROOT, 'dist/lib/validators-cache-writer.js');
const ENV = { PATH: process.env['PATH'] ?? '' };

// minLength: the module requires one of ajv's runtime helpers (ucs2length), through its lazy require.
const PROTOCOL = {
  name: 'com.test.validators-cache',
  version: '1.0.0',
  methods: {
    greet: {
      params: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', minLength: 2 } } },
      result: { type: 'string' },
    },
  },
};

interface Loaded { codeCache: string; ok: boolean; short: boolean; message: string | undefined }

/** Loads `module` in a fresh node with the loader and runs its params validator on a good value, a too short one and a number. */
function load(module: string, cacheDir: string, flags: string[] = []): Loaded {
  const script = `import { loadValidatorsModule } from ${JSON.stringify(LOADER)};
const r = loadValidatorsModule(${JSON.stringify(module)}, ${JSON.stringify(cacheDir)});
const v = r.exports[r.exports.__keys['params:greet']];
const ok = v({ name: 'ab' }); const short = v({ name: 'a' }); v({ name: 1 });
process.stdout.write(JSON.stringify({ codeCache: r.codeCache, ok, short, message: v.errors?.[0]?.message }));`;
  return JSON.parse(execFileSync(process.execPath, [...flags, '--input-type=module', '-e', script], { env: ENV, encoding: 'utf8' })) as Loaded;
}

t.test('the loader uses a validators cache only for the module it was made from; stale or corrupt ones compile from source', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-validators-cache-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const protocolFile = join(dir, 'com.test.validators-cache.json');
  writeFileSync(protocolFile, JSON.stringify(PROTOCOL));
  const made = precompileValidators(loadProtocolFile(protocolFile));
  t.ok(made, 'the broker precompiled the module');
  t.match(readFileSync(made!, 'utf8'), /__bulkheadRequire\("ajv\/dist\/runtime\/ucs2length"\)/, 'the module requires an ajv helper (the lazy require is exercised)');
  const module = join(dir, basename(made!));
  copyFileSync(made!, module);
  const cacheDir = join(dir, 'cache');
  mkdirSync(cacheDir);

  // Before any cache: compiled from source, and it validates.
  const good: Loaded = { codeCache: 'missing', ok: true, short: false, message: 'must be string' };
  t.same(load(module, cacheDir), good, 'no cache file yet: compiled from source, validates as ajv does');
  t.same(load(module, ''), { ...good, codeCache: 'off' }, 'no cache directory: off');

  const file = execFileSync(process.execPath, [WRITER, cacheDir, module, protocolFile], { env: ENV, encoding: 'utf8' });
  t.equal(file, validatorsCacheFile(cacheDir, module, []), 'the writer names the file for this module, node and flags');
  t.match(basename(file), new RegExp(`^validators-[0-9a-f]{64}-[0-9a-f]{16}-d-w${WRAPPER_ID}-${process.version}-${process.arch}-[0-9a-f]{8}\\.v8cache$`), 'named for the loader\'s wrapper too');
  t.equal(statSync(file).mode & 0o777, 0o644, 'readable by helpers of other uids, writable by the broker only');
  const cache = readFileSync(file);

  // Positive control: the module it was made from loads from it.
  t.same(load(module, cacheDir), { ...good, codeCache: 'accepted' }, 'V8 takes the cache for its own module, which validates the same');
  t.equal(load(module, cacheDir, ['--max-old-space-size=300']).codeCache, 'missing', 'other V8 flags look for a file of their own');
  // A cache made under another wrapper (its name without this wrapper's id, as before it was named): not looked for,
  // since V8 would take it for a wrapper of the same length and run the other wrapper's bytecode.
  renameSync(file, file.replace(`-w${WRAPPER_ID}-`, '-'));
  t.equal(load(module, cacheDir).codeCache, 'missing', 'a cache without this wrapper\'s id is not used');
  renameSync(file.replace(`-w${WRAPPER_ID}-`, '-'), file);
  t.equal(load(module, cacheDir).codeCache, 'accepted', 'control: back under its name, it is');

  // A module changed at the same length: the same cache file name, its own code runs.
  const tampered = join(dir, 'tampered');
  mkdirSync(tampered);
  const changedModule = join(tampered, basename(module));
  const text = readFileSync(module, 'utf8');
  const changed = text.replaceAll('must be string', 'must be strinX');
  t.not(changed, text, 'the tamper changed the source');
  t.equal(Buffer.byteLength(changed), Buffer.byteLength(text), 'at the same length');
  writeFileSync(changedModule, changed);
  t.equal(validatorsCacheFile(cacheDir, changedModule, []), file, 'the changed module looks for the same cache file');
  t.same(load(changedModule, cacheDir), { ...good, codeCache: 'stale', message: 'must be strinX' }, 'the changed module is compiled and its own code runs');

  // Corrupt caches: never used, never fatal.
  const data = cachedDataFor(cache, readFileSync(module))!;
  const head = cache.length - data.length;
  const mangled = Buffer.from(cache);
  mangled.fill(0xa5, head, head + 16); // V8's own header: magic, version and flag hashes
  writeFileSync(file, mangled);
  t.same(load(module, cacheDir), { ...good, codeCache: 'rejected' }, 'a mangled V8 header: V8 refuses it, compiled from source');
  writeFileSync(file, cache.subarray(0, head + 40));
  t.equal(load(module, cacheDir).codeCache, 'rejected', 'truncated V8 data: refused');
  writeFileSync(file, cache.subarray(0, 100));
  t.equal(load(module, cacheDir).codeCache, 'stale', 'truncated inside the source copy: not used');
  writeFileSync(file, 'garbage');
  t.equal(load(module, cacheDir).codeCache, 'stale', 'garbage: not used');

  // A file not named like a broker-made module has no cache name: loaded without one, and the writer refuses it.
  const odd = join(dir, 'validators.cjs');
  copyFileSync(module, odd);
  t.equal(validatorsCacheFile(cacheDir, odd, []), undefined);
  t.same(load(odd, cacheDir), { ...good, codeCache: 'off' }, 'an odd name: no cache looked for');
  let status = 0;
  try {
    execFileSync(process.execPath, [WRITER, cacheDir, odd, protocolFile], { env: ENV, stdio: 'ignore' });
  } catch (err) {
    status = (err as { status: number }).status;
  }
  t.equal(status, 65, 'the writer refuses it');
});
