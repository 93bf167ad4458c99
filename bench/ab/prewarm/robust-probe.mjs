// Round eight (issue 19), a prototype's measurement, nothing shipped: how much sooner than the EOF on fd 3 a peer
// can learn that a helper's node died, through a robust futex. native/robust-waiter.c (built here with gcc) makes a
// robust, process-shared mutex in a /dev/shm page; the node child (bulkhead's service bundle loaded, as
// kill-probe.mjs) locks it through koffi (glibc links it into the main thread's robust list) and writes its result
// on fd 3; the waiter blocks on it. SIGKILL to node: the kernel walks the dead thread's robust list at the start of
// exit_mm, wakes the waiter (EOWNERDEAD, exit 0) and its stdout's EOF arrives while node's address space is still
// being torn down. Prints kill → EOF on fd 3, kill → the waiter's EOF, and the lead, over N kills (default 25).
// usage: node bench/ab/prewarm/robust-probe.mjs   (NODE_BIN=/path/to/node; from a built worktree; gcc on PATH)
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const N = Number(process.env.N ?? 25);
const NODE = process.env.NODE_BIN ?? process.execPath;
const root = new URL('../../../', import.meta.url).pathname;
const koffiPath = createRequire(join(root, 'package.json')).resolve('koffi');
const bundle = join(root, 'dist/lib/service.bundle.js');
const WAITER = join(mkdtempSync(join(tmpdir(), 'robust-probe-')), 'robust-waiter');
execFileSync('gcc', ['-O2', '-o', WAITER, new URL('native/robust-waiter.c', import.meta.url).pathname]);
const child = (file) => `const k=require(${JSON.stringify(koffiPath)});const c=k.load('libc.so.6');const fs=require('fs');` +
  `const mmap=c.func('void *mmap(void *, size_t, int, int, int, long)');const lock=c.func('int pthread_mutex_lock(void *)');` +
  `const fd=fs.openSync(${JSON.stringify(file)},'r+');const p=mmap(null,4096,3,1,fd,0);fs.closeSync(fd);const r=lock(p);` +
  `const {Socket}=require('net');const s=new Socket({fd:3,readable:true,writable:true});s.write(String(r));`;
const q = (a, f) => [...a].sort((x, y) => x - y)[Math.floor(a.length * f)];
const fmt = (a) => `p25 ${q(a, 0.25).toFixed(2)} p50 ${q(a, 0.5).toFixed(2)} p75 ${q(a, 0.75).toFixed(2)}`;
const line = (s, want) => new Promise((ok) => { const check = () => { if (s.seen.includes(want)) { s.off('data', check); ok(); } }; s.on('data', check); check(); });
const rs = [];
for (let i = 0; i < N; i++) {
  const file = `/dev/shm/robust-probe-${process.pid}-${i}`;
  const w = spawn(WAITER, [file], { stdio: ['ignore', 'pipe', 'inherit'] });
  w.stdout.setEncoding('utf8'); w.stdout.seen = ''; w.stdout.on('data', (d) => { w.stdout.seen += d; });
  await line(w.stdout, 'init');
  const c = spawn(NODE, ['--import', bundle, '-e', child(file)], { stdio: ['ignore', 'ignore', 'inherit', 'pipe'] });
  const locked = await new Promise((ok) => c.stdio[3].once('data', (d) => ok(String(d))));
  await line(w.stdout, 'ready');
  await new Promise((ok) => setTimeout(ok, 20));
  const t0 = performance.now();
  const eof = new Promise((ok) => { c.stdio[3].once('end', () => ok(performance.now() - t0)); c.stdio[3].resume(); });
  const sign = new Promise((ok) => { w.stdout.once('end', () => ok(performance.now() - t0)); w.stdout.resume(); });
  const wexit = new Promise((ok) => w.once('exit', (code) => ok(code)));
  process.kill(c.pid, 'SIGKILL');
  const r = { locked, eof: await eof, sign: await sign, waiter: await wexit };
  rs.push(r);
  rmSync(file, { force: true });
}
console.log(`${NODE} load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}; lock returned ${[...new Set(rs.map((r) => r.locked))]}, waiter exit codes ${[...new Set(rs.map((r) => r.waiter))]}`);
console.log(`kill→EOF fd 3 ${fmt(rs.map((r) => r.eof))}; kill→waiter's EOF ${fmt(rs.map((r) => r.sign))}; lead ${fmt(rs.map((r) => r.eof - r.sign))}; lead > 0.5 ms in ${rs.filter((r) => r.eof - r.sign > 0.5).length} of ${N}`);
