// What observing the daemon costs the daemon: CPU time (utime + stime from
// /proc, so other load on the machine does not count) and RSS over a window
// (default 30 s) in four phases: no --http; --http with nobody looking;
// /metrics scraped every second; one dashboard event stream open (what a
// browser tab costs the server). Two helpers run throughout.
//   node scripts/observe-cost.mjs [seconds]
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const seconds = Number(process.argv[2] ?? 30);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'lib', 'cli', 'main.js');
const live = join(root, 'test', 'fixtures', 'cli', 'live');
const work = mkdtempSync(join(tmpdir(), 'bulkhead-cost-'));
const config = join(work, 'bulkhead.json');
const services = JSON.parse(readFileSync(join(live, 'bulkhead.json'), 'utf8')).services.filter((s) => s.name !== 'hog');
writeFileSync(config, JSON.stringify({ root: live, services, daemon: { socketPath: 'run/bh.sock', stateDir: 'state' } }));
const TICK = 100; // USER_HZ

function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICK;
}
function rssMiB(pid) {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startDaemon(http) {
  const daemon = spawn(process.execPath, [cli, 'daemon', '--config', config, '--no-log-file', ...(http ? ['--http', '127.0.0.1:0'] : [])], { stdio: ['ignore', 'ignore', 'pipe'] });
  let url;
  await new Promise((resolve) => createInterface({ input: daemon.stderr }).on('line', (line) => {
    if (line.includes('"event":"http"')) { url = JSON.parse(line).dashboard; resolve(); }
    if (!http && line.includes('"event":"listening"')) resolve();
  }));
  for (const name of ['chatty', 'boxed']) execFileSync(process.execPath, [cli, 'kickstart', name, '--config', config]);
  await sleep(2000);
  return { daemon, url };
}

async function phase(name, pid, during) {
  const cpu0 = cpuMs(pid);
  const t0 = performance.now();
  const count = await during();
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuMs(pid) - cpu0;
  process.stdout.write(`${name.padEnd(44)} CPU ${(cpu / wall).toFixed(2).padStart(6)} ms/s (${(cpu / wall / 10).toFixed(3)} % of a core)${count ? `, ${(cpu / count).toFixed(2)} ms per ${count > 0 ? 'scrape' : ''}` : ''}; RSS ${rssMiB(pid).toFixed(1)} MiB\n`);
}

const get = (url) => new Promise((resolve, reject) => request(url, (res) => { res.resume(); res.on('end', resolve); }).on('error', reject).end());

try {
  const plain = await startDaemon(false);
  await phase('daemon without --http', plain.daemon.pid, () => sleep(seconds * 1000));
  plain.daemon.kill('SIGTERM');
  await new Promise((r) => plain.daemon.once('exit', r));

  const { daemon, url } = await startDaemon(true);
  const base = url.replace(/\?token=.*$/, '');
  await phase('--http, nobody looking', daemon.pid, () => sleep(seconds * 1000));
  await get(`${base}metrics`); // the first scrape loads prom-client
  process.stdout.write(`after the first scrape (prom-client loaded)     RSS ${rssMiB(daemon.pid).toFixed(1)} MiB\n`);
  await phase('/metrics scraped every 1 s', daemon.pid, async () => {
    let n = 0;
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) { await get(`${base}metrics`); n++; await sleep(1000); }
    return n;
  });
  const stream = await new Promise((resolve) => {
    const req = request(`${base}events?token=${new URL(url).searchParams.get('token')}`, (res) => { res.on('data', () => undefined); resolve(req); });
    req.end();
  });
  await phase('one dashboard open (SSE, 1 snapshot/s)', daemon.pid, () => sleep(seconds * 1000));
  stream.destroy();
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('exit', r));
} finally {
  rmSync(work, { recursive: true, force: true });
}
