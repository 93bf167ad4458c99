// Round eight (issue 19): what a helper's node costs to tear down after SIGKILL, and whether anything can tell
// the broker sooner than the EOF on fd 3. A node child holding bulkhead's service bundle (as kill-probe.mjs),
// variants interleaved, N kills each (default 25). Per variant: kill → EOF on fd 3 (p25 / p50 / p75), the spawn →
// first byte, and the child's memory just before the kill (smaps_rollup: RSS, private, anonymous, huge pages;
// VmPTE), so a flag's teardown gain is read beside what it costs the spare.
//   default                    node as an unsandboxed helper runs (libuv's io_uring rings: 3 on Node 24/26)
//   no io_uring                the same under a seccomp filter refusing io_uring_setup (what every sandbox
//                              profile does; native/no-io-uring.c, needs libseccomp-dev)
//   --use-largepages=silent    node's text remapped into 2 MiB anonymous pages (THP is `madvise` here)
// Then SENTINEL=1: node started through native/pdeath-sentinel.c, whose sentinel child (PR_SET_PDEATHSIG, tied
// to node's main thread) holds fd 4: kill → EOF on fd 4 vs on fd 3, and fd 3's lead.
// usage: node bench/ab/prewarm/early-sign.mjs   (NODE_BIN=/path/to/node; from a built worktree; gcc on PATH)
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const N = Number(process.env.N ?? 25);
const NODE = process.env.NODE_BIN ?? process.execPath;
const here = new URL('.', import.meta.url).pathname;
const bundle = new URL('../../../dist/lib/service.bundle.js', import.meta.url).pathname;
const script = `const {Socket}=require('net');const s=new Socket({fd:3,readable:true,writable:true});s.write('x');`;
const bin = mkdtempSync(join(tmpdir(), 'early-sign-'));
execFileSync('gcc', ['-O2', '-o', join(bin, 'no-io-uring'), join(here, 'native/no-io-uring.c'), '-lseccomp']);
execFileSync('gcc', ['-O2', '-o', join(bin, 'pdeath-sentinel'), join(here, 'native/pdeath-sentinel.c')]);
const q = (a, f) => [...a].sort((x, y) => x - y)[Math.floor(a.length * f)];
const fmt = (a) => `p25 ${q(a, 0.25).toFixed(2)} p50 ${q(a, 0.5).toFixed(2)} p75 ${q(a, 0.75).toFixed(2)}`;
const memory = (pid) => {
  const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const f = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)?.[1] ?? 0);
  const pte = Number(/VmPTE:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  return `RSS ${f('Rss')} private ${f('Private_Clean') + f('Private_Dirty')} anon ${f('Anonymous')} huge ${f('AnonHugePages')} PTE ${pte} KiB`;
};
const ended = (stream, t0) => new Promise((ok) => { stream.once('end', () => ok(performance.now() - t0)); stream.resume(); });

async function once([cmd, args], withSentinel) {
  const t1 = performance.now();
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit', 'pipe', ...(withSentinel ? ['pipe'] : [])] });
  await new Promise((ok) => child.stdio[3].once('data', ok));
  const start = performance.now() - t1;
  await new Promise((ok) => setTimeout(ok, 20));
  const mem = memory(child.pid);
  const t0 = performance.now();
  const eof = ended(child.stdio[3], t0);
  const sentinel = withSentinel ? ended(child.stdio[4], t0) : undefined;
  const exit = new Promise((ok) => child.once('exit', ok));
  process.kill(child.pid, 'SIGKILL');
  const r = { start, mem, eof: await eof, sentinel: await sentinel };
  await exit;
  return r;
}

const node = (flags) => [NODE, [...flags, '--import', bundle, '-e', script]];
const variants = {
  default: node([]),
  'no io_uring': [join(bin, 'no-io-uring'), [NODE, ...node([])[1]]],
  '--use-largepages=silent': node(['--use-largepages=silent']),
};
console.log(`${NODE} (${execFileSync(NODE, ['-v']).toString().trim()}), load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}, ${N} kills each`);
if (process.env.SENTINEL !== '1') {
  const res = {};
  for (let i = 0; i < N; i++) for (const [name, v] of Object.entries(variants)) (res[name] ??= []).push(await once(v, false));
  for (const [name, rs] of Object.entries(res)) {
    console.log(`${name.padEnd(24)} kill→EOF ${fmt(rs.map((r) => r.eof))}  spawn→first byte p50 ${q(rs.map((r) => r.start), 0.5).toFixed(1)} ms  ${rs.at(-1).mem}`);
  }
} else {
  const rs = [];
  for (let i = 0; i < N; i++) rs.push(await once([join(bin, 'pdeath-sentinel'), ['4', ...[NODE, ...node([])[1]]]], true));
  console.log(`kill→EOF fd 3 ${fmt(rs.map((r) => r.eof))}; kill→EOF of the sentinel ${fmt(rs.map((r) => r.sentinel))}; the sentinel's lead ${fmt(rs.map((r) => r.eof - r.sentinel))}; lead > 0.5 ms in ${rs.filter((r) => r.eof - r.sentinel > 0.5).length} of ${N}`);
}
