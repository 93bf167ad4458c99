// Self time by function of one caller's --cpu-prof, only within the runs of one size that payprobe.mjs logged with
// PROBE_WINDOWS (pid size start end, CLOCK_MONOTONIC µs as the profile's timestamps).
// node bench/ab/cpuprof-window.mjs CPU.<date>.<pid>.0.001.cpuprofile WINDOWS SIZE
import { readFileSync } from 'node:fs';
const [file, winFile, size] = process.argv.slice(2);
const pid = file.match(/\.(\d+)\.0\.\d+\.cpuprofile$/)[1];
const wins = readFileSync(winFile, 'utf8').trim().split('\n').map((l) => l.split(' ')).filter((w) => w[0] === pid && w[1] === size).map((w) => [Number(w[2]), Number(w[3])]);
const p = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
let t = p.startTime; const counts = new Map(); let total = 0;
for (let i = 0; i < p.samples.length; i++) { t += p.timeDeltas[i]; if (!wins.some(([a, b]) => t >= a && t <= b)) continue; const n = byId.get(p.samples[i]); const k = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber}`; const d = p.timeDeltas[i + 1] ?? 0; counts.set(k, (counts.get(k) ?? 0) + d); total += d; }
console.log('windows', wins.length, 'ms in them', (total / 1000).toFixed(0));
for (const [k, v] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, 16)) console.log((v / 1000).toFixed(1).padStart(8), (100 * v / total).toFixed(1).padStart(5) + '%', k);
