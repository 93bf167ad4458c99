/**
 * `bulkhead validate` run as a real process: problems are printed one per line
 * with file and JSON pointer, the exit code is 1 on any problem and 0 otherwise.
 */
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, REPO_ROOT, runCli, type CliRun } from './helpers.js';

const BAD = join(FIXTURES, 'cli', 'bad');

function bulkhead(...args: string[]): Promise<CliRun> {
  return runCli(args);
}

interface JsonReport {
  ok: boolean;
  checked: Array<{ file: string; kind: string; ok: boolean }>;
  skipped: Array<{ file: string; reason: string }>;
  problems: Array<{ file: string; pointer: string; code: string; message: string }>;
}

async function report(...args: string[]): Promise<{ code: number; report: JsonReport }> {
  const run = await bulkhead('validate', '--json', ...args);
  return { code: run.code, report: JSON.parse(run.stdout) as JsonReport };
}

t.test('a protocol with a bad schema: file and pointer on one line, exit 1', async (t) => {
  const file = join(BAD, 'protocols', 'com.bad.schema.json');
  const run = await bulkhead('validate', file);
  t.equal(run.code, 1);
  const lines = run.stdout.split('\n').filter((l) => l.includes('(ERR_'));
  t.equal(lines.length, 1, 'one line per problem');
  t.match(lines[0], `${file}: /methods/echo/params: `);
  t.match(lines[0], /\(ERR_INVALID_PROTOCOL\)$/);
});

t.test('good files pass with exit 0', async (t) => {
  const run = await bulkhead('validate', join(FIXTURES, 'protocols'), join(REPO_ROOT, 'sandbox-profiles'), join(FIXTURES, 'cli', 'app', 'bulkhead.json'));
  t.equal(run.code, 0, run.stdout);
  t.match(run.stdout, /^ok: \d+ files checked/m);
  const json = await report(join(FIXTURES, 'protocols'), join(FIXTURES, 'cli', 'app', 'bulkhead.json'));
  t.equal(json.code, 0);
  t.equal(json.report.ok, true);
  t.same(json.report.problems, []);
  t.same(json.report.checked.filter((c) => c.kind === 'config').map((c) => c.file), [join(FIXTURES, 'cli', 'app', 'bulkhead.json')]);
  t.ok(json.report.checked.filter((c) => c.kind === 'protocol').some((c) => c.file.endsWith('com.test.echo.json')), 'protocols found in the directory');
});

t.test('--json lists every problem in a directory with its pointer', async (t) => {
  const { code, report: r } = await report(BAD);
  t.equal(code, 1);
  t.equal(r.ok, false);
  const found = r.problems.map((p) => [p.file.slice(BAD.length + 1), p.pointer, p.code]);
  t.same(found, [
    ['bulkhead.json', '/services/1/name', 'ERR_INVALID_MANIFEST'],
    ['bulkhead.json', '/services/2/entry', 'ERR_INVALID_MANIFEST'],
    ['bulkhead.json', '/services/3/protocol', 'ERR_UNKNOWN_PROTOCOL'],
    ['bulkhead.json', '/services/4/sandbox', 'ERR_INVALID_MANIFEST'],
    ['bulkhead.json', '/services/5/name', 'ERR_INVALID_MANIFEST'],
    ['bulkhead.json', '/services/6/launch/throttleMs', 'ERR_INVALID_MANIFEST'],
    ['protocols/com.bad.filename.json', '/name', 'ERR_INVALID_PROTOCOL'],
    ['protocols/com.bad.noversion.json', '/version', 'ERR_INVALID_PROTOCOL'],
    ['protocols/com.bad.schema.json', '/methods/echo/params', 'ERR_INVALID_PROTOCOL'],
    ['sandbox-profiles/bad-limits.json', '/colour', 'ERR_INVALID_PROFILE'],
    ['sandbox-profiles/bad-limits.json', '/limits/memoryMiB', 'ERR_INVALID_PROFILE'],
  ]);
  for (const p of r.problems) t.not(p.message, '', `${p.pointer} has a message`);
});

t.test('config-level problems point into the config', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cases: Array<[string, string, string]> = [
    ['not-json', '{ "services": [', ''],
    ['not-array', '{ "services": {} }', '/services'],
    ['unknown-key', '{ "services": [], "servics": [] }', '/servics'],
    ['bad-root', '{ "root": "./nowhere", "services": [] }', '/root'],
    ['unknown-field', JSON.stringify({ services: [{ name: 'a', entry: 'x.js', protocol: 'p', colour: 'red' }] }), '/services/0/colour'],
    ['missing-name', JSON.stringify({ services: [{ entry: 'x.js', protocol: 'p' }] }), '/services/0/name'],
    ['daemon-mode', JSON.stringify({ services: [], daemon: { socketPath: 'run/b.sock', socketMode: '0666' } }), '/daemon/socketMode'],
  ];
  for (const [name, text] of cases) writeFileSync(join(dir, `${name}.json`), text);
  // One run over the directory: --as makes every file a config.
  const { code, report: r } = await report('--as', 'config', dir);
  t.equal(code, 1);
  writeFileSync(join(dir, 'daemon-ok.json'), JSON.stringify({ services: [], daemon: { socketPath: 'run/b.sock', stateDir: 'state' } }));
  t.equal((await report('--as', 'config', join(dir, 'daemon-ok.json'))).code, 0, 'a valid daemon section passes');
  for (const [name, , pointer] of cases) {
    const file = join(dir, `${name}.json`);
    t.same(r.problems.filter((p) => p.file === file).map((p) => p.pointer), [pointer], `${name}: pointer ${pointer || '(whole file)'}`);
  }
});

t.test('validating a config launches nothing, even with launch.runAtLoad', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bulkhead-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const marker = join(dir, 'launched');
  mkdirSync(join(dir, 'protocols'));
  writeFileSync(join(dir, 'protocols', 'com.test.echo.json'), JSON.stringify({ name: 'com.test.echo', version: '1.0.0', methods: {} }));
  // Were it ever run, this entry would leave a marker before anything else.
  writeFileSync(join(dir, 'service.js'), `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'x');\n`);
  writeFileSync(join(dir, 'bulkhead.json'), JSON.stringify({ services: [{ name: 'eager', entry: './service.js', protocol: 'com.test.echo', launch: { runAtLoad: true } }] }));
  const run = await bulkhead('validate', join(dir, 'bulkhead.json'));
  t.equal(run.code, 0, run.stdout);
  t.notOk(existsSync(marker), 'the helper never ran');
});

t.test('paths that do not exist, and files of no known kind, are problems', async (t) => {
  const missing = await bulkhead('validate', join(FIXTURES, 'no-such-dir'));
  t.equal(missing.code, 1);
  t.match(missing.stdout, '(ENOENT)');
  const unknown = await report(join(REPO_ROOT, 'package.json'));
  t.equal(unknown.code, 1, 'a file named explicitly must be one of ours');
  t.equal(unknown.report.problems[0]?.code, 'ERR_INVALID_OPTION');
  const scanned = await report(REPO_ROOT);
  t.ok(scanned.report.skipped.some((s) => s.file.endsWith('package.json')), 'found under a directory it is skipped');
});

t.test('usage errors exit 1, --help exits 0 with examples and exit codes', async (t) => {
  t.equal((await bulkhead('no-such-command')).code, 1);
  t.equal((await bulkhead('validate', '--as', 'nonsense', '.')).code, 1);
  t.equal((await bulkhead('types', join(FIXTURES, 'protocols'))).code, 1, 'types without -o');
  for (const args of [['--help'], ['validate', '--help'], ['types', '--help']]) {
    const help = await bulkhead(...args);
    t.equal(help.code, 0, `${args.join(' ')} exits 0`);
    t.match(help.stdout, /Examples:/);
    t.match(help.stdout, /2\s+internal error/);
  }
});
