// Makes docs/dashboard.png: a daemon with three services (one sandboxed), some
// calls, a helper killed and relaunched, a sandboxed one stopped by its memory
// limit, then the Activity Monitor in headless Chromium. Also prints a
// /metrics sample. Needs `npm run build`, /usr/bin/chromium and playwright-core.
//   node scripts/dashboard-screenshot.mjs [out.png]
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = process.argv[2] ?? join(root, 'docs', 'dashboard.png');
const cli = join(root, 'dist', 'lib', 'cli', 'main.js');
const live = join(root, 'test', 'fixtures', 'cli', 'live');
const work = mkdtempSync(join(tmpdir(), 'bulkhead-shot-'));
const services = JSON.parse(readFileSync(join(live, 'bulkhead.json'), 'utf8')).services
  .map((s) => (s.name === 'chatty' ? { ...s, launch: { throttleMs: 0, keepAlive: true } } : s));
const config = join(work, 'bulkhead.json');
writeFileSync(config, JSON.stringify({ root: live, services, daemon: { socketPath: 'run/bh.sock', stateDir: 'state' } }));
const run = (...args) => execFileSync(process.execPath, [cli, ...args, '--config', config], { encoding: 'utf8' });

const daemon = spawn(process.execPath, [cli, 'daemon', '--config', config, '--http', '127.0.0.1:0', '--no-log-file'], { stdio: ['ignore', 'ignore', 'pipe'] });
await new Promise((resolve) => createInterface({ input: daemon.stderr }).on('line', (line) => { if (line.includes('"event":"http"')) resolve(); }));
try {
  run('identity', 'issue', 'app');
  const { RemoteBroker } = await import(join(root, 'dist', 'lib', 'daemon', 'remote-broker.js'));
  const { readIdentity } = await import(join(root, 'dist', 'lib', 'identity', 'index.js'));
  const client = new RemoteBroker(join(work, 'run', 'bh.sock'), { name: 'app', ...readIdentity(join(work, 'state', 'identities'), 'app') }, { protocolsDir: join(live, 'protocols') });
  const url = run('dashboard').trim();
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  await page.goto(url);
  const say = (name, n) => Promise.all(Array.from({ length: n }, (_, i) => client.connect(name, { protocol: 'com.test.cli.chatty' }).call('say', { text: `hello ${i}` })));
  await say('chatty', 20);
  await say('boxed', 10);
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    await say('chatty', 5);
    if (i === 6) process.kill(JSON.parse(run('ps', '--json')).find((s) => s.name === 'chatty').pid, 'SIGKILL');
    if (i === 10) await client.connect('hog', { protocol: 'com.test.cli.chatty' }).call('hog', {}).catch(() => undefined);
  }
  await page.locator('#log-filter').fill('');
  await page.screenshot({ path: out, fullPage: true });
  process.stdout.write(`wrote ${out}\n\n`);
  process.stdout.write(await (await fetch(url.replace(/\?token=.*$/, 'metrics'))).text());
  await browser.close();
  await client.close();
} finally {
  daemon.kill('SIGTERM');
  await new Promise((resolve) => daemon.once('exit', resolve));
  rmSync(work, { recursive: true, force: true });
}
