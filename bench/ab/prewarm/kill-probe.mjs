// SIGKILL → EOF on the child's socketpair → its 'exit' event, for a node child with bulkhead's service bundle
// loaded (by flags) and a python3 child holding the same socket: what a relaunch waits for before bulkhead
// can act. Variants interleaved, 25 kills each by default (N=...).
// usage: node bench/ab/prewarm/kill-probe.mjs   (from a built worktree)
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
const N = Number(process.env.N ?? 25);
const bundle = new URL('../../../dist/lib/service.bundle.js', import.meta.url).pathname;
const nodeScript = `const {Socket}=require('net');const s=new Socket({fd:3,readable:true,writable:true});s.write('x');`;
const variants = {
  python3: ['python3', ['-c', 'import socket,time; s=socket.socket(fileno=3); s.send(b"x"); time.sleep(100)']],
  node: [process.execPath, ['--import', bundle, '-e', nodeScript]],
  'node --v8-pool-size=1': [process.execPath, ['--v8-pool-size=1', '--import', bundle, '-e', nodeScript]],
  'node --single-threaded': [process.execPath, ['--single-threaded', '--import', bundle, '-e', nodeScript]],
};
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const res = {};
for (let i = 0; i < N; i++) for (const [name, [cmd, args]] of Object.entries(variants)) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit', 'pipe'] });
  const sock = child.stdio[3];
  await new Promise((ok) => sock.once('data', ok));
  await new Promise((ok) => setTimeout(ok, 20));
  const r = (res[name] ??= { eof: [], exit: [], threads: [] });
  r.threads.push(Number(/Threads:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]));
  const t0 = performance.now();
  const done = Promise.all([
    new Promise((ok) => sock.once('end', () => ok(r.eof.push(performance.now() - t0)))),
    new Promise((ok) => child.once('exit', () => ok(r.exit.push(performance.now() - t0)))),
  ]);
  sock.resume();
  process.kill(child.pid, 'SIGKILL');
  await done;
}
console.log(`${process.version}, load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
for (const [k, r] of Object.entries(res)) console.log(`${k.padEnd(24)} threads ${med(r.threads)}  kill→EOF p50 ${med(r.eof).toFixed(2)} ms  kill→exit p50 ${med(r.exit).toFixed(2)} ms`);
