#!/usr/bin/env bash
set -euo pipefail
# A perf profile inside a put row, after the warm-up (README.md). Defaults: all five nodes,
# 1,000 clients, cpu-clock at 1999 Hz. leader-core-c1/profile.sh sets the environment for the
# leader alone at one client, with call stacks.
CLIENTS=${CLIENTS:-1000}
CONNS=${CONNS:-100}
WHO=${WHO:-all}
PERF_ARGS=${PERF_ARGS:--F 1999}
ROOT=$(cd "$(dirname "$0")/../../../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/aegis-target}
BENCH=$CARGO_TARGET_DIR/release/aegis-bench
CL=${CL:-/tmp/aegis-bench/spread}
OUT=${OUT:?set OUT}
"$ROOT/scripts/aegis-cluster.sh" up "$CL" > $OUT/up.txt
EPS=$("$ROOT/scripts/aegis-cluster.sh" endpoints "$CL")
"$BENCH" --endpoints "$EPS" put --clients 64 --conns 8 --duration 10 > /dev/null
L=$(grep -o 'leader node [0-9]' $OUT/up.txt | awk '{print $3}')
"$BENCH" --endpoints "$EPS" --out $OUT/put.json put --clients "$CLIENTS" --conns "$CONNS" --duration 22 --total 10000000 > $OUT/put.txt &
sleep 4
pids=""
if [[ $WHO == leader ]]; then nodes=$L; else nodes="1 2 3 4 5"; fi
for i in $nodes; do pids="$pids,$(cat $CL/node-$i/pid)"; done
# shellcheck disable=SC2086 # PERF_ARGS is a list of options
perf record $PERF_ARGS -o $OUT/$WHO.data -p ${pids#,} -- sleep 12 2> $OUT/perf.err
wait
for i in 1 2 3 4 5; do curl -sf http://127.0.0.1:$((32490+i))/metrics > $OUT/m$i.txt; cp $CL/node-$i/node.log $OUT/log$i.txt; done
"$ROOT/scripts/aegis-cluster.sh" down "$CL" > /dev/null
echo "leader $L pids $pids"
