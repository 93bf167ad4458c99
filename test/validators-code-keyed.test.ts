// The broker's per-helper validators modules (lib/protocol/precompiled.ts) are keyed by bulkhead's own code as well as
// by the protocol and ajv's install (lib/protocol/validators-code-key.ts): a module one build of bulkhead left in the
// shared per-user cache is never handed to helpers by a build whose validation differs (an upgrade that changed the
// endpoint keyword, ajv's set-up or the generator), while an unchanged build still finds it (a hit).
// Each broker and helper side runs in a process of its own, with this file's TMPDIR (so the per-user cache is its own);
// the "other builds" are copies of dist/lib beside the build, where ajv resolves as from the real one.
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from './helpers.js';

const base = realpathSync(mkdtempSync(join(tmpdir(), 'bulkhead-validators-code-')));
t.teardown(() => rmSync(base, { recursive: true, force: true }));
const ENV = { PATH: process.env['PATH'] ?? '', TMPDIR: base };
const BUILD = join(REPO_ROOT, 'dist', 'lib');

// One method whose params hold an endpoint (the keyword x-bulkhead-endpoint: a 43-character token in this build).
const protocolFile = join(base, 'com.test.code-keyed.json');
writeFileSync(protocolFile, JSON.stringify({ name: 'com.test.code-keyed', version: '1.0.0', methods: { use: { params: { type: 'object', required: ['ep'], properties: { ep: { 'x-bulkhead-endpoint': 'svc' } } }, result: { type: 'null' } } } }));
const token = (n: number): { service: string; token: string } => ({ service: 'svc', token: 'A'.repeat(n) });

/** The broker's side, in a process of `lib`'s build: the path precompileValidators hands to a helper. */
function brokerModule(lib: string): string {
  const url = (file: string): string => JSON.stringify(pathToFileURL(join(lib, 'protocol', file)).href);
  return execFileSync(process.execPath, ['--input-type=module', '-e', `import { precompileValidators } from ${url('precompiled.js')};
import { loadProtocolFile } from ${url('registry.js')};
process.stdout.write(precompileValidators(loadProtocolFile(${JSON.stringify(protocolFile)})) ?? '');`], { env: ENV, encoding: 'utf8' });
}

/** The helper's side, in a process of `lib`'s build given `module` as a broker gives it: which tokens its params validator accepts. */
function helperAccepts(lib: string, module: string): { t43: boolean; t44: boolean } {
  const precompiled = JSON.stringify(pathToFileURL(join(lib, 'protocol', 'precompiled.js')).href);
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', `import { brokerPrecompiled } from ${precompiled};
const v = brokerPrecompiled(${JSON.stringify(protocolFile)}).validators['params:use'];
process.stdout.write(JSON.stringify({ t43: v({ ep: ${JSON.stringify(token(43))} }), t44: v({ ep: ${JSON.stringify(token(44))} }) }));`], { env: { ...ENV, BULKHEAD_VALIDATORS: module }, encoding: 'utf8' })) as { t43: boolean; t44: boolean };
}

/** A copy of the build beside it, with `edit` applied (as an upgrade of bulkhead would leave it). */
function libCopy(t: Test, label: string, edit?: { file: string; from: string; to: string }): string {
  const root = mkdtempSync(join(REPO_ROOT, 'dist', 'test', `validators-code-${label}-`));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const lib = join(root, 'lib');
  cpSync(BUILD, lib, { recursive: true, filter: (src) => !src.endsWith('.map') && !src.endsWith('.d.ts') });
  if (edit !== undefined) {
    const file = join(lib, edit.file);
    const text = readFileSync(file, 'utf8');
    t.ok(text.includes(edit.from), `${label}: ${edit.file} has what is edited`);
    writeFileSync(file, text.replace(edit.from, () => edit.to));
  }
  return lib;
}

t.test('a module the cache holds from another build of bulkhead is not handed to helpers by a build that validates otherwise', async (t) => {
  const first = brokerModule(BUILD);
  t.ok(first.startsWith(join(base, `bulkhead-${process.getuid?.() ?? 'user'}-validators`)), 'the build put its module in the per-user cache');
  t.same(helperAccepts(BUILD, first), { t43: true, t44: false }, 'a helper given it validates as this build: a 43-character token');
  const made = statSync(first);

  // Positive control: an unchanged copy of the build is the same code, so it finds the module in the cache.
  const same = libCopy(t, 'same');
  t.equal(brokerModule(same), first, 'an unchanged build names the same module');
  const after = statSync(first);
  t.ok(after.ino === made.ino && after.mtimeMs === made.mtimeMs, 'and takes it as it is from the cache (a hit, not rewritten)');

  // An upgrade that changed the endpoint keyword (its token pattern): same ajv, same protocol, same schemas.
  const upgraded = libCopy(t, 'keyword', { file: 'protocol/endpoint-keyword.js', from: "'^[A-Za-z0-9_-]{43}$'", to: "'^[A-Za-z0-9_-]{44}$'" });
  const second = brokerModule(upgraded);
  t.not(second, first, 'the upgraded build does not hand out the module the old code made');
  t.same(helperAccepts(upgraded, second), { t43: false, t44: true }, 'its helper validates with the new rule: a 44-character token, and the old one is refused');
  t.same(helperAccepts(BUILD, first), { t43: true, t44: false }, 'the first build\'s module is still there and still its own (the two builds share the cache)');

  // The upgraded build's validators cache writer agrees with its broker on the name; the first build's refuses it.
  const writer = (lib: string, module: string): number => {
    const dir = mkdtempSync(join(base, 'v8-'));
    try {
      execFileSync(process.execPath, [join(lib, 'validators-cache-writer.js'), dir, module, protocolFile], { env: ENV, stdio: 'ignore' });
      return 0;
    } catch (err) {
      return (err as { status: number }).status;
    }
  };
  t.equal(writer(upgraded, second), 0, 'the upgraded build\'s writer takes its broker\'s module');
  t.equal(writer(BUILD, second), 65, 'another build\'s writer refuses it (not the module its own code makes)');
  t.equal(writer(BUILD, first), 0, 'control: the first build\'s writer takes its own');
  t.same(helperAccepts(upgraded, second), { t43: false, t44: true }, 'after the writers, the upgraded module still validates with the new rule');
});

t.test('an upgrade that changed ajv\'s options gets a module of its own too', async (t) => {
  const first = brokerModule(BUILD);
  const upgraded = libCopy(t, 'options', { file: 'protocol/ajv.js', from: 'allErrors: false', to: 'allErrors: true' });
  const second = brokerModule(upgraded);
  t.not(second, first, 'another name');
  t.ok(!readFileSync(second).equals(readFileSync(first)), 'whose bytes differ: the module the other options make');
});
