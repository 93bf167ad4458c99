#!/usr/bin/env bash
# Side by side over fresh process sets: runs bench/ab/payprobe.mjs SETS times (each time fresh caller processes of
# every kind, e.g. "bulkhead@dist=OLD/dist,bulkhead,raw"), and prints per kind and size each set's ratio to the raw
# socket (the median of the set's per-round ratios) and their median over sets, with the caller's median CPU µs per
# echo and mark-compacts per run. What payloads-sets.ts does for the bench's verdict, for A/B of builds.
# PROBE_WARMUP (default 3000, as the scenario), PROBE_ARGS (e.g. --trace-gc for the mark-compact counts) as payprobe.
# bench/ab/paysets.sh DIST OUTDIR SETS ROUNDS SIZES ECHOES64K KINDS   (node from PATH)
set -euo pipefail
dist=$1 out=$2 sets=$3 rounds=$4 sizes=$5 echoes=$6 kinds=$7
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
for s in $(seq 1 "$sets"); do
  mkdir -p "$out/set$s"
  PROBE_WARMUP=${PROBE_WARMUP:-3000} node "$here/payprobe.mjs" "$dist" "$out/set$s" "$rounds" "$sizes" "$echoes" "$kinds" > "$out/set$s/probe.txt" 2>&1
  echo "set $s done (load $(cut -d' ' -f1 /proc/loadavg))"
done
# "size 65536: bulkhead@dist=x/raw median 93% [..]; self 104 [..] peer 52 µs mc 0/1/0" per set → one line per kind and size.
cat "$out"/set*/probe.txt | node -e '
  const rows = new Map();
  for (const line of require("node:fs").readFileSync(0, "utf8").split("\n")) {
    const m = /^size (\d+): (.*)\/raw median (\d+)%.*?; self (\d+) .*? mc (\S+)/.exec(line);
    if (m === null) continue;
    const key = `${m[2]} ${m[1]}`;
    const r = rows.get(key) ?? { pct: [], self: [], mc: [] };
    r.pct.push(Number(m[3])); r.self.push(m[4]); r.mc.push(m[5]); rows.set(key, r);
  }
  const med = (a) => { const s = [...a].sort((x, y) => x - y), n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
  for (const [k, r] of [...rows].sort()) console.log(`${k.padEnd(40)} median ${String(med(r.pct)).padStart(5)}%  per set ${r.pct.join(" ")}  caller µs ${r.self.join(" ")}  mc ${r.mc.join(" ")}`);
'
