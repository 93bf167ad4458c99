// Round eight (issue 19), bench only: what a sign of death before the EOF would buy a relaunch, emulated without
// a library change. The prewarmed echo service of fixtures/echo-robust-service.js locks a robust mutex in its node
// (koffi); for each crash native/robust-waiter.c blocks on it. Crashes alternate between two callers:
//   eof:  SIGKILL to node, a call at once, retried on ERR_INTERRUPTED until the new helper answers (crash.mjs):
//         the first call goes to the dying helper and fails at its channel's close;
//   sign: SIGKILL to node; at the waiter's EOF (the kernel's robust-list walk at the start of exit_mm) the bench
//         calls broker.kill(SIGKILL), which takes over at once, as the broker would at such a sign, then calls.
// Prints per caller the kill → reply p25 / p50 / p75 (ms) and, for `sign`, kill → the waiter's EOF.
// usage: node bench/ab/prewarm/early-relaunch.mjs BUILD_DIR N   (unsandboxed; gcc on PATH)
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MSG, sleep } from './setup.mjs';
const WT = process.argv[2];
const N = Number(process.argv[3] ?? 20);
const WAITER = join(mkdtempSync(join(tmpdir(), 'early-relaunch-')), 'robust-waiter');
execFileSync('gcc', ['-O2', '-o', WAITER, new URL('native/robust-waiter.c', import.meta.url).pathname]);
const { Broker, isBulkheadError } = await import(`${WT}/dist/lib/index.js`);
const broker = new Broker({ root: `${WT}/bench/fixtures/` });
broker.register({ name: 'echo', entry: './echo-robust-service.js', protocol: 'com.bench.echo', launch: { throttleMs: 0, maxRestarts: 10000, prewarm: true } });
const c = broker.connect('echo');
await c.call('echo', MSG);
const q = (a, f) => [...a].sort((x, y) => x - y)[Math.floor(a.length * f)];
const fmt = (a) => `p25 ${q(a, 0.25).toFixed(2)} p50 ${q(a, 0.5).toFixed(2)} p75 ${q(a, 0.75).toFixed(2)}`;
const res = { eof: [], sign: [], signAt: [] };
// Every helper node makes its page: removed at the end for every pid seen.
const seen = new Set();
/** Calls until the helper that answers is not `pid`; the time of that reply. */
async function served(pid) {
  for (;;) {
    try { await c.call('echo', MSG); const at = performance.now(); if (broker.status('echo').pid !== pid) return at; }
    catch (e) { if (!isBulkheadError(e) || e.code !== 'ERR_INTERRUPTED') throw e; }
  }
}
for (let i = 0; i < 2 * N; i++) {
  const mode = i % 2 === 0 ? 'eof' : 'sign';
  while (broker.status('echo').sparePid === null) await sleep(2);
  await sleep(30);
  const pid = broker.status('echo').pid;
  seen.add(pid).add(broker.status('echo').sparePid);
  const file = `/dev/shm/bulkhead-sign-${pid}`;
  const w = spawn(WAITER, [file, '--existing'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  w.stdout.setEncoding('utf8');
  const ready = new Promise((ok, no) => { w.stdout.on('data', (d) => { out += d; if (out.includes('ready')) ok(); }); w.once('exit', (code) => no(new Error(`waiter exited ${code} before it was ready`))); });
  await ready;
  await sleep(5);
  let sub;
  const exited = new Promise((ok) => { sub = broker.on('exit', ok); });
  const signEnd = new Promise((ok) => w.stdout.once('end', ok));
  const s = performance.now();
  process.kill(pid, 'SIGKILL');
  let at;
  if (mode === 'eof') at = await served(pid);
  else {
    await signEnd;
    res.signAt.push(performance.now() - s);
    broker.kill('echo', 'SIGKILL');
    at = await served(pid);
  }
  res[mode].push(at - s);
  await exited;
  sub.dispose();
  await new Promise((ok) => (w.exitCode === null ? w.once('exit', ok) : ok()));
  rmSync(file, { force: true });
}
seen.add(broker.status('echo').pid).add(broker.status('echo').sparePid);
await broker.close();
for (const pid of seen) if (pid !== null) rmSync(`/dev/shm/bulkhead-sign-${pid}`, { force: true });
console.log(`${process.version}, load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}, ${N} crashes per caller, interleaved`);
console.log(`eof caller (as crash.mjs): kill → reply ${fmt(res.eof)} ms`);
console.log(`sign caller: kill → the waiter's EOF ${fmt(res.signAt)} ms; kill → reply ${fmt(res.sign)} ms`);
