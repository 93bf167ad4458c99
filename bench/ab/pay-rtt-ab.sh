#!/usr/bin/env bash
# Side by side: bench/ab/pay-rtt.mjs of two builds and the raw socket, fresh processes, alternating with the
# order rotated per round; per process the medians over its runs of p10 / p50 round trip µs and CPU µs per echo
# (caller / peer), with the load average. PIN=0: every process pinned to CPU 0 (the two ends' work in series).
# PAY_BYTES, ECHOES, WARMUP, RUNS as pay-rtt.mjs.  bench/ab/pay-rtt-ab.sh OLD_DIST NEW_DIST ROUNDS  (node from PATH)
set -euo pipefail
old=$1 new=$2 rounds=$3
here=$(cd "$(dirname "$0")" && pwd)
pin=()
if [ -n "${PIN:-}" ]; then pin=(taskset -c "$PIN"); fi
summary='const r = JSON.parse(require("node:fs").readFileSync(0, "utf8")).runs;
  const med = (k) => { const s = r.map((x) => x[k]).sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  console.log(`${med("p10")} / ${med("p50")}; ${med("self")} / ${med("peer")}`);'
for round in $(seq 1 "$rounds"); do
  for i in 0 1 2; do
    k=$(( (i + round) % 3 ))
    case $k in 0) which=old dist=$old kind=bulkhead ;; 1) which=new dist=$new kind=bulkhead ;; 2) which=raw dist=$new kind=raw ;; esac
    line=$("${pin[@]}" node "$here/pay-rtt.mjs" "$dist" "$kind" | node -e "$summary")
    echo "round $round $which: $line (load $(cut -d' ' -f1 /proc/loadavg))"
  done
done
