// node plan-ab.mjs N ROUNDS DIST_A DIST_B ... -- PROFILE...: plan-worker.mjs for each build (a broker process of its own),
// builds interleaved and rotated per round; prints per build and profile the medians of call → spawn() (wall and the
// broker's CPU), call → reply, and any marks, with the load average. ABNODE=path runs another node. A DIST is a dist/
// directory whose parent also holds bench/fixtures, package.json and node_modules.
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
const args = process.argv.slice(2);
const cut = args.indexOf('--');
const [n, rounds, ...dists] = args.slice(0, cut);
const profiles = args.slice(cut + 1);
const node = process.env.ABNODE ?? process.execPath;
const res = new Map(dists.map((d) => [d, Object.fromEntries(profiles.map((p) => [p, []]))]));
const load = [loadavg()[0]];
for (let r = 0; r < Number(rounds); r++) {
  for (let i = 0; i < dists.length; i++) {
    const d = dists[(i + r) % dists.length];
    const out = JSON.parse(execFileSync(node, [new URL('./plan-worker.mjs', import.meta.url).pathname, d, n, ...profiles], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], cwd: d + '/..' }).trim().split('\n').pop());
    for (const p of profiles) res.get(d)[p].push(...out[p]);
    load.push(loadavg()[0]);
  }
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
console.log(`node ${execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()}, ${n}×${rounds} launches per build and profile, load ${load.map((x) => x.toFixed(1)).join(' ')}`);
for (const p of profiles) {
  for (const [d, byProfile] of res) {
    const rs = byProfile[p];
    const keys = Object.keys(rs[0]);
    console.log(`${p.padEnd(15)} ${d}: ${keys.map((k) => `${k} ${med(rs.map((x) => x[k]).filter((v) => v !== undefined)).toFixed(2)}`).join('  ')}`);
  }
}
