#!/usr/bin/env bash
set -euo pipefail
# A profile of the leader, with call stacks, inside a one-client put row after the warm-up;
# then: perf script -i $OUT/leader.data -F comm,tid,ip,sym --no-inline | python3 core-share.py
ROOT=$(cd "$(dirname "$0")/../../../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/aegis-target}
BENCH=$CARGO_TARGET_DIR/release/aegis-bench
CL=${CL:-/tmp/aegis-bench/leader-core}
OUT=${OUT:?set OUT}
"$ROOT/scripts/aegis-cluster.sh" up "$CL" > $OUT/up.txt
EPS=$("$ROOT/scripts/aegis-cluster.sh" endpoints "$CL")
"$BENCH" --endpoints "$EPS" put --clients 64 --conns 8 --duration 10 > /dev/null
L=$(grep -o 'leader node [0-9]' $OUT/up.txt | awk '{print $3}')
"$BENCH" --endpoints "$EPS" --out $OUT/put.json put --clients 1 --conns 1 --duration 16 --total 10000000 > $OUT/put.txt &
sleep 4
perf record -F 4999 --call-graph dwarf,16384 -o $OUT/leader.data -p $(cat $CL/node-$L/pid) -- sleep 8 2> $OUT/perf.err
wait
"$ROOT/scripts/aegis-cluster.sh" down "$CL" > /dev/null
