#!/bin/bash
# Round eleven: crash-phases.mjs (pure-compute) for several builds side by side, alternating build by build and Node
# line by Node line, under nice -n -10; one JSON line per run on stdout (phases-summary.mjs pools them).
# usage: ROUNDS=3 N=20 NODES="/path/node24 /path/node26" phases-ab.sh BUILD_DIR...
cd "$(dirname "$0")"
ROUNDS=${ROUNDS:-3}; N=${N:-15}; NODES=${NODES:-"/work/nodes/n24/package/bin/node /work/nodes/n26/package/bin/node"}
for r in $(seq 1 "$ROUNDS"); do
  for node in $NODES; do
    builds=("$@")
    # The order of the builds flips every round, so neither always runs first.
    if [ $((r % 2)) -eq 0 ]; then builds=($(printf '%s\n' "$@" | tac)); fi
    for b in "${builds[@]}"; do PROFILE=pure-compute nice -n -10 "$node" crash-phases.mjs "$b" "$N"; done
  done
done
