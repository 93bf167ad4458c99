// node launch-ab.mjs N ROUNDS PROFILE DIST_A DIST_B ...: launch-worker.mjs for each build, interleaved and rotated per round;
// prints medians over all launches of each build (wall, helper CPU, broker CPU, and the bare-node probe beside it).
// ABNODE=path runs another node. A DIST is a dist/ directory whose parent also holds bench/fixtures, package.json and node_modules.
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
const [n, rounds, profile, ...dists] = process.argv.slice(2);
const node = process.env.ABNODE ?? process.execPath;
const res = new Map(dists.map((d) => [d, []]));
const load = [loadavg()[0]];
for (let r = 0; r < Number(rounds); r++) {
  for (let i = 0; i < dists.length; i++) {
    const d = dists[(i + r) % dists.length];
    const out = JSON.parse(execFileSync(node, [new URL('./launch-worker.mjs', import.meta.url).pathname, d, n, profile], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], cwd: d + "/..", env: { ...process.env, NODE_EXTRA_CA_CERTS: '' } }).trim().split('\n').pop());
    res.get(d).push(...out);
  }
  load.push(loadavg()[0]);
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
console.log(`node ${execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()}, profile ${profile}, ${n}×${rounds} launches per build, load ${Math.min(...load).toFixed(1)}–${Math.max(...load).toFixed(1)}`);
for (const [d, rs] of res) {
  const f = (k) => med(rs.map((x) => x[k])).toFixed(1);
  console.log(`${d}: cold ${f('ms')} ms (probe ${f('probeMs')}; over probe ${med(rs.map((x) => x.ms - x.probeMs)).toFixed(1)})  helper CPU ${f('helperCpu')} ms (probe ${f('probeCpu')}; over ${med(rs.map((x) => x.helperCpu - x.probeCpu)).toFixed(1)})  broker CPU ${f('brokerCpu')} ms`);
}
