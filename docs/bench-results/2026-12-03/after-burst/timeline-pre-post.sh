#!/usr/bin/env bash
ROOT=$(cd "$(dirname "$0")/../../../.." && pwd); BIN=$HOME/.cache/aegis-target-new/release
OUT=$1; mkdir -p $OUT/marks; rm -f $OUT/marks/*
export AEGIS_NODE_BIN=${TIMELINE_NODE_BIN:?the timeline build of aegis-node} AEGIS_TIMELINE=$OUT/marks
$ROOT/scripts/aegis-cluster.sh up $OUT/cluster >/dev/null; eps=$($ROOT/scripts/aegis-cluster.sh endpoints); sleep 2
date +%s%N > $OUT/t_pre
$BIN/aegis-bench --endpoints "$eps" put --clients 1 --conns 1 --duration 8 --total 10000000 | grep Requests/sec
date +%s%N > $OUT/t_burst
$BIN/aegis-bench --endpoints "$eps" put --clients 64 --conns 8 --duration 10 | grep Requests/sec
date +%s%N > $OUT/t_post
$BIN/aegis-bench --endpoints "$eps" put --clients 1 --conns 1 --duration 8 --total 10000000 | grep Requests/sec
date +%s%N > $OUT/t_end
sleep 1; $ROOT/scripts/aegis-cluster.sh down $OUT/cluster >/dev/null
