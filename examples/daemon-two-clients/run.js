// Daemon mode with two client apps of different identities, all in a temp dir:
//
//   1. `bulkhead daemon` runs bulkhead.json's services on an owner-only Unix socket
//   2. `bulkhead identity issue` makes two identities from the daemon's CA: billing and reports
//   3. app.js runs once as each: both may call greeter (clients: ["*"]) and each is
//      greeted by its own verified name (ctx.peer); only billing may call ledger
//      (clients: ["billing"]), reports is refused with ERR_NOT_PERMITTED
//   4. `bulkhead ps --json` shows the refusal launched nothing; SIGTERM stops the daemon
//
//   node examples/daemon-two-clients/run.js
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
// The `bulkhead` command of the installed package (in your project: `npx bulkhead`).
const packageJson = fileURLToPath(import.meta.resolve('bulkhead/package.json'));
const CLI = join(dirname(packageJson), JSON.parse(readFileSync(packageJson, 'utf8')).bin.bulkhead);

const work = mkdtempSync(join(tmpdir(), 'bulkhead-daemon-example-'));
const socket = join(work, 'run', 'bulkhead.sock');
const stateDir = join(work, 'state'); // the daemon's CA, identities and schedule state
const identityDir = join(stateDir, 'identities');
// Every `bulkhead` command finds this daemon through these (or pass --socket / --state-dir).
const env = { ...process.env, BULKHEAD_SOCKET: socket, BULKHEAD_STATE_DIR: stateDir, NO_COLOR: '1' };

/** Runs a node script; resolves with its exit code and output. */
function run(script, args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [script, ...args], { env, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}
const bulkhead = (...args) => run(CLI, args);
const lastLine = (stdout, prefix) => JSON.parse(stdout.split('\n').find((l) => l.startsWith(prefix)).slice(prefix.length));

const result = { ok: false };
const t0 = performance.now();
const ms = () => `${Math.round(performance.now() - t0)} ms`;
let daemon;
const log = []; // the daemon's structured log: one JSON object per line on stderr
try {
  // 1. The daemon.
  daemon = spawn(process.execPath, [CLI, 'daemon', '--config', join(here, 'bulkhead.json')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise((resolve) => daemon.once('exit', (code, signal) => resolve({ code, signal })));
  const listening = new Promise((resolve, reject) => {
    createInterface({ input: daemon.stderr }).on('line', (line) => {
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        return; // not a log line
      }
      log.push(entry);
      if (entry.event === 'listening') resolve(entry);
    });
    void exited.then(({ code }) => reject(new Error(`the daemon exited (code ${code}) before listening`)));
    setTimeout(() => reject(new Error('the daemon did not listen within 15 s')), 15_000).unref();
  });
  const up = await listening;
  Object.assign(result, { daemonPid: daemon.pid, workDir: work });
  const socketMode = (statSync(socket).mode & 0o777).toString(8).padStart(4, '0');
  console.log(`1. bulkhead daemon (pid ${daemon.pid}) listens on ${socket} (mode ${socketMode}); services: ${up.services.join(', ')} [${ms()}]`);

  // 2. Two identities from the daemon's CA.
  const names = ['billing', 'reports'];
  for (const [i, issued] of (await Promise.all(names.map((name) => bulkhead('identity', 'issue', name, '--json')))).entries()) {
    if (issued.code !== 0) throw new Error(`identity issue ${names[i]} exited ${issued.code}: ${issued.stderr}`);
    const { serial, certPath, keyPath } = JSON.parse(issued.stdout);
    console.log(`2. bulkhead identity issue ${names[i]}: serial ${serial}\n   ${certPath}, ${keyPath}`);
  }

  // 3. The two apps, one process each, at the same time.
  console.log(`3. each app calls greeter (clients: ["*"]), then ledger (clients: ["billing"]) [${ms()}]`);
  const apps = {};
  for (const [i, app] of (await Promise.all(names.map((name) => run(join(here, 'app.js'), [name, identityDir, socket])))).entries()) {
    process.stdout.write(app.stdout.split('\n').filter((l) => l.startsWith('[')).map((l) => `   ${l}\n`).join(''));
    if (app.code !== 0) throw new Error(`app ${names[i]} exited ${app.code}: ${app.stderr}`);
    apps[names[i]] = lastLine(app.stdout, 'APP-RESULT ');
  }
  result.apps = apps;

  // 4. What the daemon saw.
  const ps = await bulkhead('ps', '--json');
  if (ps.code !== 0) throw new Error(`ps exited ${ps.code}: ${ps.stderr}`);
  result.launches = Object.fromEntries(JSON.parse(ps.stdout).map((s) => [s.name, s.launches]));
  console.log(`4. bulkhead ps --json: launches ${JSON.stringify(result.launches)} (the refused call launched nothing) [${ms()}]`);
  // A handshake refusal is logged as "refused", with its reason and the client's kernel uid/pid.
  result.denied = log.filter((e) => e.event === 'refused').map((e) => ({ code: e.code, client: e.client, service: e.service }));
  for (const e of log.filter((x) => x.event === 'refused')) console.log(`   daemon log: refused ${e.client} -> ${e.service} (${e.code}, ${e.reason}; uid ${e.uid}, pid ${e.peerPid})`);

  daemon.kill('SIGTERM');
  result.daemonExit = await exited;
  result.socketRemoved = !existsSync(socket);
  console.log(`5. SIGTERM: the daemon stopped its helpers and exited with code ${result.daemonExit.code}; socket removed: ${result.socketRemoved} [${ms()}]`);

  const { billing, reports } = apps;
  result.ok = billing.greeter.peer === 'billing' && reports.greeter.peer === 'reports'
    && billing.ledger.by === 'billing' && reports.ledger.code === 'ERR_NOT_PERMITTED'
    && result.launches.ledger === 1 && result.daemonExit.code === 0 && result.socketRemoved;
} catch (err) {
  result.error = { message: String(err?.message ?? err) };
} finally {
  if (daemon !== undefined && daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
console.log(`EXAMPLE-RESULT ${JSON.stringify(result)}`);
if (!result.ok) process.exitCode = 1;
