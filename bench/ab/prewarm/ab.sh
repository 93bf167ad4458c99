#!/bin/bash
# Prewarm A/B (issue 19, round four): launch from a spare, relaunch after SIGKILL, the spare's memory
# (smaps_rollup: RSS, PSS, private), for two builds alternated round by round, each round in a fresh
# broker process. A build is a directory with dist/, bench/fixtures/, package.json and node_modules.
# usage: OUT=ab.jsonl [PROFILE=pure-compute] bench/ab/prewarm/ab.sh ROUNDS N NODE BUILD_A BUILD_B
#        node bench/ab/prewarm/summary.mjs ab.jsonl
ROUNDS=$1; N=$2; NODE=$3; A=$4; B=$5; OUT=${OUT:-ab.jsonl}
HERE=$(dirname "$(readlink -f "$0")")
: > "$OUT"
for r in $(seq 1 "$ROUNDS"); do
  for w in "$A" "$B"; do
    echo "{\"build\":\"$w\",\"round\":$r,\"loadBefore\":$(cut -d' ' -f1 /proc/loadavg),\"r\":$("$NODE" "$HERE/round.mjs" "$w" "$N")}" >> "$OUT"
  done
done
