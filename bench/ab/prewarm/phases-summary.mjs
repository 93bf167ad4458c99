// Round eleven: pools crash-phases.mjs lines (phases-ab.sh's output) by Node line and build: p25 / p50 / p75 of kill →
// takeover / rejection of the call in flight / retried call's reply / exit event, the load range, and how many
// crashes' rejection waited for the exit (rejected within 0.3 ms of the exit event or after it).
// usage: node phases-summary.mjs FILE...
import { readFileSync } from 'node:fs';
const cells = new Map();
for (const file of process.argv.slice(2)) {
  for (const line of readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
    const run = JSON.parse(line);
    const key = `${run.node.split('.')[0]} ${run.build.split('/').pop()}`;
    const cell = cells.get(key) ?? { loads: [], rows: [] };
    cell.loads.push(Number(run.load));
    for (const crash of run.all) cell.rows.push(crash.split('/').map(Number).slice(0, 4));
    cells.set(key, cell);
  }
}
const q = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.round(p * (s.length - 1))]; };
const fmt = (xs) => [0.25, 0.5, 0.75].map((p) => q(xs, p).toFixed(1)).join(' / ');
for (const [key, { loads, rows }] of [...cells].sort()) {
  const col = (i) => rows.map((r) => r[i]);
  const waits = rows.filter(([, reject, , exit]) => reject >= exit - 0.3).length;
  console.log(`${key}: n ${rows.length}, load ${Math.min(...loads)}–${Math.max(...loads)}; takeover ${fmt(col(0))}; rejected ${fmt(col(1))}; reply ${fmt(col(2))}; exit ${fmt(col(3))}; rejection waited for the exit ${waits}`);
}
