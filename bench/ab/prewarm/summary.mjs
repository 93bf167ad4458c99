// Medians per build of ab.sh's JSON lines: launch, relaunch, kill → exit event, spare RSS / PSS / USS / anonymous, load range.
import { readFileSync } from 'node:fs';
const rows = readFileSync(process.argv[2], 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const med = (a) => { const s = a.filter((x) => !Number.isNaN(x)).sort((x, y) => x - y); return s.length ? s[Math.floor(s.length / 2)] : NaN; };
const by = new Map();
for (const r of rows) { const b = by.get(r.build) ?? { launch: [], relaunch: [], exitEvt: [], rss: [], pss: [], uss: [], anon: [], load: [] }; b.launch.push(...r.r.launch); b.relaunch.push(...r.r.relaunch); b.exitEvt.push(...r.r.exitEvt); for (const m of r.r.mem) { b.rss.push(m.rss / 1024); b.pss.push(m.pss / 1024); b.uss.push(m.uss / 1024); b.anon.push(m.anon / 1024); } b.load.push(r.loadBefore, r.r.load); by.set(r.build, b); }
for (const [k, b] of by) console.log(`${k}: n=${b.launch.length} launch p50 ${med(b.launch).toFixed(2)} ms, relaunch p50 ${med(b.relaunch).toFixed(2)} ms (kill→exit event ${med(b.exitEvt).toFixed(2)}), spare RSS ${med(b.rss).toFixed(1)} PSS ${med(b.pss).toFixed(1)} USS ${med(b.uss).toFixed(1)} anon ${med(b.anon).toFixed(1)} MiB; load ${Math.min(...b.load).toFixed(1)}–${Math.max(...b.load).toFixed(1)}`);
