#!/usr/bin/env bash
# usage: tl.sh OUT on|off
set -euo pipefail
ROOT=/work/main; OUT=$1; MODE=$2
B=$HOME/.cache/aegis-target-exp/release
mkdir -p $OUT/marks; rm -f $OUT/marks/*.tl
export AEGIS_NODE_BIN=/tmp/bin/exp-y-tl AEGIS_TIMELINE=$OUT/marks
if [[ $MODE == on ]]; then export AEGIS_EXP_YIELD=1; else unset AEGIS_EXP_YIELD; fi
$ROOT/scripts/aegis-cluster.sh up $OUT/cluster >/dev/null
EP=$($ROOT/scripts/aegis-cluster.sh endpoints)
$B/aegis-bench --endpoints $EP put --clients 1 --conns 1 --duration ${DURATION:-6} --total 10000000 >$OUT/put.txt
sleep 1
$ROOT/scripts/aegis-cluster.sh down $OUT/cluster >/dev/null
$B/aegis-bench timeline --dir $OUT/marks --skip 100 > $OUT/timeline.txt
