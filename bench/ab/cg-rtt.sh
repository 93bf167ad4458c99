#!/bin/bash
# bench/ab/cg-rtt.sh DIST N1 N2 -> instructions of the broker process per sequential round trip over the real
# socketpair (worker.mjs rtt: a warm-up of min(N, 20000) calls, then N), = (I(N2)-I(N1))/(2·(N2-N1)) for N ≤ 20000.
# The helper runs natively beside it. NODE="node --predictable" as in cg.sh.
d=$1; n1=$2; n2=$3
ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null ${NODE:-node} $(dirname "$0")/worker.mjs $d rtt $1 2>&1 | grep "Collected" | awk '{print $4}'; }
a=$(ir $n1); b=$(ir $n2)
echo "$d rtt (broker): $(( (b - a) / (2 * (n2 - n1)) )) instructions/call  ($a @ $n1, $b @ $n2)"
