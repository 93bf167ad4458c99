// How long after its node's death an mm holder's reap ends (lib/broker/mm-holder-reaper.ts), for builds side by side:
// node bench/ab/holder-reap-ab.mjs <root A> <root B> [rounds]. Each round, per build alternately: a node child loads
// the build's addon (holder delay 20 ms, as a spare's), its holder is claimed over an in-memory socket, the child is
// SIGKILLed, and from its exit event to mmHolderReaped()'s resolve is timed. Figures print with the load average.
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';

const [rootA, rootB, roundsArg] = process.argv.slice(2);
const rounds = Number(roundsArg ?? 20);
const builds = await Promise.all([rootA, rootB].map(async (root) => {
  const mod = (p) => import(pathToFileURL(join(root, 'dist', 'lib', p)).href);
  const reaper = await mod('broker/mm-holder-reaper.js');
  const warm = await mod('broker/warm-frame.js');
  const codec = await mod('wire/codec.js');
  return { root, reaper, warm, codec, addon: join(root, 'dist', 'native', 'mm_holder.node') };
}));

async function once(b) {
  const child = spawn(process.execPath, ['-e', `const m = { exports: {} }; process.dlopen(m, ${JSON.stringify(b.addon)}); process.stdout.write(String(m.exports.start(20)) + '\\n'); setInterval(() => {}, 1 << 30);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const holder = await new Promise((resolve) => child.stdout.once('data', (d) => resolve(Number(String(d).trim()))));
  const socket = new PassThrough();
  b.reaper.expectMmHolder(socket, child.pid);
  const accepted = b.warm.awaitWarmSpare(socket, () => undefined, Promise.resolve());
  const body = b.codec.encodeItem({ t: 'warm', holder });
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  socket.write(Buffer.concat([head, body]));
  await accepted;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  const t0 = performance.now();
  await b.reaper.mmHolderReaped(socket);
  return performance.now() - t0;
}

const times = [[], []];
for (let r = 0; r < rounds; r++) for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) times[i].push(await once(builds[i]));
const q = (a, p) => [...a].sort((x, y) => x - y)[Math.floor(p * (a.length - 1))];
for (const i of [0, 1]) console.log(`${builds[i].root}: exit → reaped median ${q(times[i], 0.5).toFixed(1)} ms, p10 ${q(times[i], 0.1).toFixed(1)}, p90 ${q(times[i], 0.9).toFixed(1)}, max ${Math.max(...times[i]).toFixed(1)} (${rounds} rounds)`);
console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
