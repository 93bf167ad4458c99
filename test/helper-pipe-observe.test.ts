// The broker says `{"bulkhead":"observe"}` on a helper's hand-off pipe once. A helper that called
// connect() before serve() has the pipe open before DirectChannels listens for that line, so the
// line must be remembered: DirectChannels built after it must time its calls. Real pipe, real child.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

const dir = mkdtempSync(join(tmpdir(), 'bulkhead-pipe-observe-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const script = join(dir, 'child.mjs');
writeFileSync(script, `
const { openHelperPipe } = await import(${JSON.stringify(new URL('../lib/connection/helper-pipe.js', import.meta.url).href)});
const { DirectChannels } = await import(${JSON.stringify(new URL('../lib/connection/direct-server.js', import.meta.url).href)});
const keepAlive = setTimeout(() => {}, 30_000);
if (!openHelperPipe(3)) throw new Error('no pipe');
// Added after the pipe's own listener: runs after the line was dispatched, before any DirectChannels exists.
process.on('message', () => {
  const channels = DirectChannels.open(3, () => { throw new Error('no channel expected'); }, {}, {});
  process.stdout.write(JSON.stringify({ timing: channels.timing }));
  clearTimeout(keepAlive);
  process.exit(0);
});
`);

/** Starts the child, sends `line` on its pipe (fd 3), returns whether its DirectChannels times calls. */
async function timingAfter(line: string): Promise<boolean> {
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  (child.stdio[3] as NodeJS.WritableStream).write(`${line}\n`);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`child exited with ${String(code)}: ${out}`);
  return (JSON.parse(out) as { timing: boolean }).timing;
}

t.test('an observe line that came before DirectChannels existed still makes it time calls', async (t) => {
  t.equal(await timingAfter('{"bulkhead":"observe"}'), true);
});

t.test('control: another line does not', async (t) => {
  t.equal(await timingAfter('{"bulkhead":"close","id":1}'), false);
});
