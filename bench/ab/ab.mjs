// node bench/ab/ab.mjs WORKLOAD N ROUNDS DIST_A DIST_B ...: worker.mjs for each build, interleaved and rotated per round, medians. ABNODE=path runs another node.
// A DIST is a dist/ directory whose parent also holds bench/, package.json and node_modules (copy them next to an old build).
// Usage: node ab.mjs WORKLOAD N ROUNDS distA distB ...  (interleaved, rotated)
import { execFileSync } from 'node:child_process';
const [workload, n, rounds, ...dists] = process.argv.slice(2);
const node = process.env.ABNODE ?? process.execPath;
const res = new Map(dists.map((d) => [d, []]));
for (let r = 0; r < Number(rounds); r++) {
  for (let i = 0; i < dists.length; i++) {
    const d = dists[(i + r) % dists.length];
    const out = JSON.parse(execFileSync(node, [new URL('./worker.mjs', import.meta.url).pathname, d, workload, n], { encoding: 'utf8', cwd: d + '/..' }).trim().split('\n').pop());
    res.get(d).push(out);
  }
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
for (const [d, rs] of res) {
  console.log(`${d}: self ${med(rs.map((x) => x.self)).toFixed(2)} µs  peer ${med(rs.map((x) => x.peer)).toFixed(2)} µs  (sys ${med(rs.map((x) => x.selfSys)).toFixed(2)}/${med(rs.map((x) => x.peerSys)).toFixed(2)}) rate ${med(rs.map((x) => x.rate)).toFixed(0)}/s  writes/op ${med(rs.map((x) => x.sw)).toFixed(3)}/${med(rs.map((x) => x.pw)).toFixed(3)} reads/op ${med(rs.map((x) => x.sr)).toFixed(3)}/${med(rs.map((x) => x.pr)).toFixed(3)}   [self ${rs.map((x) => x.self.toFixed(2)).join(' ')}] [peer ${rs.map((x) => x.peer.toFixed(2)).join(' ')}]`);
}
