#!/bin/bash
# bench/ab/cg.sh DIST WORKLOAD N1 N2 -> instructions per op = (I(N2)-I(N1))/(N2-N1)
# Instructions (valgrind callgrind) of mem.mjs: repeatable whatever the load. NODE="node --predictable" makes V8 deterministic (runs of one build agree within 0.2%).
d=$1; w=$2; n1=$3; n2=$4
ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null ${NODE:-node} $(dirname "$0")/mem.mjs $d $w $1 2>&1 | grep "Collected" | awk '{print $4}'; }
a=$(ir $n1); b=$(ir $n2)
echo "$d $w: $(( (b - a) / (n2 - n1) )) instructions/op  ($a @ $n1, $b @ $n2)"
