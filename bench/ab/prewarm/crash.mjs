// Round six: N crashes of a prewarmed service (SIGKILL to its node from outside the broker, as bench/scenarios/launch.ts
// does), each followed at once by calls retried on ERR_INTERRUPTED until the new helper answers. Per crash: kill → first
// reply of the new helper (ms), kill → the broker's exit event, and whether the first call was rejected before that exit
// (at the old helper's channel's close). Prints one JSON line. Alternate builds with a shell loop (see bench/README.md).
// usage: node crash.mjs BUILD_DIR N   (PROFILE=pure-compute for a sandboxed service)
import { readFileSync } from 'node:fs';
import { MSG, prewarmedEcho, processTree, sleep } from './setup.mjs';
const WT = process.argv[2];
const N = Number(process.argv[3] ?? 20);
const { broker, c, isBulkheadError, profile } = await prewarmedEcho(WT);
// The node process in the helper's tree (the spawned child unsandboxed).
// Not its mm holder (round twelve): the holder shares node's memory, so its cmdline is node's too.
const node = (pid) => processTree(pid).find((p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[0].endsWith('node') && readFileSync(`/proc/${p}/comm`, 'utf8').trim() !== 'bh-mm-holder'; } catch { return false; } }) ?? pid;
const reply = [], exitEvt = [], atClose = [], takeover = [];
for (let i = 0; i < N; i++) {
  while (broker.status('echo').sparePid === null) await sleep(2);
  await sleep(30);
  const pid = broker.status('echo').pid;
  const target = node(pid);
  let exitMs = NaN;
  let exited;
  const exit = new Promise((r) => { exited = r; });
  const s = performance.now();
  const sub = broker.on('exit', () => { if (Number.isNaN(exitMs)) { exitMs = performance.now() - s; exited(); } });
  // kill → takeover: the broker saw the channel's EOF (round ten: what an mm holder brings forward).
  let takeoverMs = NaN;
  const subT = broker.on('takeover', () => { if (Number.isNaN(takeoverMs)) takeoverMs = performance.now() - s; });
  process.kill(target, 'SIGKILL');
  let first, at;
  for (;;) {
    // The clock stops at the reply (round seven): status() reads /proc, 0.2-0.3 ms of the bench's own check.
    try { await c.call('echo', MSG); at = performance.now(); if (broker.status('echo').pid !== pid) break; }
    catch (e) { if (!isBulkheadError(e) || e.code !== 'ERR_INTERRUPTED') throw e; first ??= Number.isNaN(exitMs); }
  }
  reply.push(at - s);
  await exit;
  sub.dispose();
  subT.dispose();
  exitEvt.push(exitMs);
  takeover.push(takeoverMs);
  if (first !== undefined) atClose.push(first ? 1 : 0);
}
await broker.close();
const med = (a) => { const x = [...a].sort((p, q) => p - q); return x[Math.floor(x.length / 2)]; };
console.log(JSON.stringify({ build: WT, node: process.version, profile: profile ?? 'none', n: N, replyMs: med(reply), takeoverMs: med(takeover), exitMs: med(exitEvt), rejectedAtClose: atClose.length === 0 ? null : atClose.reduce((a, b) => a + b, 0) / atClose.length, load: readFileSync('/proc/loadavg', 'utf8').split(' ')[0], all: reply.map((x) => +x.toFixed(2)), allTakeover: takeover.map((x) => +x.toFixed(2)) }));
