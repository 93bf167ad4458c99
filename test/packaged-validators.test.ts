// The control protocol's validators compiled at build time (lib/protocol/packaged-validators.ts,
// scripts/build-packaged-validators.mjs): used only for exactly the document they were compiled from, with the same
// outcome as ajv compiling at run time; a changed protocol file (or another ajv, or bulkhead's own code rebuilt by tsc
// alone) is compiled with ajv, never validated by the stale module. And a real CLI-like process loads the control
// protocol without loading ajv's compiler.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadWithPackagedValidators, packagedValidatorsFile } from '../lib/protocol/packaged-validators.js';
import { loadProtocolFile } from '../lib/protocol/registry.js';
import { schemaHash } from '../lib/protocol/hash.js';
import { CompiledProtocol } from '../lib/protocol/compiled-protocol.js';
import { validatorsCodeFiles } from '../lib/protocol/validators-code-key.js';
import { REPO_ROOT } from './helpers.js';

const require_ = createRequire(import.meta.url);
const NAME = 'bulkhead.control';
const SHIPPED = join(REPO_ROOT, 'protocols');
const MODULE = packagedValidatorsFile(NAME);
const work = mkdtempSync(join(tmpdir(), 'bulkhead-packaged-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

/** A directory holding the control protocol as `edit` leaves it. */
function protocolDir(label: string, edit: (doc: Record<string, any>) => void): string {
  const dir = join(work, label);
  mkdirSync(dir, { recursive: true });
  const doc = JSON.parse(readFileSync(join(SHIPPED, `${NAME}.json`), 'utf8')) as Record<string, any>;
  edit(doc);
  writeFileSync(join(dir, `${NAME}.json`), JSON.stringify(doc, null, 1));
  return dir;
}

/** Values to try against every params and result schema: the odd ones and some of each method's shape. */
const SAMPLES: unknown[] = [undefined, null, {}, [], '', 0, { name: 'x' }, { name: 1 }, { name: 'x', restart: true }, { name: 'x', restart: 'yes' },
  { name: 'x', extra: 1 }, { service: '' }, { service: 'a', limit: 5001 }, { service: 'a', limit: 5, waitMs: 10 }, { pid: null }, { pid: 1.5 }, { pid: 3 },
  { services: [] }, { path: '/x' }, { names: ['a'] }];

t.test('the shipped control protocol takes the build\'s validators, with the outcome ajv gives at run time', async (t) => {
  const packaged = loadWithPackagedValidators(SHIPPED, NAME);
  t.equal(packaged.validators, 'packaged', 'the packaged module is used');
  const text = readFileSync(join(SHIPPED, `${NAME}.json`), 'utf8');
  t.equal(packaged.protocol.hash, schemaHash(JSON.parse(text)), 'its hash is the document\'s');
  // ajv compiling now, from the same file (a fresh CompiledProtocol, not the registry's cached one).
  const compiled = CompiledProtocol.from(JSON.parse(text), 'fresh');
  let compared = 0;
  for (const method of compiled.methodNames()) {
    for (const part of ['params', 'result'] as const) {
      for (const value of SAMPLES) {
        const a = packaged.protocol.check(part, method, value);
        const b = compiled.check(part, method, value);
        t.same(a === undefined ? 'valid' : { code: a.code, errors: a.data['errors'] }, b === undefined ? 'valid' : { code: b.code, errors: b.data['errors'] }, `${part}:${method} on ${JSON.stringify(value)}`);
        compared++;
      }
    }
  }
  t.ok(compared > 100, `${compared} comparisons`);
});

t.test('a changed control protocol is compiled with ajv, never validated by the stale module', async (t) => {
  // Positive control: the same document in another directory still takes the module (the key is the content).
  const same = loadWithPackagedValidators(protocolDir('same', () => {}), NAME, MODULE);
  t.equal(same.validators, 'packaged', 'an unchanged copy uses the module');
  t.equal(same.protocol.check('params', 'kickstart', { name: 'alpha' }), undefined, 'the module accepts a name of 5 characters');

  const tightened = protocolDir('tightened', (doc) => {
    doc['methods'].kickstart.params.properties.name.maxLength = 3;
  });
  const changed = loadWithPackagedValidators(tightened, NAME, MODULE);
  t.equal(changed.validators, 'compiled', 'the changed file is compiled now');
  t.equal(changed.protocol.check('params', 'kickstart', { name: 'alpha' })?.code, 'ERR_INVALID_PARAMS', 'its new limit is enforced');
  t.equal(changed.protocol.check('params', 'kickstart', { name: 'abc' }), undefined, 'and what it allows passes');
  t.equal(changed.protocol.hash, loadProtocolFile(join(tightened, `${NAME}.json`)).hash, 'its hash is the changed document\'s');

  // A change that only loosens (a new optional property) is a change too: the stale module would refuse it.
  const loosened = loadWithPackagedValidators(protocolDir('loosened', (doc) => {
    doc['methods'].kickstart.params.properties.reason = { type: 'string' };
  }), NAME, MODULE);
  t.equal(loosened.validators, 'compiled');
  t.equal(loosened.protocol.check('params', 'kickstart', { name: 'a', reason: 'why' }), undefined, 'the new property is accepted');
  t.equal(same.protocol.check('params', 'kickstart', { name: 'a', reason: 'why' })?.code, 'ERR_INVALID_PARAMS', '(the module refuses it)');

  // An edit of a description changes the document too (its hash): compiled, not taken.
  const described = loadWithPackagedValidators(protocolDir('described', (doc) => {
    doc['methods'].kickstart.description = 'Start it.';
  }), NAME, MODULE);
  t.equal(described.validators, 'compiled');
});

t.test('a module made with another ajv, other options, or none at all is not used', async (t) => {
  const source = readFileSync(MODULE, 'utf8');
  // Beside the build's output, where the module's requires of ajv's runtime resolve as the real one's do.
  const near = mkdtempSync(join(REPO_ROOT, 'dist', 'test', 'packaged-variants-'));
  t.teardown(() => rmSync(near, { recursive: true, force: true }));
  const variant = (label: string, text: string): string => {
    t.ok(label === 'copy' || text !== source, `the ${label} variant differs from the module`);
    const file = join(near, `${label}.validators.cjs`);
    writeFileSync(file, text);
    return file;
  };
  const dir = protocolDir('for-variants', () => {});
  t.equal(loadWithPackagedValidators(dir, NAME, variant('copy', source)).validators, 'packaged', 'positive control: an exact copy is used');
  t.equal(loadWithPackagedValidators(dir, NAME, variant('ajv', source.replace(/module\.exports\.__ajv = "ajv@/, 'module.exports.__ajv = "ajv@0.'))).validators, 'compiled', 'another ajv version');
  t.equal(loadWithPackagedValidators(dir, NAME, variant('options', source.replace(/"allErrors\\":false/, '"allErrors\\":true'))).validators, 'compiled', 'other ajv options');
  t.equal(loadWithPackagedValidators(dir, NAME, variant('code', source.replace(/"hash":"[0-9a-f]{64}"/, `"hash":"${'0'.repeat(64)}"`))).validators, 'compiled', 'another record of bulkhead\'s code');
  t.equal(loadWithPackagedValidators(dir, NAME, variant('no-code', source.replace(/^module\.exports\.__code = .*$/m, ''))).validators, 'compiled', 'no record of bulkhead\'s code (a module from before it was keyed)');
  t.equal(loadWithPackagedValidators(dir, NAME, join(near, 'none.validators.cjs')).validators, 'compiled', 'no module');
  t.equal(loadWithPackagedValidators(dir, NAME, variant('broken', 'throw new Error("broken")')).validators, 'compiled', 'a module that throws');
});

t.test('bulkhead\'s own code rebuilt since the module (tsc alone): the module is not used, the new code runs', async (t) => {
  const recorded = (require_(MODULE) as { __code: { files: string[] } }).__code.files;
  t.same(recorded, validatorsCodeFiles(), 'the module records the import graph of its generator and loader as it is now');
  for (const file of ['protocol/ajv.js', 'protocol/endpoint-keyword.js', 'protocol/document.js', 'protocol/compiled-protocol.js', 'protocol/hash.js', 'protocol/validators-module.js']) {
    t.ok(recorded.includes(file), `${file} is among them`);
  }
  // Copies of dist/lib beside the build (ajv resolves as from the real one), one edited as a tsc-only build would
  // leave it: the compiled code changed, the packaged module the same.
  const base = mkdtempSync(join(REPO_ROOT, 'dist', 'test', 'packaged-code-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const libCopy = async (label: string, edit?: { file: string; from: string; to: string }) => {
    const lib = join(base, label, 'lib');
    cpSync(join(REPO_ROOT, 'dist', 'lib'), lib, { recursive: true, filter: (src) => !src.endsWith('.map') && !src.endsWith('.d.ts') });
    if (edit !== undefined) {
      const file = join(lib, edit.file);
      const text = readFileSync(file, 'utf8');
      t.ok(text.includes(edit.from), `${label}: ${edit.file} has what is edited`);
      writeFileSync(file, text.replace(edit.from, () => edit.to));
    }
    return await import(pathToFileURL(join(lib, 'protocol', 'packaged-validators.js')).href) as typeof import('../lib/protocol/packaged-validators.js');
  };
  const same = await libCopy('same');
  t.equal(same.loadWithPackagedValidators(SHIPPED, NAME).validators, 'packaged', 'positive control: an unchanged copy of the build uses its module');

  // The endpoint keyword's implementation changed (its token pattern): a change the module's validators cannot know of.
  const keyword = await libCopy('keyword', { file: 'protocol/endpoint-keyword.js', from: "'^[A-Za-z0-9_-]{43}$'", to: "'^[A-Za-z0-9_-]{44}$'" });
  const rebuilt = keyword.loadWithPackagedValidators(SHIPPED, NAME);
  t.equal(rebuilt.validators, 'compiled', 'a changed keyword implementation: compiled with ajv now');
  t.equal(rebuilt.protocol.hash, schemaHash(JSON.parse(readFileSync(join(SHIPPED, `${NAME}.json`), 'utf8'))), 'the same document');

  // The document check changed (it now refuses every document): the module's "already checked" is not taken, the new
  // check runs and its refusal is what the caller gets.
  const check = await libCopy('check', { file: 'protocol/endpoint-keyword.js', from: 'export function checkEndpointDeclarations(document, source) {', to: "export function checkEndpointDeclarations(document, source) {\n    throw bulkheadError('ERR_INVALID_PROTOCOL', 'the rebuilt check refuses it');" });
  t.throws(() => check.loadWithPackagedValidators(SHIPPED, NAME), { code: 'ERR_INVALID_PROTOCOL', message: /the rebuilt check refuses it/ }, 'a changed document check runs');
});

t.test('a process that loads the control protocol loads no ajv compiler; the same file compiled does', async (t) => {
  const control = pathToFileURL(join(REPO_ROOT, 'dist/lib/daemon/control.js')).href;
  const registry = pathToFileURL(join(REPO_ROOT, 'dist/lib/protocol/registry.js')).href;
  const probe = (load: string): string[] => JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', `
    ${load}
    const { createRequire } = await import('node:module');
    console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache).filter((f) => /node_modules\\/ajv\\/dist\\/(core|compile\\/index)\\.js$/.test(f))));
  `], { encoding: 'utf8' })) as string[];
  t.same(probe(`const { loadControlProtocol } = await import(${JSON.stringify(control)}); if (loadControlProtocol().name !== ${JSON.stringify(NAME)}) throw new Error('name');`), [], 'the packaged path loads neither ajv\'s core nor its compiler');
  t.equal(probe(`const { loadProtocol } = await import(${JSON.stringify(registry)}); loadProtocol(${JSON.stringify(SHIPPED)}, ${JSON.stringify(NAME)});`).length, 2, 'positive control: compiling the same file loads both');
});
