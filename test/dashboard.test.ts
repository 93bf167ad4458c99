/**
 * `bulkhead daemon --http`: /metrics in Prometheus text, the token rules of
 * the Activity Monitor, and the page itself in a real headless Chromium
 * (Debian's `chromium`, driven by playwright-core): every service's pid and
 * state as `ps` prints them, a killed helper's new pid appearing without a
 * reload, action buttons only for the admin token, nothing loaded from
 * elsewhere.
 */
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServiceStatus } from '../lib/broker/service-supervisor.js';
import { CLI, FIXTURES, runCli } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const LIVE = join(FIXTURES, 'cli', 'live');

const work = mkdtempSync(join(tmpdir(), 'bulkhead-dashboard-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const services = (JSON.parse(readFileSync(join(LIVE, 'bulkhead.json'), 'utf8')) as { services: Array<Record<string, unknown>> }).services
  .filter((s) => s['name'] !== 'hog')
  // chatty is kept alive: killed, it comes back by itself with a new pid.
  .map((s) => (s['name'] === 'chatty' ? { ...s, launch: { throttleMs: 0, keepAlive: true } } : s));
const config = join(work, 'bulkhead.json');
writeFileSync(config, JSON.stringify({ root: LIVE, services, daemon: { socketPath: 'run/bh.sock', stateDir: 'state' } }));
const cli = (...args: string[]) => runCli([...args], { cwd: work, env: { ...process.env, NO_COLOR: '1' } });

const daemon: ChildProcess = spawn(process.execPath, [CLI, 'daemon', '--config', config, '--http', '127.0.0.1:0', '--no-log-file'], { stdio: ['ignore', 'ignore', 'pipe'] });
t.teardown(async () => {
  if (daemon.exitCode === null && daemon.signalCode === null) {
    daemon.kill('SIGKILL');
    await new Promise((resolve) => daemon.once('exit', resolve));
  }
});
const httpLine = await new Promise<Record<string, string>>((resolve, reject) => {
  daemon.once('exit', (code) => reject(new Error(`daemon exited ${code}`)));
  createInterface({ input: daemon.stderr! }).on('line', (line) => {
    if (line.includes('"event":"http"')) resolve(JSON.parse(line) as Record<string, string>);
  });
});

async function ps(): Promise<ServiceStatus[]> {
  const run = await cli('ps', '--json', '--config', config);
  if (run.code !== 0) throw new Error(run.stderr);
  return JSON.parse(run.stdout) as ServiceStatus[];
}

t.test('bulkhead dashboard prints the admin URL; the daemon logs the viewer URL', async (t) => {
  const admin = await cli('dashboard', '--config', config);
  t.equal(admin.code, 0, admin.stderr);
  t.match(admin.stdout.trim(), /^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{20,}$/, 'http://127.0.0.1:PORT/?token=...');
  const viewer = await cli('dashboard', '--config', config, '--read-only');
  t.equal(viewer.stdout.trim(), httpLine['dashboard'], 'the read-only URL is the one in the daemon\'s log');
  t.not(admin.stdout.trim(), viewer.stdout.trim(), 'the admin token is another one, never logged');
});

t.test('tokens: none or a wrong one is 401; the viewer token cannot act', async (t) => {
  const base = httpLine['metrics']!.replace(/metrics$/, '');
  t.equal((await fetch(base)).status, 401, 'no token');
  t.equal((await fetch(`${base}?token=nope`)).status, 401, 'wrong token');
  t.equal((await fetch(`${base}events?token=nope`)).status, 401, 'wrong token on the event stream');
  const page = await fetch(httpLine['dashboard']!);
  t.equal(page.status, 200, 'control: the right token opens the page');
  const html = await page.text();
  t.notMatch(html, /(src|href)=["']?(https?:)?\/\//i, 'the page references nothing remote');
  t.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  const viewerAct = await fetch(`${base}api/kickstart?service=chatty&token=${new URL(httpLine['dashboard']!).searchParams.get('token')!}`, { method: 'POST' });
  t.equal(viewerAct.status, 403, 'the read-only token may not kickstart');
});

t.test('GET /metrics: Prometheus text with calls, errors by code, durations and restarts per service', async (t) => {
  await cli('kickstart', 'chatty', '--config', config);
  const before = (await ps()).find((s) => s.name === 'chatty')!;
  // A crash through the control socket: ERR_INTERRUPTED for the caller, a relaunch (keepAlive) after it.
  const { RemoteBroker } = await import('../lib/daemon/remote-broker.js');
  const { readIdentity } = await import('../lib/identity/index.js');
  const issued = await cli('identity', 'issue', 'app', '--config', config);
  t.equal(issued.code, 0, issued.stderr);
  // Routed: per-call errors and durations are measured where the calls pass, and only routed
  // calls pass through the daemon (a direct channel's calls are counted from the helper's reports).
  const client = new RemoteBroker(join(work, 'run', 'bh.sock'), { name: 'app', ...readIdentity(join(work, 'state', 'identities'), 'app') }, { protocolsDir: join(LIVE, 'protocols'), direct: false });
  t.teardown(() => client.close());
  const chatty = client.connect('chatty', { protocol: 'com.test.cli.chatty' });
  // Calls are timed from the first scrape on (counted always): scrape once before them.
  t.equal((await fetch(httpLine['metrics']!)).status, 200);
  await chatty.call('say', { text: 'one' });
  await chatty.call('say', { text: 'two' });
  const crashed = await chatty.call('crash', { code: 7 }).catch((err: { code: string }) => err);
  t.equal((crashed as { code: string }).code, 'ERR_INTERRUPTED');
  const res = await fetch(httpLine['metrics']!);
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const text = await res.text();
  for (const name of ['bulkhead_calls_total', 'bulkhead_call_errors_total', 'bulkhead_call_duration_seconds', 'bulkhead_restarts_total', 'bulkhead_resident_memory_bytes', 'bulkhead_calls_in_flight', 'bulkhead_launches_total', 'bulkhead_crashes_total', 'bulkhead_cpu_seconds_total', 'bulkhead_watchdog_misses_total', 'bulkhead_daemon_connections_total', 'bulkhead_daemon_refusals_total']) {
    t.match(text, new RegExp(`^# TYPE ${name} (counter|gauge|histogram)$`, 'm'), `# TYPE ${name}`);
  }
  t.match(text, /^bulkhead_calls_total\{service="chatty"\} 3$/m, 'three calls reached chatty');
  t.match(text, /^bulkhead_call_errors_total\{service="chatty",code="ERR_INTERRUPTED"\} 1$/m, 'the crash counted under the code the caller got');
  t.match(text, /^bulkhead_call_duration_seconds_count\{service="chatty"\} 3$/m);
  t.match(text, /^bulkhead_call_duration_seconds_bucket\{service="chatty",le="\+Inf"\} 3$/m);
  t.match(text, /^bulkhead_crashes_total\{service="chatty",reason="exit code 7"\} 1$/m, 'the crash, by reason');
  t.match(text, /^bulkhead_daemon_connections_total \d+$/m);
  const rss = Number(/^bulkhead_resident_memory_bytes\{service="chatty"\} (\d+)$/m.exec(text)?.[1]);
  // keepAlive relaunches it; the new helper's memory is what is reported once it runs.
  t.ok(rss >= 0, `resident memory reported (${rss})`);
  t.ok(before.launches >= 1);
});

const playwright = await import('playwright-core').catch(() => undefined);
const noBrowser = !existsSync(CHROMIUM) ? `no ${CHROMIUM} (apt-get install -y chromium)` : playwright === undefined ? 'playwright-core is not installed' : false;

t.test('the page in headless Chromium: pids and states as ps prints them, a killed helper\'s new pid appears live', { skip: noBrowser }, async (t) => {
  const { chromium } = playwright!;
  await cli('kickstart', 'chatty', '--config', config);
  await cli('kickstart', 'boxed', '--config', config);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
  t.teardown(() => browser.close());
  const adminUrl = (await cli('dashboard', '--config', config)).stdout.trim();
  const origin = new URL(adminUrl).origin;
  const page = await browser.newPage();
  const requests: string[] = [];
  page.on('request', (request) => requests.push(request.url()));
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(adminUrl);

  // Each service is one element with its name, pid and state as `ps` prints them.
  const listed = await ps();
  for (const s of listed) {
    const pid = s.pid === null ? '-' : String(s.pid);
    const row = page.locator(`tr.service[data-service="${s.name}"][data-pid="${pid}"][data-state="${s.state}"]`);
    await row.waitFor();
    t.equal(await row.locator('td.name').textContent(), s.name);
    t.equal(await row.locator('td.pid').textContent(), pid, `${s.name}: pid ${pid}`);
    t.equal(await row.locator('td.state').textContent(), s.state, `${s.name}: ${s.state}`);
  }
  const chatty = listed.find((s) => s.name === 'chatty')!;
  t.equal(chatty.state, 'running');

  // Killed, keepAlive relaunches it; the page shows the new pid without a reload.
  process.kill(chatty.pid!, 'SIGKILL');
  const relaunched = page.locator('tr.service[data-service="chatty"][data-state="running"]:not([data-pid="' + String(chatty.pid) + '"]):not([data-pid="-"])');
  await relaunched.waitFor({ timeout: 30_000 });
  const newPid = Number(await relaunched.getAttribute('data-pid'));
  t.not(newPid, chatty.pid, `new pid ${newPid} on the page`);
  t.equal((await ps()).find((s) => s.name === 'chatty')!.pid, newPid, 'the pid ps reports');
  await page.locator('#events li.crash', { hasText: 'SIGKILL' }).first().waitFor();
  t.pass('the crash is on the timeline with its signal');
  t.ok(await page.locator('#sandbox table.rules[data-service="boxed"] td.enforced').count() > 0, 'the sandbox enforcement table lists boxed\'s rules');

  // The log filter narrows the tail to matching lines.
  await page.locator('#log-filter').fill('launched pid');
  const logText = await page.locator('#log').textContent();
  t.match(logText ?? '', /launched pid/);
  t.notMatch(logText ?? '', /stdout: chatty \d+ ready/, 'lines that do not match are hidden');

  // The admin page's kickstart button works; the viewer page has no visible buttons.
  const stopButton = page.locator('tr.service[data-service="boxed"] button[data-action="stop"]');
  t.ok(await stopButton.isVisible(), 'admin: buttons shown');
  await stopButton.click();
  await page.locator('tr.service[data-service="boxed"][data-pid="-"]').waitFor();
  t.pass('stop from the page stopped boxed');
  const viewer = await browser.newPage();
  await viewer.goto((await cli('dashboard', '--config', config, '--read-only')).stdout.trim());
  await viewer.locator('tr.service[data-service="chatty"]').waitFor();
  t.notOk(await viewer.locator('tr.service[data-service="chatty"] button[data-action="stop"]').isVisible(), 'viewer: no action buttons');

  t.same(requests.filter((url) => !url.startsWith(origin)), [], 'the page loaded nothing from elsewhere');
  t.same(pageErrors, [], 'no script errors on the page');
  const shot = process.env['BULKHEAD_DASHBOARD_SCREENSHOT'];
  if (shot !== undefined && shot !== '') await page.screenshot({ path: shot, fullPage: true });
});
