#!/bin/bash
# bench/ab/cg-window.sh DIST N [WARM] -> instructions of the broker process per pipelined call, counted in a window
# that holds N calls alone (worker.mjs bursts: 64 calls per burst, each burst one write and one read), after WARM
# warm-up calls (default 51200: before ~50k calls Turbofan still compiles in the window, ~2.8k instructions per
# call at 12800). Under `node --predictable` one build reads the same count within ~0.1% at 12800 and ~0.5% at
# 51200 (a scavenge more or less in the window; round eleven); start-up,
# the warm-up and the zero/dump themselves are not in it (dump .1, an empty window, is subtracted).
# Keeps the callgrind dump (OUT.2) and node's perf map, for bench/ab/cg-names.py.
d=$1; n=$2; warm=${3:-51200}
out=${OUT:-/tmp/cg-window.$$.out}
CG_WINDOW=1 WARM=$warm valgrind --tool=callgrind --callgrind-out-file=$out ${NODE:-node} --predictable --perf-basic-prof "$(dirname "$0")/worker.mjs" "$d" bursts "$n" > "$out.log" 2>&1
o=$(grep '^summary' "$out.1" | awk '{print $2}'); w=$(grep '^summary' "$out.2" | awk '{print $2}')
pid=$(grep -o '"pid":[0-9]*' "$out.log" | cut -d: -f2)
echo "$d: $(( (w - o) / n )) instructions/call (window of $n after $warm; dump $out.2, names: python3 $(dirname "$0")/cg-names.py $out.2 /tmp/perf-$pid.map $n)"
