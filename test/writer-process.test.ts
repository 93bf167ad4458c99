// The broker's cache writers (lib/broker/writer-process.ts): a writer that cannot start settles
// with code null instead of throwing or leaving an 'error' without a listener; one that runs gets
// TMPDIR and PATH only (plus what the caller passes), and its stdout is read.
import t from 'tap';
import { tmpdir } from 'node:os';
import { runWriter } from '../lib/broker/writer-process.js';

t.test('a node binary that does not exist: settles with code null, no uncaught error', async (t) => {
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown): void => void uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  t.teardown(() => process.off('uncaughtException', onUncaught));
  const hold = setInterval(() => undefined, 1000);
  t.same(await runWriter('/nonexistent/node', ['-e', '0']), { code: null, out: '' });
  // An argument node's spawn refuses synchronously (a NUL byte) is a settled promise too.
  t.same(await runWriter(process.execPath, ['-e', '0\0']), { code: null, out: '' });
  clearInterval(hold);
  t.same(uncaught, []);
});

t.test('positive control: a writer runs, prints, and sees TMPDIR and PATH, not the broker env', async (t) => {
  process.env['BULKHEAD_TEST_SECRET'] = 'x';
  t.teardown(() => delete process.env['BULKHEAD_TEST_SECRET']);
  // The writer holds neither the loop nor its stdout pipe (an app may exit meanwhile): this test holds it.
  const hold = setInterval(() => undefined, 1000);
  const r = await runWriter(process.execPath, ['-e', 'process.stdout.write(JSON.stringify(process.env))'], { EXTRA: '1' });
  clearInterval(hold);
  t.equal(r.code, 0);
  const env = JSON.parse(r.out) as Record<string, string>;
  t.equal(env['TMPDIR'], tmpdir());
  t.equal(env['EXTRA'], '1');
  t.ok(env['PATH']);
  t.notOk('BULKHEAD_TEST_SECRET' in env);
});

t.test('the writer does not keep its parent alive (child and stdout pipe unref-ed)', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const url = new URL('../lib/broker/writer-process.js', import.meta.url).href;
  const started = Date.now();
  // The parent starts a writer that sleeps 20 s and must exit at once regardless.
  execFileSync(process.execPath, ['--input-type=module', '-e', `import(${JSON.stringify(url)}).then((m) => { void m.runWriter(process.execPath, ['-e', 'setTimeout(() => {}, 20000)']); })`], { timeout: 15_000 });
  t.ok(Date.now() - started < 15_000, 'the parent exited before its writer');
});
